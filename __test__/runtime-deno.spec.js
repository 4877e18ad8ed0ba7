// Deno 2 (npm package `deno`): `import 'sifredb'` from an application's node_modules (the Node entry,
// dist/index.js) under Deno's permission system, then every frozen vector through the public API
// (__test__/runtimes/vector-check.js).
//
// - No permissions at all: the import must succeed (nothing at load may need --allow-env, --allow-sys
//   or --allow-read), the JS backend is chosen and backendError says the addon needs --allow-ffi.
// - --allow-ffi --allow-read only: the native addon loads; still no env or sys access needed.
// - --allow-ffi --allow-read --allow-env: SIFREDB_BACKEND is readable and obeyed, as under Node
//   (this spec runs once per SIFREDB_BACKEND value, like the whole suite).
import test from 'ava';
import { assertVectorResult, envWithout, makeProject, packageVersion, resultOf, run, runtimeBinary } from './runtimes/harness.js';

const deno = runtimeBinary('deno');
const project = makeProject({ 'entry.js': 'entry.js' });
test.after.always(() => project.cleanup());

const requested = process.env.SIFREDB_BACKEND || 'native';
const BASE = ['run', '--node-modules-dir=manual', '--no-prompt', '--quiet'];
const denoEnv = (env) => ({ ...env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' });

async function runDeno(t, permissions, env) {
  const out = await run(deno, [...BASE, ...permissions, 'entry.js'], { cwd: project.dir, env: denoEnv(env) });
  const result = resultOf(out);
  t.log(`deno ${permissions.join(' ') || '(no permissions)'}: backend ${result.backend}${result.impl ? ` (${result.impl})` : ''}, ${result.checked} checks, import ${result.importMs} ms, run ${out.ms} ms`);
  if (result.backendError) t.log(`  backendError: ${result.backendError}`);
  return result;
}

test('the deno binary runs (npm package deno)', async (t) => {
  const out = await run(deno, ['--version'], { env: denoEnv(process.env) });
  t.is(out.code, 0, out.stderr);
  t.regex(out.stdout, /^deno 2\./);
  t.log(`${out.stdout.split('\n')[0]} (npm deno@${packageVersion('deno')})`);
});

test('no permissions: imports, falls back to the JS backend with a clear backendError, reproduces every vector', async (t) => {
  const result = await runDeno(t, [], envWithout('SIFREDB_BACKEND', 'SIFREDB_JS_IMPL'));
  if (result.importError) return t.fail(`importing sifredb with no Deno permissions failed: ${result.importError}`);
  t.is(result.backend, 'js');
  t.is(typeof result.backendError, 'string', 'backendError says why the native addon was not used');
  t.regex(result.backendError ?? '', /allow-ffi/, 'backendError names the missing permission');
  assertVectorResult(t, result, 'deno, no permissions');
});

test('--allow-ffi --allow-read: the native backend, without env or sys access', async (t) => {
  const result = await runDeno(t, ['--allow-ffi', '--allow-read'], envWithout('SIFREDB_BACKEND', 'SIFREDB_JS_IMPL'));
  if (result.importError) return t.fail(`importing sifredb with --allow-ffi --allow-read failed: ${result.importError}`);
  t.is(result.backend, 'native', result.backendError);
  t.is(result.backendError, undefined);
  assertVectorResult(t, result, 'deno --allow-ffi --allow-read');
});

test(`--allow-ffi --allow-read --allow-env: SIFREDB_BACKEND=${requested} is obeyed`, async (t) => {
  const result = await runDeno(t, ['--allow-ffi', '--allow-read', '--allow-env'], { ...envWithout('SIFREDB_JS_IMPL'), SIFREDB_BACKEND: requested });
  if (result.importError) return t.fail(`importing sifredb with --allow-ffi --allow-read --allow-env failed: ${result.importError}`);
  t.is(result.backend, requested, result.backendError);
  assertVectorResult(t, result, `deno, SIFREDB_BACKEND=${requested}`);
});
