// workerd, Cloudflare's Workers runtime (npm package `workerd`): esbuild bundles a module worker that
// imports `sifredb` with the conditions workerd, worker and browser, so package.json `exports` picks
// the web entry (dist/web.js). workerd serves it on 127.0.0.1 with a free port, without the
// nodejs_compat flag (no node: modules at all); each request runs every frozen vector through the
// public API inside the request handler and answers with the result.
//
// No native addon and no SIFREDB_BACKEND here, so both runs of the suite expect the JS backend.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, sleep } from './helpers/net.js';
import { assertVectorResult, assertWebEntry, bundle, makeProject, packageVersion, run, runtimeBinary, start } from './runtimes/harness.js';

const workerd = runtimeBinary('workerd');
const project = makeProject({ 'worker-entry.js': 'worker-entry.js' });
test.after.always(() => project.cleanup());

const TIMEOUT_MS = 20_000;
const COMPATIBILITY_DATE = '2025-09-01';

const config = (port) => `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .vectorWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);

const vectorWorker :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = "${COMPATIBILITY_DATE}",
);
`;

test('the workerd binary runs (npm package workerd)', async (t) => {
  const out = await run(workerd, ['--version']);
  t.is(out.code, 0, out.stderr);
  t.regex(out.stdout, /^workerd \d{4}-\d{2}-\d{2}/);
  t.log(`${out.stdout.trim()} (npm workerd@${packageVersion('workerd')}), esbuild ${packageVersion('esbuild')}`);
});

test('the worker bundle takes the web entry and reproduces every vector in workerd', async (t) => {
  const started = performance.now();
  const { code, inputs } = await bundle(project, 'worker-entry.js', { conditions: ['workerd', 'worker', 'browser'] });
  assertWebEntry(t, inputs, 'worker bundle');
  writeFileSync(join(project.dir, 'worker.js'), code);

  // A port that was free a moment ago; another try on a fresh one if workerd lost the race for it.
  let outcome;
  for (let attempt = 1; attempt <= 3 && outcome === undefined; attempt++) {
    const port = await freePort();
    writeFileSync(join(project.dir, 'config.capnp'), config(port));
    const server = start(workerd, ['serve', 'config.capnp', '--verbose'], { cwd: project.dir });
    let exited = false;
    server.exited.then(() => (exited = true));
    try {
      const deadline = Date.now() + TIMEOUT_MS;
      while (outcome === undefined && !exited && Date.now() < deadline) {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) });
          outcome = { status: response.status, body: await response.text() };
        } catch {
          await sleep(100);
        }
      }
      if (outcome === undefined) {
        const { stderr, stdout } = server.output();
        const why = exited ? 'workerd exited' : `no answer within ${TIMEOUT_MS} ms`;
        if (!exited || !/address already in use/i.test(stderr) || attempt === 3) return t.fail(`${why}:\n${stdout.slice(-2000)}\n${stderr.slice(-3000)}`);
      }
    } finally {
      await server.stop();
    }
  }
  t.is(outcome.status, 200, outcome.body.slice(0, 2000));
  const result = JSON.parse(outcome.body);
  t.log(`${result.runtime}: backend ${result.backend}${result.impl ? ` (${result.impl})` : ''}, ${result.checked} checks in ${result.ms} ms, total ${Math.round(performance.now() - started)} ms`);
  t.is(result.backend, 'js');
  assertVectorResult(t, result, 'workerd');
});
