#!/usr/bin/env node
// Checks that package-lock.json matches package.json, so that `npm ci` (what CI runs, and what the
// README tells contributors to run) installs on a clean clone. Works on copies of the two files in
// a temporary folder: nothing is installed and the project's node_modules is not touched.
//   1. `npm ci --dry-run` accepts the lockfile, and prints no EBADENGINE warning for this Node;
//   2. `npm install --package-lock-only` leaves the lockfile byte for byte as committed;
//   3. negative control: with a dependency added to package.json only, `npm ci --dry-run` refuses
//      (so check 1 cannot pass vacuously).
// `--node <path>` runs npm with that Node binary instead (scripts/node-matrix.js uses it to check the
// engines warnings under each Node version the package claims). Prints
// "lockfile-check: N passed, N failed".
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const nodeArg = process.argv.indexOf('--node');
const nodeBinary = nodeArg === -1 ? null : process.argv[nodeArg + 1];
const npmFlags = ['--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=warn'];

// With --node, run npm's own entry point with that binary (npm runs under whichever Node starts it).
function npm(args, cwd) {
  const [cmd, pre] = nodeBinary ? [nodeBinary, [npmCli()]] : ['npm', []];
  const result = spawnSync(cmd, [...pre, ...args, ...npmFlags], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
}

function npmCli() {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && /npm-cli\.js$/.test(fromEnv)) return fromEnv;
  const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  const real = realpathSync(which); // …/lib/node_modules/npm/bin/npm-cli.js on Linux and macOS installs
  if (!real.endsWith('npm-cli.js')) throw new Error(`cannot find npm-cli.js from ${which}`);
  return real;
}

const copy = (dir) => {
  mkdirSync(dir, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(root, f), join(dir, f));
  return dir;
};
const tail = (output) => output.split('\n').filter((l) => l.trim() && !/^npm error\s*$/.test(l)).slice(0, 12).join('\n');
const engineWarnings = (output) => [...output.matchAll(/EBADENGINE\s+package: '([^']+)',\s*\n.*required: (\{[^}]*\})/g)].map((m) => `${m[1]} requires ${m[2]}`);

const results = [];
function check(name, fn) {
  try {
    fn();
    results.push([true, name]);
  } catch (error) {
    results.push([false, `${name}: ${error.message}`]);
  }
}

const work = mkdtempSync(join(tmpdir(), 'sifredb-lockfile-'));
const nodeVersion = nodeBinary
  ? spawnSync(nodeBinary, ['--version'], { encoding: 'utf8' }).stdout.trim()
  : process.version;
try {
  check(`npm ci --dry-run accepts package-lock.json (Node ${nodeVersion})`, () => {
    const { status, output } = npm(['ci', '--dry-run'], copy(join(work, 'ci')));
    if (status !== 0) throw new Error(`npm ci refused:\n${tail(output)}\n(run \`npm install\` and commit package-lock.json)`);
    const warnings = engineWarnings(output);
    if (warnings.length > 0 || /EBADENGINE/.test(output)) {
      throw new Error(`dependencies that do not support Node ${nodeVersion} (package.json engines: ${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines?.node}):\n  ${warnings.join('\n  ') || tail(output)}`);
    }
  });

  if (!nodeBinary) {
    check('npm install --package-lock-only leaves package-lock.json unchanged', () => {
      const dir = copy(join(work, 'relock'));
      const { status, output } = npm(['install', '--package-lock-only'], dir);
      if (status !== 0) throw new Error(`npm install --package-lock-only failed:\n${tail(output)}`);
      if (!readFileSync(join(dir, 'package-lock.json')).equals(readFileSync(join(root, 'package-lock.json')))) {
        throw new Error('npm install rewrites package-lock.json: run `npm install` and commit the result');
      }
    });

    check('negative control: npm ci --dry-run refuses a dependency missing from the lockfile', () => {
      const dir = copy(join(work, 'drift'));
      // A local folder dependency: detecting the drift needs no registry.
      mkdirSync(join(dir, 'probe'));
      writeFileSync(join(dir, 'probe', 'package.json'), JSON.stringify({ name: 'sifredb-lockfile-probe', version: '1.0.0' }));
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      pkg.devDependencies = { ...pkg.devDependencies, 'sifredb-lockfile-probe': 'file:./probe' };
      writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
      const { status, output } = npm(['ci', '--dry-run'], dir);
      if (status === 0) throw new Error('npm ci accepted a package.json whose dependency is not in the lockfile');
      if (!/Missing: sifredb-lockfile-probe/.test(output)) throw new Error(`npm ci failed for another reason:\n${tail(output)}`);
    });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

for (const [ok, name] of results) console.log(`${ok ? '✔' : '✘'} ${name}`);
const failed = results.filter(([ok]) => !ok).length;
console.log(`lockfile-check: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
