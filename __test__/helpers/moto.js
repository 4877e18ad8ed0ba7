// Test harness: a real KMS-compatible server (moto's server mode) on 127.0.0.1 with a free port, and
// KMS clients pointed at it that count the requests they send, per command.
//
// moto is installed by scripts/setup-test-services.sh (`moto[server]` from PyPI); the tests never
// install anything. When it is missing or cannot start, startMoto() rejects and the test file fails:
// there is no skip.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KMSClient } from '@aws-sdk/client-kms';
import { freePort, sleep } from './net.js';

// The SDK's notice about future Node.js support is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const LAUNCHER = fileURLToPath(new URL('./moto_server.py', import.meta.url));
const PYTHON = process.env.SIFREDB_PYTHON || 'python3';
const START_TIMEOUT_MS = 60_000;

/** Fake credentials for the local server; moto accepts anything. They are not secrets. */
export const TEST_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
export const TEST_REGION = 'us-east-1';

async function answers(endpoint) {
  try {
    const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function startOnce() {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(PYTHON, [LAUNCHER, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  running.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    // Keep the start of the log (errors at startup) but not every request line of a long run.
    if (stderr.length < 16_384) stderr += chunk;
  });
  let exited = null;
  let spawnError = null;
  const exit = new Promise((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      exited = { code: null, signal: null };
      running.delete(child);
      resolve();
    });
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(child);
      resolve();
    });
  });

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!exited && Date.now() < deadline) {
    if (await answers(endpoint)) break;
    await sleep(100);
  }
  if (exited || Date.now() >= deadline) {
    child.kill('SIGKILL');
    await exit;
    const why = spawnError
      ? `${PYTHON} could not be run (${spawnError.code ?? spawnError.message})`
      : exited
        ? `it exited with ${exited.code ?? exited.signal}`
        : `it did not answer within ${START_TIMEOUT_MS} ms`;
    const error = new Error(
      `moto server failed to start on ${endpoint}: ${why}. Install it with scripts/setup-test-services.sh ` +
        `(pip install 'moto[server]').\n--- moto stderr ---\n${stderr.trim()}`,
    );
    error.portInUse = /address already in use/i.test(stderr);
    throw error;
  }

  let stopping = null;
  return {
    endpoint,
    port,
    /** The server's log so far (first 16 KiB). */
    log: () => stderr,
    /** Stops the server and waits until the process is gone. Idempotent. */
    stop() {
      stopping ??= (async () => {
        if (!exited) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exit;
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
}

/** Starts moto's server mode on a free port; resolves once it answers HTTP. */
export async function startMoto() {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce();
    } catch (error) {
      if (!error.portInUse || attempt >= 3) throw error;
    }
  }
}

/**
 * A KMSClient for the local server that counts the commands it sends: `client.calls.Decrypt` is the
 * number of Decrypt calls (one per `send`, whatever the SDK's retries), `client.attempts` the HTTP
 * requests actually made. Extra options go to the KMSClient constructor.
 */
export function countingKmsClient(endpoint, options = {}) {
  const client = new KMSClient({
    endpoint,
    region: TEST_REGION,
    // A fresh object per client: the SDK annotates the credentials object it is given.
    credentials: { ...TEST_CREDENTIALS },
    maxAttempts: 2,
    ...options,
  });
  const calls = {};
  const attempts = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      calls[context.commandName] = (calls[context.commandName] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'sifredbTestCallCounter' },
  );
  client.middlewareStack.add(
    (next, context) => async (args) => {
      attempts[context.commandName] = (attempts[context.commandName] ?? 0) + 1;
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'sifredbTestAttemptCounter' },
  );
  client.calls = calls;
  client.attempts = attempts;
  /** Counts of the commands that a provider sends (the test's own admin calls use another client). */
  client.resetCounts = () => {
    for (const key of Object.keys(calls)) delete calls[key];
    for (const key of Object.keys(attempts)) delete attempts[key];
  };
  return client;
}
