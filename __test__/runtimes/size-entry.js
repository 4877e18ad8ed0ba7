// Bundled by __test__/runtime-chromium.spec.js to measure the browser build of the library: everything the web entry exports.
export * from 'sifredb';
