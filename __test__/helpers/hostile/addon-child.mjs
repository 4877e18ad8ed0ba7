// Child process of __test__/hostile-buffers.spec.js: hostile calls on the native addon that, before
// the fix, crashed the process (segfault or abort). Usage: node --expose-gc addon-child.mjs MODE
// [SECONDS]; MODE is `detach`, `resize`, `lens` or `fuzz`. Prints `ok <counts>` and exits 0 when
// every call returned, threw or rejected a JS error. SIFREDB_ADDON overrides the addon's path.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
const addonPath = process.env.SIFREDB_ADDON ?? join(here, '..', '..', '..', `sifredb.linux-${process.arch}-gnu.node`);
const addon = createRequire(import.meta.url)(addonPath);
const fast = addon.fastPath();
const [mode, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 1.5);

const root = new addon.NativeRootKey(1, randomBytes(32));
// EncryptionContext.of('t', 'c').bytes
const CONTEXT = Buffer.from('01000000017400016300000001', 'hex');
const chacha = root.randomizedCipher(1, CONTEXT);
const xchacha = root.randomizedCipher(2, CONTEXT);
const siv = root.deterministicCipher(CONTEXT);
const index = root.blindIndex(CONTEXT, Buffer.from('idx'));
const OVERHEAD = 35;
const OFFSET = 19;

const counts = { resolved: 0, rejected: 0, threw: 0 };
const codes = new Set();
function sawError(error, kind) {
  counts[kind]++;
  const code = error?.code;
  if (typeof code !== 'string' || !code.startsWith('ERR_SIFREDB_')) {
    // A JS TypeError from napi-rs or our own argument checks is fine too, as long as it is an Error.
    if (!(error instanceof Error)) {
      console.error('not an Error:', error);
      process.exit(3);
    }
  }
  codes.add(code ?? error?.name);
}

/** `n` plaintexts (`tag ‖ value`) of `size` bytes back to back, and their lengths. */
function plaintexts(n, size) {
  const lens = new Uint32Array(n).fill(size);
  const input = Buffer.alloc(n * size, 0x61);
  return { input, lens };
}

/** `n` envelopes sealed by `chacha`, back to back, and their lengths. */
function envelopes(n, size) {
  const lens = new Uint32Array(n).fill(size);
  // Each record holds its plaintext (`0x61` bytes) at the plaintext offset; sealed in place.
  const output = Buffer.alloc(n * (size + OVERHEAD), 0x61);
  fast.sealMany(chacha.handle(), output, lens);
  return { envelopes: output, lens: new Uint32Array(n).fill(size + OVERHEAD), plain: n * size };
}

// Big enough that the memory is freed with munmap, and the work outlives the JS that follows.
const N = 40_000;
const SIZE = 400;

/** A Uint8Array of `length` on a buffer that `hostile(kind)` can then take away. */
function hostileArray(length, kind) {
  if (kind === 'resize') {
    const ab = new ArrayBuffer(length, { maxByteLength: length });
    return { array: new Uint8Array(ab), strike: () => ab.resize(0) };
  }
  const ab = new ArrayBuffer(length);
  return {
    array: new Uint8Array(ab),
    strike: () => {
      structuredClone(ab, { transfer: [ab] });
    },
  };
}

async function settle(promise) {
  try {
    await promise;
    counts.resolved++;
  } catch (error) {
    sawError(error, 'rejected');
  }
}

async function detachOrResize(kind) {
  const sealed = envelopes(N, SIZE);
  const calls = {
    sealFromAsync: (which) => {
      const { input, lens } = plaintexts(N, SIZE);
      const inp = which === 'input' ? hostileArray(input.length, kind) : { array: input, strike() {} };
      if (which === 'input') inp.array.set(input);
      const out = which === 'output' ? hostileArray(N * (SIZE + OVERHEAD), kind) : { array: Buffer.alloc(N * (SIZE + OVERHEAD)), strike() {} };
      return [() => fast.sealFromAsync(chacha.handle(), inp.array, lens, out.array), inp, out];
    },
    openIntoAsync: (which) => {
      const inp = which === 'input' ? hostileArray(sealed.envelopes.length, kind) : { array: Buffer.from(sealed.envelopes), strike() {} };
      if (which === 'input') inp.array.set(sealed.envelopes);
      const out = which === 'output' ? hostileArray(sealed.plain, kind) : { array: Buffer.alloc(sealed.plain), strike() {} };
      return [() => fast.openIntoAsync(chacha.handle(), inp.array, sealed.lens, out.array), inp, out];
    },
    resealManyAsync: (which) => {
      const inp = which === 'input' ? hostileArray(sealed.envelopes.length, kind) : { array: Buffer.from(sealed.envelopes), strike() {} };
      if (which === 'input') inp.array.set(sealed.envelopes);
      const out = which === 'output' ? hostileArray(N * (SIZE + 47), kind) : { array: Buffer.alloc(N * (SIZE + 47)), strike() {} };
      return [() => fast.resealManyAsync(chacha.handle(), xchacha.handle(), inp.array, sealed.lens, out.array), inp, out];
    },
  };
  const deadline = Date.now() + seconds * 1000;
  let rounds = 0;
  while (Date.now() < deadline || rounds === 0) {
    for (const [name, make] of Object.entries(calls)) {
      for (const which of ['input', 'output']) {
        const [call, inp, out] = make(which);
        let promise;
        try {
          promise = call();
        } catch (error) {
          sawError(error, 'threw');
          continue;
        }
        (which === 'input' ? inp : out).strike();
        globalThis.gc?.();
        // Fill the freed pages with something else meanwhile.
        const junk = [];
        for (let i = 0; i < 8; i++) junk.push(Buffer.alloc(1 << 20, i));
        await settle(promise);
        if (name === '') console.log(junk.length);
      }
    }
    rounds++;
  }
  return rounds;
}

async function lensRace() {
  // `lens` on a SharedArrayBuffer that a worker flips between valid lengths and hostile ones.
  const n = 20_000;
  const size = 24;
  const sealed = envelopes(n, size);
  const sab = new SharedArrayBuffer(n * 4);
  const lens = new Uint32Array(sab);
  lens.set(sealed.lens);
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const lens = new Uint32Array(workerData.sab);
     const good = workerData.good;
     const end = Date.now() + workerData.ms;
     let x = 1;
     let spin = 0;
     // Mostly valid, with short bursts of huge lengths: validation tends to pass, the use not.
     while (Date.now() < end) {
       for (let r = 0; r < 1000; r++) {
         x = (x * 1103515245 + 12345) & 0x7fffffff;
         const start = x % (lens.length - 256);
         for (let k = 0; k < 256; k++) lens[start + k] = 0xfffff000;
         for (let k = 0; k < 256; k++) lens[start + k] = good;
         for (let k = 0; k < 3000; k++) spin += k;
       }
     }`,
    { eval: true, workerData: { sab, good: size + OVERHEAD, ms: seconds * 1000 + 500 } },
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  const macLens = new Uint32Array(sab);
  const messages = Buffer.alloc(n * (size + OVERHEAD), 1);
  const deadline = Date.now() + seconds * 1000;
  let rounds = 0;
  while (Date.now() < deadline) {
    const attempts = [
      () => fast.openInto(chacha.handle(), sealed.envelopes, lens, Buffer.alloc(n * size)),
      () => fast.resealMany(chacha.handle(), xchacha.handle(), Buffer.from(sealed.envelopes), lens, Buffer.alloc(n * (size + 47))),
      () => fast.macMany(index.handle(), messages, macLens, 128, Buffer.alloc(n * 16)),
      () => fast.sealMany(chacha.handle(), Buffer.alloc(n * (size + OVERHEAD)), lens),
    ];
    for (const attempt of attempts) {
      try {
        attempt();
        counts.resolved++;
      } catch (error) {
        sawError(error, 'threw');
      }
    }
    rounds++;
  }
  await worker.terminate();
  return rounds;
}

// ----- fuzz -----
let seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const rand = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed;
};
const pick = (list) => list[rand() % list.length];

function fuzzValue(depth = 0) {
  const n = pick([0, 1, 7, 16, 19, 32, 35, 47, 64, 100, 1000, 5000]);
  const kinds = [
    () => undefined,
    () => null,
    () => rand() % 300,
    () => -1,
    () => 2 ** 32 + 5,
    () => NaN,
    () => 1.5,
    () => 'x'.repeat(n),
    () => '\ud800',
    () => ({}),
    () => [],
    () => Symbol('s'),
    () => 10n,
    () => () => 1,
    () => Buffer.alloc(n, rand() & 0xff),
    () => randomBytes(n),
    () => new Uint8Array(n),
    () => new Uint32Array(n >> 2 || 1).fill(rand()),
    () => new Uint32Array(n).fill(rand() % 64),
    () => new Uint16Array(n),
    () => new Float64Array(n),
    () => new DataView(new ArrayBuffer(n)),
    () => new ArrayBuffer(n),
    () => new Uint8Array(new SharedArrayBuffer(n)),
    () => new Uint32Array(new SharedArrayBuffer(4 * (n || 1))).fill(rand() % 64),
    () => new Uint8Array(new ArrayBuffer(n, { maxByteLength: 2 * n + 1 })),
    () => {
      const a = new Uint8Array(n);
      structuredClone(a.buffer, { transfer: [a.buffer] });
      return a;
    },
    () => new Uint8Array(64).subarray(3, 3 + Math.min(n, 61)),
    () => new Uint32Array(new ArrayBuffer(64), 4, 3),
    () => chacha.handle(),
    () => siv.handle(),
    () => index.handle(),
    () => chacha,
    () => (depth < 1 ? sealedOne() : undefined),
  ];
  return pick(kinds)();
}

function sealedOne() {
  return chacha.encryptWithNonce(Buffer.from('hello'), 3, randomBytes(12));
}

const handles = () => pick([chacha.handle(), xchacha.handle(), siv.handle(), index.handle(), {}, 1]);

async function fuzz() {
  const fastNames = Object.keys(fast);
  const targets = [
    ...fastNames.map((name) => [name, (...a) => fast[name](...a)]),
    ...['encryptBound', 'decryptBound', 'encryptBoundWithNonce', 'encryptWithNonce'].map((m) => [
      `NativeCipher.${m}`,
      (...a) => pick([chacha, xchacha, siv])[m](...a),
    ]),
    ['NativeRootKey', (...a) => new addon.NativeRootKey(...a)],
    ['NativeRootKey.randomizedCipher', (...a) => root.randomizedCipher(...a)],
    ['NativeRootKey.deterministicCipher', (...a) => root.deterministicCipher(...a)],
    ['NativeRootKey.blindIndex', (...a) => root.blindIndex(...a)],
    ...Object.keys(addon)
      .filter((k) => typeof addon[k] === 'function' && !/^[A-Z]/.test(k) && k !== 'fastPath')
      .map((k) => [k, (...a) => addon[k](...a)]),
  ];
  const deadline = Date.now() + seconds * 1000;
  let calls = 0;
  const pending = [];
  while (Date.now() < deadline) {
    for (let i = 0; i < 200; i++) {
      const [, fn] = pick(targets);
      const argc = rand() % 6;
      const args = [];
      for (let a = 0; a < argc; a++) args.push(a === 0 && rand() % 2 ? handles() : fuzzValue());
      calls++;
      try {
        const result = fn(...args);
        if (result instanceof Promise) pending.push(settle(result));
        else counts.resolved++;
      } catch (error) {
        sawError(error, 'threw');
      }
    }
    if (pending.length > 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return calls;
}

let rounds;
if (mode === 'detach' || mode === 'resize') rounds = await detachOrResize(mode);
else if (mode === 'lens') rounds = await lensRace();
else if (mode === 'fuzz') rounds = await fuzz();
else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
console.log(`ok ${mode} rounds=${rounds} ${JSON.stringify(counts)} codes=${[...codes].join(',')}`);
