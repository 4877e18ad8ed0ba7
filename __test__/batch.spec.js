// Batch and async batch APIs through the public API, on both backends in every run: vault
// encryptMany / decryptMany / decryptManyBytes / reencryptMany and their Async forms, blindIndex.computeMany. What a
// batch returns must equal what single calls give; a bad item names its index and nothing of the
// batch is returned; async batches run concurrently and on any number of threads.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import {
  BlindIndex,
  DeterministicVault,
  EncryptionContext,
  Keyring,
  StaticKeyProvider,
  Vault,
  inspect,
} from '../dist/index.js';
import { jsBackend, nativeBackend } from './helpers/backends.js';

const ctx = EncryptionContext.of('users', 'email');
const otherCtx = EncryptionContext.of('users', 'phone');
const SIZES = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 1000, 4095, 4096, 4097, 65_535, 65_536];

/** Values of every size from 0 B to 64 KiB, as bytes and as strings (ASCII and multi-byte), plus typed values. */
function mixedValues() {
  const values = [];
  for (const size of SIZES) {
    values.push(randomBytes(size));
    values.push('a'.repeat(size));
    values.push('ü🔐'.repeat(Math.floor(size / 6)));
  }
  values.push(42.5, -0, 10n ** 30n, true, false, new Date(1_700_000_000_000), null, { a: [1, 'b'] }, new Uint8Array(0));
  return values;
}

/** `actual`, a value `decrypt` returned, is `expected`, the value encrypted. */
function same(t, actual, expected, message) {
  if (typeof expected === 'string') t.is(actual, expected, message);
  else if (expected instanceof Uint8Array) t.true(Buffer.from(expected).equals(actual), message);
  else t.deepEqual(actual, expected, message);
}

const backends = [nativeBackend, jsBackend];

async function setup(backend, keys = StaticKeyProvider.generate()) {
  const keyring = await Keyring.open(keys, { backend });
  return {
    keys,
    keyring,
    vault: await Vault.open(keyring),
    xvault: await Vault.open(keyring, { algorithm: 'xchacha20-poly1305' }),
    dvault: await DeterministicVault.open(keyring),
  };
}

function assertBatchError(t, error, code, name, index) {
  t.is(error.code, code, error.message);
  t.true(error.message.startsWith(`${name}[${index}]: `), error.message);
  t.is(error.index, index);
}

for (const backend of backends) {
  const tag = `[${backend.name}]`;

  test(`${tag} empty batches give empty results`, async (t) => {
    const { vault, dvault } = await setup(backend);
    const bi = await BlindIndex.open(vault.keyring, { name: 'email' });
    for (const v of [vault, dvault]) {
      t.deepEqual(v.encryptMany([], ctx), []);
      t.deepEqual(v.decryptMany([], ctx), []);
      t.deepEqual(v.decryptManyBytes([], ctx), []);
      t.deepEqual(v.reencryptMany([], ctx), []);
      t.deepEqual(await v.encryptManyAsync([], ctx), []);
      t.deepEqual(await v.decryptManyAsync([], ctx, { threads: 2 }), []);
      t.deepEqual(await v.decryptManyBytesAsync([], ctx, { threads: 2 }), []);
      t.deepEqual(await v.reencryptManyAsync([], ctx, { threads: 1 }), []);
    }
    t.deepEqual(bi.computeMany([], ctx), []);
  });

  test(`${tag} mixed sizes 0 B..64 KiB round-trip and match single calls`, async (t) => {
    const { vault, xvault, dvault } = await setup(backend);
    const values = mixedValues();
    for (const v of [vault, xvault, dvault]) {
      const sealed = v.encryptMany(values, ctx);
      t.is(sealed.length, values.length);
      const opened = v.decryptManyBytes(sealed, ctx);
      const typed = v.decryptMany(sealed, ctx);
      for (let i = 0; i < values.length; i++) {
        t.true(Buffer.isBuffer(sealed[i]));
        t.true(Buffer.isBuffer(opened[i]));
        same(t, v.decrypt(sealed[i], ctx), values[i], `value ${i} through decrypt`);
        same(t, typed[i], values[i], `value ${i} through decryptMany`);
        t.true(opened[i].equals(v.decryptBytes(sealed[i], ctx)), `value ${i} through decryptManyBytes`);
        if (v === dvault) t.true(sealed[i].equals(v.encrypt(values[i], ctx)), `deterministic value ${i} equals encrypt()`);
      }
      const asyncSealed = await v.encryptManyAsync(values, ctx, { threads: 3 });
      const asyncOpened = await v.decryptManyBytesAsync(asyncSealed, ctx, { threads: 3 });
      const asyncTyped = await v.decryptManyAsync(asyncSealed, ctx, { threads: 3 });
      for (let i = 0; i < values.length; i++) {
        same(t, v.decrypt(asyncSealed[i], ctx), values[i], `async value ${i}`);
        same(t, asyncTyped[i], values[i], `async decryptMany ${i}`);
        t.true(asyncOpened[i].equals(opened[i]), `async decryptManyBytes ${i}`);
        if (v === dvault) t.true(asyncSealed[i].equals(sealed[i]));
      }
    }
  });

  test(`${tag} a bad value in the middle names its index and returns nothing`, async (t) => {
    const { vault, dvault } = await setup(backend);
    for (const v of [vault, dvault]) {
      const values = Array.from({ length: 9 }, (_, i) => `value ${i}`);
      for (const bad of ['\uD800 lone surrogate', undefined, Symbol('x'), () => 1, new Map()]) {
        const withBad = values.slice();
        withBad[4] = bad;
        assertBatchError(t, t.throws(() => v.encryptMany(withBad, ctx)), 'ERR_SIFREDB_INPUT', 'values', 4);
        assertBatchError(t, await t.throwsAsync(v.encryptManyAsync(withBad, ctx)), 'ERR_SIFREDB_INPUT', 'values', 4);
      }

      const sealed = v.encryptMany(values, ctx);
      const tampered = sealed.slice();
      tampered[5] = Buffer.from(sealed[5]);
      tampered[5][tampered[5].length - 1] ^= 1;
      const notCiphertext = sealed.slice();
      notCiphertext[3] = Buffer.from('plain text still in the column');
      const moved = sealed.slice();
      moved[6] = v.encrypt('value 6', otherCtx);
      const text = sealed.map((c) => `sdb1:${c.toString('base64url')}`);
      text[2] = 'sdb1:!!';
      const cases = [
        [tampered, 'ERR_SIFREDB_AUTH', 5],
        [notCiphertext, 'ERR_SIFREDB_FORMAT', 3],
        [moved, 'ERR_SIFREDB_AUTH', 6],
        [text, 'ERR_SIFREDB_FORMAT', 2],
      ];
      for (const [batch, code, index] of cases) {
        assertBatchError(t, t.throws(() => v.decryptMany(batch, ctx)), code, 'ciphertexts', index);
        assertBatchError(t, t.throws(() => v.decryptManyBytes(batch, ctx)), code, 'ciphertexts', index);
        assertBatchError(t, t.throws(() => v.reencryptMany(batch, ctx)), code, 'ciphertexts', index);
        assertBatchError(t, await t.throwsAsync(v.decryptManyAsync(batch, ctx, { threads: 2 })), code, 'ciphertexts', index);
        assertBatchError(t, await t.throwsAsync(v.decryptManyBytesAsync(batch, ctx, { threads: 2 })), code, 'ciphertexts', index);
        assertBatchError(t, await t.throwsAsync(v.reencryptManyAsync(batch, ctx, { threads: 2 })), code, 'ciphertexts', index);
      }
      // The batch still works afterwards (nothing left half-done in the handle).
      t.deepEqual(
        v.decryptMany(sealed, ctx),
        values,
      );
    }
  });

  test(`${tag} a failure deep in a split async batch names its index in the whole batch`, async (t) => {
    const { vault } = await setup(backend);
    const values = Array.from({ length: 3000 }, (_, i) => randomBytes(64 + (i % 50)));
    const sealed = await vault.encryptManyAsync(values, ctx, { threads: 4 });
    const broken = sealed.slice();
    for (const i of [2500, 1700]) {
      broken[i] = Buffer.from(sealed[i]);
      broken[i][20] ^= 0x80;
    }
    // Parts fail independently; the first bad index of the batch is the one reported.
    for (const threads of [1, 2, 4]) {
      const error = await t.throwsAsync(vault.decryptManyAsync(broken, ctx, { threads }));
      assertBatchError(t, error, 'ERR_SIFREDB_AUTH', 'ciphertexts', 1700);
      const re = await t.throwsAsync(vault.reencryptManyAsync(broken, ctx, { threads }));
      assertBatchError(t, re, 'ERR_SIFREDB_AUTH', 'ciphertexts', 1700);
    }
  });

  test(`${tag} concurrent async batches each get their own results`, async (t) => {
    const { vault, dvault } = await setup(backend);
    const batches = Array.from({ length: 8 }, (_, b) => Array.from({ length: 500 + b * 37 }, (_, i) => `batch ${b} value ${i} ${'x'.repeat(i % 90)}`));
    const sealed = await Promise.all(batches.map((values, b) => vault.encryptManyAsync(values, ctx, { threads: 1 + (b % 3) })));
    const [opened, resealed, det] = await Promise.all([
      Promise.all(sealed.map((s) => vault.decryptManyAsync(s, ctx, { threads: 2 }))),
      Promise.all(sealed.map((s) => vault.reencryptManyAsync(s, ctx))),
      Promise.all(batches.map((values) => dvault.encryptManyAsync(values, ctx, { threads: 2 }))),
    ]);
    for (let b = 0; b < batches.length; b++) {
      t.deepEqual(
        opened[b],
        batches[b],
      );
      t.deepEqual(
        vault.decryptMany(resealed[b], ctx),
        batches[b],
      );
      const expected = dvault.encryptMany(batches[b], ctx);
      t.true(det[b].every((c, i) => c.equals(expected[i])), `deterministic batch ${b}`);
    }
  });

  test(`${tag} async batches on 1 and 2 threads give the same results`, async (t) => {
    const { vault, dvault } = await setup(backend);
    const values = Array.from({ length: 5000 }, (_, i) => randomBytes(32 + (i % 7)));
    const one = await dvault.encryptManyAsync(values, ctx, { threads: 1 });
    const two = await dvault.encryptManyAsync(values, ctx, { threads: 2 });
    t.true(one.every((c, i) => c.equals(two[i])));
    const sealed = await vault.encryptManyAsync(values, ctx, { threads: 2 });
    for (const threads of [1, 2]) {
      const opened = await vault.decryptManyBytesAsync(sealed, ctx, { threads });
      t.true(opened.every((p, i) => p.equals(values[i])), `decrypt on ${threads} thread(s)`);
      const typed = await vault.decryptManyAsync(sealed, ctx, { threads, expect: 'bytes' });
      t.true(typed.every((p, i) => p.equals(values[i])), `typed decrypt on ${threads} thread(s)`);
      const re = await vault.reencryptManyAsync(sealed, ctx, { threads });
      t.true(vault.decryptManyBytes(re, ctx).every((p, i) => p.equals(values[i])), `reencrypt on ${threads} thread(s)`);
    }
    for (const threads of [0, 1.5, -1, 'two', 1e6]) {
      const error = await t.throwsAsync(vault.encryptManyAsync(values, ctx, { threads }));
      t.is(error.code, 'ERR_SIFREDB_INPUT');
      t.regex(error.message, /threads/);
    }
  });

  test(`${tag} async batches settle on a later tick`, async (t) => {
    const { vault } = await setup(backend);
    let settled = false;
    const pending = vault.encryptManyAsync(['a', 'b'], ctx).then(() => (settled = true));
    await Promise.resolve();
    t.false(settled);
    await pending;
    t.true(settled);
  });

  test(`${tag} reencryptMany after a rotation moves every value to the current version`, async (t) => {
    const keys = StaticKeyProvider.generate();
    const { keyring, vault, xvault, dvault } = await setup(backend, keys);
    const values = mixedValues();
    const v1 = vault.encryptMany(values, ctx);
    const x1 = xvault.encryptMany(values, ctx);
    const d1 = dvault.encryptMany(values, ctx);
    await keys.rotate();
    await keyring.refresh();
    t.is(vault.currentVersion, 2);
    const v2 = vault.encryptMany(values.slice(0, 10), ctx);
    // One batch mixing key versions, algorithms and both forms.
    const mixed = [...v1, ...x1.slice(0, 5), ...v2].map((c, i) => (i % 3 === 0 ? `sdb1:${c.toString('base64url')}` : c));
    const expected = [...values, ...values.slice(0, 5), ...values.slice(0, 10)];
    for (const result of [vault.reencryptMany(mixed, ctx), await vault.reencryptManyAsync(mixed, ctx, { threads: 2 })]) {
      t.is(result.length, mixed.length);
      for (let i = 0; i < result.length; i++) {
        t.is(typeof result[i], typeof mixed[i], `form of ${i} kept`);
        const info = inspect(result[i]);
        t.is(info.keyVersion, 2);
        t.is(info.algorithm, 'chacha20-poly1305');
        same(t, vault.decrypt(result[i], ctx), expected[i], `value ${i}`);
      }
    }
    const d2 = dvault.reencryptMany(d1, ctx);
    for (let i = 0; i < values.length; i++) t.true(d2[i].equals(dvault.encrypt(values[i], ctx)), `deterministic ${i} under v2`);
    // The batch reads split a batch mixing versions by key, and put each value back in its place.
    const opened = vault.decryptManyBytes(mixed, ctx);
    for (let i = 0; i < mixed.length; i++) t.true(opened[i].equals(vault.decryptBytes(mixed[i], ctx)));
    for (const typed of [vault.decryptMany(mixed, ctx), await vault.decryptManyAsync(mixed, ctx, { threads: 2 })]) {
      for (let i = 0; i < mixed.length; i++) same(t, typed[i], expected[i], `typed value ${i} of the mixed batch`);
    }
  });

  test(`${tag} a handle's computeField equals compute of the one-field message`, async (t) => {
    const { keyring } = await setup(backend);
    const handle = keyring.blindIndex(ctx, 'email');
    for (const text of ['', 'a', 'ü🔐'.repeat(200), 'x'.repeat(600), 'y'.repeat(5000)]) {
      const bytes = Buffer.from(text, 'utf8');
      const message = Buffer.concat([Buffer.from([0, 0, 0, 0]), bytes]);
      message.writeUInt32BE(bytes.length, 0);
      for (const bits of [8, 13, 64, 256]) {
        const expected = handle.compute(message, bits);
        t.true(handle.computeField(text, bits).equals(expected), `string of ${text.length} at ${bits} bits`);
        t.true(handle.computeField(bytes, bits).equals(expected), `bytes of ${bytes.length} at ${bits} bits`);
      }
    }
    t.is(t.throws(() => handle.computeField('\uDC00', 16)).code, 'ERR_SIFREDB_INPUT');
    t.is(t.throws(() => handle.computeField(42, 16)).code, 'ERR_SIFREDB_INPUT');
    t.is(t.throws(() => handle.computeField('a', 7)).code, 'ERR_SIFREDB_INPUT');
  });

  test(`${tag} blindIndex.computeMany matches compute and names a bad value`, async (t) => {
    const { keyring } = await setup(backend);
    const bi = await BlindIndex.open(keyring, { name: 'email', bits: 20, transforms: ['trim', 'lowercase'] });
    const values = ['Alice@Example.com ', 'bob@example.com', '', 'ü'.repeat(300), 12345];
    const terms = bi.computeMany(values, ctx);
    t.deepEqual(terms, values.map((v) => bi.compute(v, ctx)));
    assertBatchError(t, t.throws(() => bi.computeMany(['a', 'b', {}], ctx)), 'ERR_SIFREDB_INPUT', 'values', 2);
  });
}

test('cross-backend: batch output of one backend decrypts on the other', async (t) => {
  const keys = StaticKeyProvider.generate();
  const [native, js] = await Promise.all([setup(nativeBackend, keys), setup(jsBackend, keys)]);
  const values = mixedValues();
  for (const name of ['vault', 'xvault', 'dvault']) {
    for (const [from, to] of [
      [native[name], js[name]],
      [js[name], native[name]],
    ]) {
      const sealed = from.encryptMany(values, ctx);
      const asyncSealed = await from.encryptManyAsync(values, ctx, { threads: 2 });
      for (const batch of [sealed, asyncSealed]) {
        const opened = to.decryptManyBytes(batch, ctx);
        const typed = to.decryptMany(batch, ctx);
        for (let i = 0; i < values.length; i++) {
          same(t, to.decrypt(batch[i], ctx), values[i], `${name} value ${i}`);
          same(t, typed[i], values[i], `${name} value ${i} through decryptMany`);
          t.true(opened[i].equals(from.decryptBytes(batch[i], ctx)));
        }
        const re = await to.reencryptManyAsync(batch, ctx);
        for (let i = 0; i < values.length; i++) same(t, from.decrypt(re[i], ctx), values[i]);
      }
    }
  }
  const d = native.dvault.encryptMany(values, ctx);
  const e = js.dvault.encryptMany(values, ctx);
  t.true(d.every((c, i) => c.equals(e[i])), 'deterministic batches are byte-identical');
  const biNative = await BlindIndex.open(native.keyring, { name: 'email' });
  const biJs = await BlindIndex.open(js.keyring, { name: 'email' });
  const words = ['a', 'b', 'c@d.e', ''];
  t.deepEqual(biNative.computeMany(words, ctx), biJs.computeMany(words, ctx));
});
