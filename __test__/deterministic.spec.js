// DeterministicVault (AES-256-SIV): determinism, context separation, typed values, query terms,
// tampering.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { DeterministicVault, EncryptionContext, StaticKeyProvider, inspect } from '../dist/index.js';

const provider = new StaticKeyProvider(randomBytes(32));
const dvault = await DeterministicVault.open(provider);
const ctx = EncryptionContext.of('users', 'email');

function code(t, fn, expected) {
  const error = t.throws(fn);
  if (Array.isArray(expected)) t.true(expected.includes(error?.code), `got ${error?.code}: ${error?.message}`);
  else t.is(error?.code, expected, error?.message);
  return error;
}

test('same value and context give the same ciphertext; it decrypts', (t) => {
  const a = dvault.encrypt('alice@example.com', ctx);
  const b = dvault.encrypt('alice@example.com', ctx);
  t.deepEqual(a, b);
  t.is(dvault.encryptToString('alice@example.com', ctx), dvault.encryptToString('alice@example.com', ctx));
  t.is(dvault.decryptToString(a, ctx), 'alice@example.com');
  t.deepEqual(inspect(a), {
    format: 1,
    algorithm: 'aes-256-siv',
    keyVersion: 1,
    nonceLength: 0,
    bodyLength: 16 + 1 + 17,
    plaintextLength: 17,
    form: 'binary',
  });
  t.is(a.length, 17 + 1 + 23);
});

test('different values, contexts, tenants and types give different ciphertexts', (t) => {
  const base = dvault.encrypt('x', ctx).toString('hex');
  const others = [
    dvault.encrypt('y', ctx),
    dvault.encrypt('x', EncryptionContext.of('users', 'name')),
    dvault.encrypt('x', ctx.withTenant('t1')),
    dvault.encrypt('x', ctx.withVersion(2)),
    dvault.encrypt(Buffer.from('x'), ctx),
  ];
  const hexes = new Set([base, ...others.map((c) => c.toString('hex'))]);
  t.is(hexes.size, 6);
  t.not(dvault.encrypt(1, ctx).toString('hex'), dvault.encrypt('1', ctx).toString('hex'));
});

test('round trips: empty, 1 byte, Unicode, 1 MiB, typed values', (t) => {
  for (const value of ['', 'a', 'Ünïcödé 🔐 日本語', 'z'.repeat(1024 * 1024)]) {
    t.is(dvault.decryptToString(dvault.encryptToString(value, ctx), ctx), value);
  }
  const big = randomBytes(1024 * 1024);
  t.true(dvault.decrypt(dvault.encrypt(big, ctx), ctx).equals(big));
  for (const value of [-0, Number.NaN, 3.25, 10n ** 30n, false, new Date(1e12), { a: [1, null] }]) {
    const back = dvault.decrypt(dvault.encrypt(value, ctx), ctx);
    if (value instanceof Date) t.is(back.getTime(), value.getTime());
    else if (typeof value === 'number') t.true(Object.is(back, value));
    else t.deepEqual(back, value);
  }
  // Every NaN is one value: deterministic encryption must not depend on the NaN's payload.
  const otherNaN = new Float64Array(new BigUint64Array([0x7ff8000000000001n]).buffer)[0];
  t.deepEqual(dvault.encrypt(otherNaN, ctx), dvault.encrypt(Number.NaN, ctx));
});

test('queryTerms: one term under a single key version, equal to encrypt', (t) => {
  const terms = dvault.queryTerms('alice@example.com', ctx);
  t.is(terms.length, 1);
  t.deepEqual(terms[0], dvault.encrypt('alice@example.com', ctx));
  t.deepEqual(dvault.queryTermsAsText('alice@example.com', ctx), [dvault.encryptToString('alice@example.com', ctx)]);
});

test('tampering and the wrong context fail', (t) => {
  const ct = dvault.encrypt('secret', ctx);
  for (let i = 0; i < ct.length; i++) {
    const bad = Buffer.from(ct);
    bad[i] ^= 0x01;
    code(t, () => dvault.decrypt(bad, ctx), ['ERR_SIFREDB_FORMAT', 'ERR_SIFREDB_KEY', 'ERR_SIFREDB_AUTH']);
  }
  code(t, () => dvault.decrypt(ct, ctx.withTenant('t')), 'ERR_SIFREDB_AUTH');
  for (let n = 0; n < ct.length; n++) code(t, () => dvault.decrypt(ct.subarray(0, n), ctx), ['ERR_SIFREDB_FORMAT', 'ERR_SIFREDB_AUTH']);
  code(t, () => dvault.decrypt('secret', ctx), 'ERR_SIFREDB_FORMAT');
});

test('another key gives other ciphertexts and cannot decrypt', async (t) => {
  const other = await DeterministicVault.open(new StaticKeyProvider(randomBytes(32)));
  t.notDeepEqual(other.encrypt('x', ctx), dvault.encrypt('x', ctx));
  code(t, () => other.decrypt(dvault.encrypt('x', ctx), ctx), 'ERR_SIFREDB_AUTH');
});

test('lone surrogates are rejected', (t) => {
  code(t, () => dvault.encrypt('a\uD800', ctx), 'ERR_SIFREDB_INPUT');
  code(t, () => dvault.queryTerms('a\uD800', ctx), 'ERR_SIFREDB_INPUT');
});
