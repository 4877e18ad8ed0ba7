// Headless Chromium (Debian package chromium, installed by scripts/setup-test-services.sh): esbuild
// bundles a page that imports `sifredb` with platform browser, so package.json `exports` picks the
// web entry (dist/web.js: no node: imports, WebCrypto random bytes, @noble engines). The page runs
// every frozen vector through the public API and POSTs the result to the test's own server on
// 127.0.0.1. Also measures the minified and gzipped browser bundle of everything the web entry exports.
//
// The browser has no native addon and no SIFREDB_BACKEND, so both runs of the suite expect the JS
// backend here.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertVectorResult, assertWebEntry, bundle, gzipSize, makeProject, packageVersion, run, runtimeBinary, start } from './runtimes/harness.js';

const chromium = runtimeBinary('chromium');
const project = makeProject({ 'browser-entry.js': 'browser-entry.js', 'size-entry.js': 'size-entry.js' });
test.after.always(() => project.cleanup());

const TIMEOUT_MS = 20_000;
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>sifredb vectors</title>
<script>
  addEventListener('error', (e) => fetch('/result', { method: 'POST', body: JSON.stringify({ loadError: String(e.error?.stack ?? e.message) }) }));
  addEventListener('unhandledrejection', (e) => fetch('/result', { method: 'POST', body: JSON.stringify({ loadError: String(e.reason?.stack ?? e.reason) }) }));
</script>
<script type="module" src="/page.js"></script>
`;

/** Serves the page and its bundle on 127.0.0.1 and resolves the first body POSTed to /result. */
async function servePage(script) {
  let deliver;
  const result = new Promise((resolve) => (deliver = resolve));
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    } else if (req.method === 'GET' && req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    } else if (req.method === 'POST' && req.url === '/result') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        res.writeHead(204).end();
        deliver(JSON.parse(body));
      });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, result, close: () => new Promise((resolve) => server.close(resolve)) };
}

test('chromium runs (Debian package)', async (t) => {
  const out = await run(chromium, ['--version']);
  t.is(out.code, 0, out.stderr);
  t.regex(out.stdout, /Chromium \d+/);
  t.log(`${out.stdout.trim()}, esbuild ${packageVersion('esbuild')}`);
});

test('the browser bundle takes the web entry and reproduces every vector in headless Chromium', async (t) => {
  const started = performance.now();
  const { code, inputs } = await bundle(project, 'browser-entry.js');
  assertWebEntry(t, inputs, 'browser bundle');
  const page = await servePage(code);
  const profile = mkdtempSync(join(tmpdir(), 'sifredb-chromium-'));
  const browser = start(chromium, [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-extensions',
    '--disable-background-networking',
    '--disable-component-update',
    `--user-data-dir=${profile}`,
    page.url,
  ]);
  let timer;
  try {
    const outcome = await Promise.race([
      page.result,
      browser.exited.then(({ code: exit, signal }) => ({ loadError: `chromium exited (${exit ?? signal}) before the page reported:\n${browser.output().stderr.slice(-2000)}` })),
      new Promise((resolve) => (timer = setTimeout(() => resolve({ loadError: `no result within ${TIMEOUT_MS} ms:\n${browser.output().stderr.slice(-2000)}` }), TIMEOUT_MS))),
    ]);
    if (outcome.loadError) return t.fail(`the page failed: ${outcome.loadError}`);
    t.log(`${outcome.runtime}: backend ${outcome.backend}${outcome.impl ? ` (${outcome.impl})` : ''}, ${outcome.checked} checks in ${outcome.ms} ms, total ${Math.round(performance.now() - started)} ms`);
    t.true(outcome.secureContext, 'the page on 127.0.0.1 is a secure context (WebCrypto available)');
    t.is(outcome.backend, 'js');
    assertVectorResult(t, outcome, 'chromium');
  } finally {
    clearTimeout(timer);
    await browser.stop();
    await page.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test('size of the browser bundle of the web entry (minified, gzipped)', async (t) => {
  const { code, inputs, bytesByPackage } = await bundle(project, 'size-entry.js', { minify: true });
  assertWebEntry(t, inputs, 'size bundle');
  const size = await gzipSize(code);
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  t.log(`browser bundle of everything sifredb's web entry exports: ${size.min} bytes minified (${kib(size.min)}), ${size.gzip} bytes gzipped (${kib(size.gzip)}, gzip -9)`);
  t.log(`minified bytes by package: ${Object.entries(bytesByPackage).map(([name, n]) => `${name} ${n}`).join(', ')}`);
  t.true(size.min > 0 && size.gzip > 0);
});
