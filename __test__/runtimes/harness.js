// Test harness for the runtime specs (__test__/runtime-*.spec.js): finds the runtimes the npm
// devDependencies install (deno, bun, workerd, esbuild) and Debian's chromium, lays out a throwaway
// project that depends on `sifredb` the way an application does (node_modules/sifredb is a symlink
// to this repository, so resolution goes through package.json `exports`), runs child processes with
// a time limit, and reads back the result line the scripts in this folder print.
//
// A runtime that is missing is an error, never a skip: the specs fail loudly with what to install.
import { spawn } from 'node:child_process';
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const HERE = fileURLToPath(new URL('./', import.meta.url));
const require = createRequire(import.meta.url);

/** The parsed frozen vector files, as checkVectors() takes them. */
export function loadVectors() {
  const read = (name) => JSON.parse(readFileSync(join(REPO, 'test-vectors', name), 'utf8'));
  return { format: read('format-v1.json'), rowBinding: read('format-v1-row-binding.json') };
}

/** The directory of an installed npm package, or a loud error naming the devDependency. */
function packageDir(name) {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new Error(`npm package \`${name}\` is not installed: it is a devDependency of sifredb, run \`npm install\``);
  }
}

/** The installed version of an npm package (from its package.json). */
export function packageVersion(name) {
  return JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')).version;
}

function executable(path, what) {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${what}: ${path} is missing or not executable (its npm postinstall step puts the binary there; reinstall the package)`);
  }
  return path;
}

/** Path of a runtime binary: `deno`, `bun` and `workerd` from npm, `chromium` from Debian. */
export function runtimeBinary(name) {
  switch (name) {
    case 'deno':
      return executable(join(packageDir('deno'), process.platform === 'win32' ? 'deno.exe' : 'deno'), 'deno');
    case 'bun':
      return executable(join(packageDir('bun'), 'bin', 'bun.exe'), 'bun');
    case 'workerd':
      packageDir('workerd');
      return executable(require('workerd').default, 'workerd');
    case 'chromium': {
      const path = process.env.SIFREDB_CHROMIUM ?? '/usr/bin/chromium';
      if (!existsSync(path)) throw new Error(`chromium not found at ${path}: run \`bash scripts/setup-test-services.sh\` (Debian package chromium)`);
      return executable(path, 'chromium');
    }
    default:
      throw new Error(`unknown runtime ${name}`);
  }
}

/** esbuild, resolved like the runtimes (a devDependency). */
export function esbuild() {
  packageDir('esbuild');
  return require('esbuild');
}

/**
 * A throwaway application directory: package.json depending on sifredb, node_modules/sifredb → this
 * repository, the vector checker, both vector files and the given extra files (name → source path).
 * Returns { dir, cleanup }.
 */
export function makeProject(files = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-runtime-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(REPO, join(dir, 'node_modules', 'sifredb'), 'dir');
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'sifredb-runtime-check', private: true, type: 'module', dependencies: { sifredb: '*' } }, null, 2)}\n`);
  copyFileSync(join(HERE, 'vector-check.js'), join(dir, 'vector-check.js'));
  for (const name of ['format-v1.json', 'format-v1-row-binding.json']) copyFileSync(join(REPO, 'test-vectors', name), join(dir, name));
  for (const [name, source] of Object.entries(files)) copyFileSync(join(HERE, source), join(dir, name));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const children = new Set();
process.once('exit', () => {
  for (const child of children) killGroup(child, 'SIGKILL');
});

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Starts a child in its own process group (so a wrapper script's children go with it); `stop()`
 * ends that group. Output is collected in `output()`.
 */
export function start(command, args, { cwd, env = process.env } = {}) {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => {
    child.on('error', (error) => {
      stderr += `\nspawn failed: ${error.message}`;
      resolve({ code: null, signal: null });
    });
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    stop: async () => {
      if (children.has(child)) killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a command to its end or `timeoutMs`; resolves { code, signal, stdout, stderr, ms, timedOut }. */
export async function run(command, args, { cwd, env, timeoutMs = 20_000 } = {}) {
  const started = performance.now();
  const proc = start(command, args, { cwd, env });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.stop();
  }, timeoutMs);
  const { code, signal } = await proc.exited;
  clearTimeout(timer);
  return { code, signal, ...proc.output(), ms: Math.round(performance.now() - started), timedOut };
}

/** The JSON after `SIFREDB_RESULT ` in a script's output; an error quoting the output when absent. */
export function resultOf({ stdout, stderr, code, signal, timedOut }) {
  const line = stdout.split('\n').find((l) => l.startsWith('SIFREDB_RESULT '));
  if (line === undefined) {
    throw new Error(`no SIFREDB_RESULT line (exit ${code}${signal ? `, ${signal}` : ''}${timedOut ? ', timed out' : ''})\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`);
  }
  return JSON.parse(line.slice('SIFREDB_RESULT '.length));
}

/** The environment of a child without the variables that steer backend choice. */
export function envWithout(...names) {
  const env = { ...process.env };
  for (const name of names) delete env[name];
  return env;
}

/**
 * Asserts a checkVectors() result: no failures, and every vector of both files was reached (the
 * counts come from the files, so a vector added to them is expected everywhere at once).
 */
export function assertVectorResult(t, result, label) {
  const { format, rowBinding } = loadVectors();
  if (result.importError !== undefined) return t.fail(`${label}: importing sifredb failed: ${result.importError}`);
  if (result.error !== undefined) return t.fail(`${label}: the check threw: ${result.error}`);
  t.deepEqual(result.failures.slice(0, 10), [], `${label}: ${result.failures.length} failed checks`);
  const counts = result.counts ?? {};
  t.is(counts.context, format.contexts.length, `${label}: contexts`);
  t.is(counts.derivedKey, format.derivedKeys.length, `${label}: derived keys`);
  t.is(counts['envelope.decrypt.bytes'], format.envelopes.length, `${label}: envelopes`);
  t.is((counts['envelope.siv.reproduce'] ?? 0) + (counts['envelope.randomized.reproduce'] ?? 0), format.envelopes.length, `${label}: envelopes re-encrypted`);
  t.is(counts.blindIndex, format.blindIndex.length, `${label}: blind-index terms`);
  t.is(counts['rowBinding.decrypt.bytes'], rowBinding.envelopes.length, `${label}: row-bound envelopes`);
  t.true((counts.roundTrip ?? 0) >= 30, `${label}: round trips`);
  t.true(result.checked > 1000, `${label}: ${result.checked} checks`);
  return undefined;
}

/** Minified and gzipped size of a bundle; `bytes` is the esbuild output. */
export async function gzipSize(bytes) {
  const { gzipSync } = await import('node:zlib');
  return { min: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

/**
 * Bundles `entry` (a file of the project) with esbuild as an application would: `sifredb` resolves
 * through node_modules and package.json `exports` with the given conditions. Resolves
 * { code: Uint8Array, inputs: [paths] (as esbuild's metafile lists them), bytesByPackage: { name: bytes } }.
 */
export async function bundle(project, entry, { conditions = [], platform = 'browser', minify = false, esbuildOptions = {} } = {}) {
  const result = await esbuild()
    .build({
    entryPoints: [join(project.dir, entry)],
    absWorkingDir: project.dir,
    bundle: true,
    format: 'esm',
    platform,
    conditions,
    target: 'es2022',
    minify,
    write: false,
    metafile: true,
    logLevel: 'silent',
    ...esbuildOptions,
  })
    .catch((error) => {
      const where = (m) => (m.location ? `${m.location.file}:${m.location.line}: ` : '');
      const messages = (error.errors ?? []).map((m) => `${where(m)}${m.text}`);
      throw new Error(`esbuild could not bundle ${entry}${messages.length ? `:\n${messages.slice(0, 20).join('\n')}` : `: ${error.message}`}`);
    });
  const output = Object.values(result.metafile.outputs)[0];
  const bytesByPackage = {};
  for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1] ?? 'sifredb';
    bytesByPackage[name] = (bytesByPackage[name] ?? 0) + bytesInOutput;
  }
  return { code: result.outputFiles[0].contents, inputs: Object.keys(result.metafile.inputs), bytesByPackage };
}

/** Asserts that a bundle took the library from its web entry (dist/web.js) and not the Node one. */
export function assertWebEntry(t, inputs, label) {
  const library = inputs.filter((p) => p.includes('/dist/') || p.startsWith('dist/'));
  t.true(library.some((p) => p.endsWith('dist/web.js')), `${label}: the bundle does not include dist/web.js (package.json exports conditions)`);
  t.false(library.some((p) => p.endsWith('dist/index.js')), `${label}: the bundle includes the Node entry dist/index.js`);
}
