// Bun (npm package `bun`): `import 'sifredb'` from an application's node_modules (the Node entry,
// dist/index.js), then every frozen vector and a round trip on both vaults through the public API
// (__test__/runtimes/vector-check.js). Bun loads napi addons, so the automatic choice is native;
// SIFREDB_BACKEND (this spec runs once per value, like the whole suite) is obeyed as under Node.
import test from 'ava';
import { assertVectorResult, envWithout, makeProject, packageVersion, resultOf, run, runtimeBinary } from './runtimes/harness.js';

const bun = runtimeBinary('bun');
const project = makeProject({ 'entry.js': 'entry.js' });
test.after.always(() => project.cleanup());

const requested = process.env.SIFREDB_BACKEND || 'native';
const bunEnv = (env) => ({ ...env, NO_COLOR: '1', BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0' });

async function runBun(t, env, label) {
  // --no-install: resolve from node_modules only, never from a registry.
  const out = await run(bun, ['--no-install', 'entry.js'], { cwd: project.dir, env: bunEnv(env) });
  const result = resultOf(out);
  t.log(`bun (${label}): backend ${result.backend}${result.impl ? ` (${result.impl})` : ''}, ${result.checked} checks, import ${result.importMs} ms, run ${out.ms} ms`);
  if (result.backendError) t.log(`  backendError: ${result.backendError}`);
  return result;
}

test('the bun binary runs (npm package bun)', async (t) => {
  const out = await run(bun, ['--version'], { env: bunEnv(process.env) });
  t.is(out.code, 0, out.stderr);
  t.regex(out.stdout, /^1\.\d+\.\d+/);
  t.log(`bun ${out.stdout.trim()} (npm bun@${packageVersion('bun')})`);
});

test('automatic choice: the native backend loads, every vector reproduces', async (t) => {
  const result = await runBun(t, envWithout('SIFREDB_BACKEND', 'SIFREDB_JS_IMPL'), 'auto');
  if (result.importError) return t.fail(`importing sifredb in Bun failed: ${result.importError}`);
  t.is(result.backend, 'native', result.backendError);
  t.is(result.backendError, undefined);
  assertVectorResult(t, result, 'bun auto');
});

test(`SIFREDB_BACKEND=${requested} is obeyed and every vector reproduces`, async (t) => {
  const result = await runBun(t, { ...envWithout('SIFREDB_JS_IMPL'), SIFREDB_BACKEND: requested }, `SIFREDB_BACKEND=${requested}`);
  if (result.importError) return t.fail(`importing sifredb in Bun failed: ${result.importError}`);
  t.is(result.backend, requested);
  assertVectorResult(t, result, `bun SIFREDB_BACKEND=${requested}`);
});

test('the JS backend on the @noble engine reproduces every vector too', async (t) => {
  const result = await runBun(t, { ...process.env, SIFREDB_BACKEND: 'js', SIFREDB_JS_IMPL: 'noble' }, 'js, noble');
  if (result.importError) return t.fail(`importing sifredb in Bun failed: ${result.importError}`);
  t.is(result.backend, 'js');
  t.is(result.impl, 'noble');
  assertVectorResult(t, result, 'bun js noble');
});
