// Row binding (docs/FORMAT.md, "Row binding"): per-value associated data such as a primary key.
// Behaviour runs on the backend chosen by SIFREDB_BACKEND; the frozen vectors of
// test-vectors/format-v1-row-binding.json and the cross-backend checks run on both backends explicitly.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { DeterministicVault, EncryptionContext, Keyring, StaticKeyProvider, Vault, encodeRowAd, inspect } from '../dist/index.js';
import { jsBackend, nativeBackend } from './helpers/backends.js';

const vectors = JSON.parse(readFileSync(new URL('../test-vectors/format-v1-row-binding.json', import.meta.url), 'utf8'));
const hex = (s) => Buffer.from(s, 'hex');
const AUTH = { code: 'ERR_SIFREDB_AUTH' };
const INPUT = { code: 'ERR_SIFREDB_INPUT' };

const [key1, key2] = [randomBytes(32), randomBytes(32)];
const provider = new StaticKeyProvider({
  keys: [
    { version: 1, key: Buffer.from(key1) },
    { version: 2, key: Buffer.from(key2) },
  ],
  current: 1,
});
const keyring = await Keyring.open(provider);
const vaults = {
  'chacha20-poly1305': await Vault.open(keyring),
  'xchacha20-poly1305': await Vault.open(keyring, { algorithm: 'xchacha20-poly1305' }),
  'aes-256-siv': await DeterministicVault.open(keyring),
};
const ctx = EncryptionContext.of('users', 'email');

// ---- frozen vectors, both backends ----

const vectorContexts = new Map(vectors.contexts.map((c) => [c.name, new EncryptionContext({ tenant: c.tenant, table: c.table, column: c.column, version: c.version })]));
const vectorProvider = new StaticKeyProvider({ keys: [{ version: vectors.rootKey.version, key: hex(vectors.rootKey.hex) }] });
const valueOf = (v) => (v.typeTag === 1 ? hex(v.valueHex).toString('utf8') : hex(v.valueHex));

test('the row-binding vector file covers the three algorithms and is separate from format-v1.json', (t) => {
  t.is(vectors.format, 1);
  for (const id of [1, 2, 3]) t.true(vectors.envelopes.some((v) => v.algorithm === id));
  t.true(vectors.envelopes.some((v) => v.rowAdHex === ''), 'an empty row AD');
});

for (const backend of [nativeBackend, jsBackend]) {
  test(`${backend.name}: every row-bound vector is reproduced and opens only with its row AD`, async (t) => {
    const kr = await Keyring.open(vectorProvider, { backend });
    const vault = await Vault.open(kr);
    const dvault = await DeterministicVault.open(kr);
    for (const v of vectors.envelopes) {
      const c = vectorContexts.get(v.context);
      t.is(c.bytes.toString('hex'), vectors.contexts.find((x) => x.name === v.context).canonicalHex);
      const rowAd = hex(v.rowAdHex);
      // The AAD as documented: header ‖ context ‖ u32be(len) ‖ rowAd.
      const len = Buffer.alloc(4);
      len.writeUInt32BE(rowAd.length);
      t.is(Buffer.concat([hex(v.envelopeHex).subarray(0, 7), c.bytes, len, rowAd]).toString('hex'), v.aadHex);
      const value = valueOf(v);
      if (v.algorithm === 3) {
        t.is(kr.deterministicCipher(c, 1).encrypt(value, v.typeTag, rowAd).toString('hex'), v.envelopeHex);
        t.is(dvault.encryptToString(value, c, { aad: rowAd }), v.text);
      } else {
        const cipher = kr.randomizedCipher(v.algorithm, c, 1);
        t.is(cipher.encryptWithNonce(value, v.typeTag, hex(v.nonceHex), rowAd).toString('hex'), v.envelopeHex);
      }
      const reader = v.algorithm === 3 ? dvault : vault;
      for (const ct of [hex(v.envelopeHex), v.text]) {
        t.deepEqual(reader.decrypt(ct, c, { aad: rowAd }), value);
        t.throws(() => reader.decrypt(ct, c), AUTH);
        t.throws(() => reader.decrypt(ct, c, { aad: Buffer.concat([rowAd, Buffer.from('x')]) }), AUTH);
      }
      // The labels say how the API encodes each row AD.
      const [kind, text] = v.rowAd.split(' ');
      if (kind === 'number') t.is(Buffer.from(encodeRowAd(Number(text))).toString('hex'), v.rowAdHex);
      if (kind === 'bigint') t.is(Buffer.from(encodeRowAd(BigInt(text))).toString('hex'), v.rowAdHex);
      if (kind === 'empty') t.is(Buffer.from(encodeRowAd('')).toString('hex'), v.rowAdHex);
      // The header does not record the binding.
      t.is(inspect(v.text).keyVersion, 1);
    }
  });
}

// ---- behaviour, on the SIFREDB_BACKEND backend ----

for (const [name, vault] of Object.entries(vaults)) {
  test(`${name}: swapping two rows' ciphertexts fails with ERR_SIFREDB_AUTH`, (t) => {
    const rows = [
      { id: 1, email: 'alice@example.com' },
      { id: 2, email: 'bob@example.com' },
    ];
    const stored = rows.map((r) => vault.encryptToString(r.email, ctx, { aad: r.id }));
    rows.forEach((r, i) => t.is(vault.decryptToString(stored[i], ctx, { aad: r.id }), r.email));
    // Alice's ciphertext moved into Bob's row and vice versa.
    t.throws(() => vault.decryptToString(stored[0], ctx, { aad: 2 }), AUTH);
    t.throws(() => vault.decryptToString(stored[1], ctx, { aad: 1 }), AUTH);
  });

  test(`${name}: missing, wrong and extra row AD fail; empty is a binding of its own`, (t) => {
    const bound = vault.encrypt('v', ctx, { aad: 'row-7' });
    t.throws(() => vault.decrypt(bound, ctx), AUTH, 'missing');
    t.throws(() => vault.decrypt(bound, ctx, {}), AUTH, 'empty options = unbound');
    for (const wrong of ['row-8', 'row-7 ', 'Row-7', '', Buffer.from('row-7\0')]) t.throws(() => vault.decrypt(bound, ctx, { aad: wrong }), AUTH);
    t.throws(() => vault.decrypt(bound, ctx), AUTH);
    t.throws(() => vault.reencrypt(bound, ctx), AUTH);
    const unbound = vault.encrypt('v', ctx);
    t.throws(() => vault.decrypt(unbound, ctx, { aad: '' }), AUTH, 'extra');
    const empty = vault.encrypt('v', ctx, { aad: '' });
    t.throws(() => vault.decrypt(empty, ctx), AUTH);
    t.is(vault.decryptToString(empty, ctx, { aad: new Uint8Array(0) }), 'v');
    // Same size as unbound: the binding costs no bytes.
    t.is(bound.length, unbound.length);
    // Another context still fails, with or without the right row AD.
    t.throws(() => vault.decrypt(bound, EncryptionContext.of('users', 'phone'), { aad: 'row-7' }), AUTH);
  });

  test(`${name}: typed values round-trip bound, in both forms`, (t) => {
    for (const value of ['', 'Ünïcödé 🔐', Buffer.from([0, 1, 2]), 42.5, -0, 10n ** 30n, true, new Date(5), { a: [1, null] }]) {
      for (const ct of [vault.encrypt(value, ctx, { aad: 99n }), vault.encryptToString(value, ctx, { aad: 99n })]) {
        const back = vault.decrypt(ct, ctx, { aad: '99' });
        if (value instanceof Date) t.is(back.getTime(), value.getTime());
        else if (typeof value === 'number') t.true(Object.is(back, value));
        else t.deepEqual(back, value);
      }
    }
  });

  test(`${name}: reencrypt keeps the binding, previousAad binds existing values`, async (t) => {
    const bound = vault.encryptToString('x', ctx, { aad: 5 });
    const again = vault.reencrypt(bound, ctx, { aad: 5 });
    t.is(vault.decryptToString(again, ctx, { aad: 5 }), 'x');
    t.throws(() => vault.decrypt(again, ctx), AUTH);
    // Bind an unbound value to its row, move it to another row, unbind it.
    const unbound = vault.encryptToString('y', ctx);
    const tied = vault.reencrypt(unbound, ctx, { aad: 6, previousAad: null });
    t.is(vault.decryptToString(tied, ctx, { aad: 6 }), 'y');
    t.throws(() => vault.decrypt(tied, ctx), AUTH);
    const moved = vault.reencrypt(tied, ctx, { aad: 7, previousAad: 6 });
    t.is(vault.decryptToString(moved, ctx, { aad: 7 }), 'y');
    const loose = vault.reencrypt(moved, ctx, { previousAad: 7 });
    t.is(vault.decryptToString(loose, ctx), 'y');
    t.throws(() => vault.reencrypt(unbound, ctx, { aad: 6 }), AUTH, 'previousAad defaults to aad');
  });

  test(`${name}: batches with an aad array; a bad item names its index`, async (t) => {
    const values = ['a', 'b', 'c', 'd'];
    const ids = [10, 11n, '12', Buffer.from('13')];
    const cts = vault.encryptMany(values, ctx, { aad: ids });
    t.deepEqual(vault.decryptMany(cts, ctx, { aad: ['10', '11', 12, 13n] }).map(String), values);
    t.deepEqual((await vault.decryptManyAsync(cts, ctx, { aad: ids, threads: 2 })).map(String), values);
    t.deepEqual((await vault.encryptManyAsync(values, ctx, { aad: ids })).map((c, i) => vault.decryptToString(c, ctx, { aad: ids[i] })), values);
    // Swap items 1 and 2: the first failure (index 1) is named.
    const swapped = [cts[0], cts[2], cts[1], cts[3]];
    const error = t.throws(() => vault.decryptMany(swapped, ctx, { aad: ids }), AUTH);
    t.is(error.index, 1);
    t.true(error.message.startsWith('ciphertexts[1]: '));
    const later = [cts[0], cts[1], cts[2], cts[0]];
    t.is(t.throws(() => vault.decryptMany(later, ctx, { aad: ids }), AUTH).index, 3);
    t.is((await t.throwsAsync(vault.decryptManyAsync(later, ctx, { aad: ids }), AUTH)).index, 3);
    // Unbound batch read of bound ciphertexts fails at item 0.
    t.is(t.throws(() => vault.decryptMany(cts, ctx), AUTH).index, 0);
    // Bad aad entries and lengths.
    const bad = t.throws(() => vault.encryptMany(values, ctx, { aad: [1, 2.5, 3, 4] }), INPUT);
    t.is(bad.index, 1);
    t.true(bad.message.startsWith('aad[1]: '));
    t.throws(() => vault.encryptMany(values, ctx, { aad: [1, 2] }), INPUT);
    t.throws(() => vault.encryptMany(values, ctx, { aad: 'x' }), INPUT);
    const badValue = t.throws(() => vault.encryptMany(['a', Symbol('x')], ctx, { aad: [1, 2] }), INPUT);
    t.is(badValue.index, 1);
    t.true(badValue.message.startsWith('values[1]: '));
    // reencryptMany keeps each item's binding and form.
    const re = vault.reencryptMany([cts[0], vault.encryptToString('e', ctx, { aad: 14 })], ctx, { aad: [10, 14] });
    t.true(Buffer.isBuffer(re[0]));
    t.is(typeof re[1], 'string');
    t.is(vault.decryptToString(re[1], ctx, { aad: 14 }), 'e');
    t.is(t.throws(() => vault.reencryptMany([cts[0], cts[1]], ctx, { aad: [10, 10] }), AUTH).index, 1);
    t.is((await t.throwsAsync(vault.reencryptManyAsync([cts[0], cts[1]], ctx, { aad: [10, 10] }), AUTH)).index, 1);
    t.deepEqual(vault.encryptMany([], ctx, { aad: [] }), []);
  });

  test(`${name}: reencryptMany with aad after a rotation`, async (t) => {
    const rotated = new StaticKeyProvider({
      keys: [
        { version: 1, key: Buffer.from(key1) },
        { version: 2, key: Buffer.from(key2) },
      ],
      current: 2,
    });
    const kr2 = await Keyring.open(rotated);
    const v2 = name === 'aes-256-siv' ? await DeterministicVault.open(kr2) : await Vault.open(kr2, { algorithm: name });
    const old = vault.encryptMany(['p', 'q'], ctx, { aad: [1, 2] });
    const fresh = v2.reencryptMany(old, ctx, { aad: [1, 2] });
    t.deepEqual(fresh.map((c) => inspect(c).keyVersion), [2, 2]);
    t.deepEqual(v2.decryptMany(fresh, ctx, { aad: [1, 2] }).map(String), ['p', 'q']);
    t.throws(() => v2.decrypt(fresh[0], ctx, { aad: 2 }), AUTH);
  });
}

test('row AD encoding: numbers and bigints as decimal ASCII, strings as UTF-8, bytes as is', (t) => {
  const text = (x) => Buffer.from(encodeRowAd(x)).toString('latin1');
  t.is(text(42), '42');
  t.is(text(42n), '42');
  t.is(text('42'), '42');
  t.is(text(-7), '-7');
  t.is(text(-0), '0');
  t.is(text(0), '0');
  t.is(text(Number.MAX_SAFE_INTEGER), '9007199254740991');
  t.is(text(-(2n ** 70n)), '-1180591620717411303424');
  t.is(Buffer.from(encodeRowAd('ü')).toString('hex'), 'c3bc');
  t.is(Buffer.from(encodeRowAd(Buffer.from([0, 255]))).toString('hex'), '00ff');
  for (const bad of [1.5, NaN, Infinity, -Infinity, 2 ** 53, undefined, null, true, {}, [1], '\ud800']) t.throws(() => encodeRowAd(bad), INPUT);
  const vault = vaults['chacha20-poly1305'];
  const ct = vault.encrypt('v', ctx, { aad: 42 });
  for (const same of [42, 42n, '42', Buffer.from('42')]) t.is(vault.decryptToString(ct, ctx, { aad: same }), 'v');
  for (const other of ['042', ' 42', '42.0', 420, -42, '٤٢']) t.throws(() => vault.decrypt(ct, ctx, { aad: other }), AUTH);
  // An explicit undefined/null aad is refused rather than read as "unbound".
  t.throws(() => vault.encrypt('v', ctx, { aad: undefined }), INPUT);
  t.throws(() => vault.decrypt(ct, ctx, { aad: null }), INPUT);
  t.throws(() => vault.encrypt('v', ctx, 'not options'), INPUT);
});

test('DeterministicVault: row binding hides equality across rows; queryTerms with aad finds one row', (t) => {
  const dvault = vaults['aes-256-siv'];
  const a = dvault.encryptToString('same@example.com', ctx, { aad: 1 });
  const b = dvault.encryptToString('same@example.com', ctx, { aad: 2 });
  t.not(a, b, 'equal values in different rows no longer match');
  t.is(dvault.encryptToString('same@example.com', ctx, { aad: 1 }), a, 'still deterministic per row');
  t.not(dvault.encryptToString('same@example.com', ctx), a);
  t.true(dvault.queryTermsAsText('same@example.com', ctx, { aad: 1 }).includes(a));
  t.false(dvault.queryTermsAsText('same@example.com', ctx).includes(a));
});

test('cross-backend: row-bound ciphertexts of one backend open on the other, and only with their row AD', async (t) => {
  const kn = await Keyring.open(provider, { backend: nativeBackend });
  const kj = await Keyring.open(provider, { backend: jsBackend });
  const pairs = [
    [await Vault.open(kn), await Vault.open(kj)],
    [await Vault.open(kn, { algorithm: 'xchacha20-poly1305' }), await Vault.open(kj, { algorithm: 'xchacha20-poly1305' })],
    [await DeterministicVault.open(kn), await DeterministicVault.open(kj)],
  ];
  for (const [native, js] of pairs) {
    for (const [from, to] of [
      [native, js],
      [js, native],
    ]) {
      for (const value of ['', 'alice@example.com', randomBytes(5000), 7n]) {
        for (const aad of [1, '', 'row-ü', randomBytes(300)]) {
          const ct = from.encrypt(value, ctx, { aad });
          t.deepEqual(to.decrypt(ct, ctx, { aad }), value);
          t.throws(() => to.decrypt(ct, ctx), AUTH);
          t.throws(() => to.decrypt(ct, ctx, { aad: 'other' }), AUTH);
        }
      }
      const batch = from.encryptMany(['x', 'y'], ctx, { aad: [1, 2] });
      t.deepEqual(to.decryptMany(batch, ctx, { aad: [1, 2] }).map(String), ['x', 'y']);
      t.is(t.throws(() => to.decryptMany(batch.reverse(), ctx, { aad: [1, 2] }), AUTH).index, 0);
    }
  }
  // AES-SIV: byte-identical bound ciphertexts.
  t.is(pairs[2][0].encryptToString('z', ctx, { aad: 3 }), pairs[2][1].encryptToString('z', ctx, { aad: 3 }));
});
