// Hostile buffers (issue 12, item 1): memory that another thread or a transfer changes during a
// call must never crash the process nor yield a wrong plaintext.
//
// - Public API, on the backend chosen by SIFREDB_BACKEND: a worker thread keeps rewriting an
//   envelope that lives on a SharedArrayBuffer while the main thread decrypts it; every successful
//   decryption returns exactly the plaintext, every failure is a clean SifreDB error.
// - The addon itself (loaded directly, whichever backend the run is for), in a child process so a
//   crash fails the test instead of the suite: detaching or shrinking the buffers of async batches
//   while the thread pool uses them; `lens` on a SharedArrayBuffer rewritten during sync batches; a
//   bounded fuzz of every export. The child must exit 0.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DeterministicVault, EncryptionContext, StaticKeyProvider, Vault } from '../dist/index.js';
import '../__test__/helpers/backends.js';

const SECONDS = Number(process.env.SIFREDB_HOSTILE_SECONDS ?? 1.2);
const provider = new StaticKeyProvider(randomBytes(32));
const ctx = EncryptionContext.of('users', 'email');
const vault = await Vault.open(provider);
const xvault = await Vault.open(provider, { algorithm: 'xchacha20-poly1305' });
const dvault = await DeterministicVault.open(provider);
const CLEAN = new Set(['ERR_SIFREDB_AUTH', 'ERR_SIFREDB_FORMAT', 'ERR_SIFREDB_INPUT', 'ERR_SIFREDB_KEY']);

/**
 * Copies `envelope` onto a SharedArrayBuffer and starts a worker that, until stopped, flips random
 * bytes of it (header and body) and puts them back, in a loop.
 */
function sharedEnvelope(envelope) {
  const sab = new SharedArrayBuffer(envelope.length);
  const view = new Uint8Array(sab);
  view.set(envelope);
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const view = new Uint8Array(workerData.sab);
     const stop = new Int32Array(workerData.stop);
     const orig = Uint8Array.from(view);
     let x = 7;
     while (Atomics.load(stop, 0) === 0) {
       for (let r = 0; r < 4096; r++) {
         x = (x * 1103515245 + 12345) & 0x7fffffff;
         const i = x % view.length;
         view[i] = orig[i] ^ (1 + (x >>> 16) % 255);
         for (let k = 0; k < (x & 63); k++) view[(i + k) % view.length] ^= 0x5a;
         view.set(orig);
       }
     }`,
    { eval: true, workerData: { sab, stop: stop.buffer } },
  );
  return {
    view,
    async close() {
      Atomics.store(stop, 0, 1);
      await worker.terminate();
    },
  };
}

/** Decrypts `view` with `decrypt` for SECONDS; counts right, wrong and failed calls. */
async function race(t, envelope, expected, decrypt) {
  const shared = sharedEnvelope(envelope);
  await new Promise((resolve) => setTimeout(resolve, 30));
  const counts = { right: 0, wrong: 0, failed: 0 };
  const unclean = [];
  const deadline = Date.now() + SECONDS * 1000;
  try {
    while (Date.now() < deadline) {
      for (let i = 0; i < 50; i++) {
        let result;
        try {
          result = await decrypt(shared.view);
        } catch (error) {
          counts.failed++;
          if (!CLEAN.has(error?.code)) unclean.push(`${error?.code}: ${error?.message}`);
          continue;
        }
        if (expected(result)) counts.right++;
        else counts.wrong++;
      }
    }
  } finally {
    await shared.close();
  }
  t.log(JSON.stringify(counts));
  t.is(counts.wrong, 0, 'a successful decryption returned bytes that are not the plaintext');
  t.deepEqual(unclean.slice(0, 3), [], 'failures are SifreDB input, format, key or auth errors');
  t.true(counts.right + counts.failed > 0);
}

const PLAIN = { short: randomBytes(24), long: randomBytes(4096) };
const same = (plain) => (value) => Buffer.isBuffer(value) && value.equals(plain);

for (const [size, plain] of Object.entries(PLAIN)) {
  test.serial(`shared memory rewritten by a worker: vault.decrypt (${size})`, async (t) => {
    await race(t, vault.encrypt(plain, ctx), same(plain), (view) => vault.decrypt(view, ctx));
  });

  test.serial(`shared memory rewritten by a worker: xchacha vault.decrypt (${size})`, async (t) => {
    await race(t, xvault.encrypt(plain, ctx), same(plain), (view) => xvault.decrypt(view, ctx));
  });

  test.serial(`shared memory rewritten by a worker: deterministicVault.decrypt (${size})`, async (t) => {
    await race(t, dvault.encrypt(plain, ctx), same(plain), (view) => dvault.decrypt(view, ctx));
  });

  test.serial(`shared memory rewritten by a worker: vault.decryptMany (${size})`, async (t) => {
    await race(t, vault.encrypt(plain, ctx), (values) => values.length === 2 && values.every(same(plain)), (view) =>
      vault.decryptMany([view, view], ctx),
    );
  });

  test.serial(`shared memory rewritten by a worker: vault.decryptManyAsync (${size})`, async (t) => {
    await race(t, vault.encrypt(plain, ctx), (values) => values.length === 2 && values.every(same(plain)), (view) =>
      vault.decryptManyAsync([view, view], ctx),
    );
  });

  test.serial(`shared memory rewritten by a worker: vault.decryptBytes with row binding (${size})`, async (t) => {
    const aad = Buffer.from('row-7');
    await race(t, vault.encrypt(plain, ctx, { aad }), same(plain), (view) => vault.decryptBytes(view, ctx, { aad }));
  });
}

const child = fileURLToPath(new URL('./helpers/hostile/addon-child.mjs', import.meta.url));

/** Runs the addon child in `mode`; it must exit 0 and print `ok`. */
function runChild(t, mode) {
  const result = spawnSync(process.execPath, ['--expose-gc', child, mode, String(SECONDS)], {
    encoding: 'utf8',
    timeout: 120_000,
    env: process.env,
  });
  const tail = (result.stderr ?? '').split('\n').slice(-15).join('\n');
  t.log(result.stdout.trim());
  t.is(result.signal, null, `killed by ${result.signal}\n${tail}`);
  t.is(result.status, 0, `exit ${result.status}\n${tail}`);
  t.regex(result.stdout, new RegExp(`^ok ${mode} `, 'm'));
}

test.serial('addon: detaching the buffers of async batches while they run neither crashes nor corrupts memory', (t) => {
  runChild(t, 'detach');
});

test.serial('addon: shrinking resizable buffers of async batches while they run neither crashes nor corrupts memory', (t) => {
  runChild(t, 'resize');
});

test.serial('addon: lens on a SharedArrayBuffer rewritten by a worker during sync batches does not abort', (t) => {
  runChild(t, 'lens');
});

test.serial('addon: bounded fuzz of every export returns or throws a JS error', (t) => {
  runChild(t, 'fuzz');
});
