// The public API on both backends explicitly: what one encrypts the other decrypts, both ways, for
// every algorithm and value type; deterministic ciphertexts and blind-index terms are byte-identical.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { BlindIndex, DeterministicVault, EncryptionContext, Keyring, StaticKeyProvider, Vault } from '../dist/index.js';
import { jsBackend, nativeBackend } from './helpers/backends.js';

const provider = new StaticKeyProvider({
  keys: [
    { version: 1, key: randomBytes(32) },
    { version: 2, key: randomBytes(32) },
  ],
  current: 1,
});
const keyrings = {
  native: await Keyring.open(provider, { backend: nativeBackend }),
  js: await Keyring.open(provider, { backend: jsBackend }),
};
const contexts = [
  EncryptionContext.of('users', 'email'),
  EncryptionContext.of('users', 'email').withTenant('t_ü'),
  new EncryptionContext({ table: 'x'.repeat(255), column: '📧', version: 7 }),
];
const values = ['', 'a', 'Ünïcödé 🔐', 'é'.repeat(70_000), Buffer.alloc(0), randomBytes(1), randomBytes(100_000), 42.5, -0, 10n ** 40n, true, new Date(123), { a: [1, 'b', null] }];
const same = (t, a, b, message) => t.true(Buffer.compare(a, b) === 0, message);

test('backends are the ones asked for', (t) => {
  t.is(keyrings.native.backend.name, 'native');
  t.is(keyrings.js.backend.name, 'js');
});

for (const algorithm of ['chacha20-poly1305', 'xchacha20-poly1305']) {
  test(`${algorithm}: each backend decrypts the other's ciphertexts`, async (t) => {
    const native = await Vault.open(keyrings.native, { algorithm });
    const js = await Vault.open(keyrings.js, { algorithm });
    for (const ctx of contexts) {
      for (const value of values) {
        for (const [from, to] of [
          [native, js],
          [js, native],
        ]) {
          const binary = from.encrypt(value, ctx);
          const text = from.encryptToString(value, ctx);
          for (const ct of [binary, text]) {
            const back = to.decrypt(ct, ctx);
            if (value instanceof Date) t.is(back.getTime(), value.getTime());
            else if (value instanceof Uint8Array) same(t, back, value);
            else if (typeof value === 'number') t.true(Object.is(back, value));
            else t.deepEqual(back, value);
          }
          t.throws(() => to.decrypt(binary, contexts.find((c) => c !== ctx)), { code: 'ERR_SIFREDB_AUTH' });
        }
      }
    }
  });
}

test('AES-SIV: byte-identical ciphertexts and query terms on both backends, each decrypts the other', async (t) => {
  const native = await DeterministicVault.open(keyrings.native);
  const js = await DeterministicVault.open(keyrings.js);
  for (const ctx of contexts) {
    for (const value of values) {
      const a = native.encrypt(value, ctx);
      const b = js.encrypt(value, ctx);
      same(t, a, b);
      t.is(native.encryptToString(value, ctx), js.encryptToString(value, ctx));
      t.deepEqual(native.queryTermsAsText(value, ctx), js.queryTermsAsText(value, ctx));
      same(t, js.decryptBytes(a, ctx), native.decryptBytes(b, ctx));
    }
  }
});

test('blind index: byte-identical terms on both backends', async (t) => {
  for (const bits of [8, 13, 16, 32, 64, 200, 256]) {
    const options = { name: 'email', bits, transforms: ['nfc', 'trim', 'lowercase'] };
    const native = await BlindIndex.open(keyrings.native, options);
    const js = await BlindIndex.open(keyrings.js, options);
    for (const ctx of contexts) {
      for (const value of ['', 'Alice@Example.com', ' Jose\u0301 ', 'é'.repeat(10_000)]) {
        t.deepEqual(native.queryTerms(value, ctx), js.queryTerms(value, ctx));
      }
    }
  }
  const compound = { name: 'ssn4_year', bits: 24, fields: [{ name: 'ssn', transforms: ['digits', { lastN: 4 }] }, { name: 'year' }] };
  const a = await BlindIndex.open(keyrings.native, compound);
  const b = await BlindIndex.open(keyrings.js, compound);
  t.deepEqual(a.compute(['123-45-6789', 1990], contexts[1]), b.compute(['123-45-6789', 1990], contexts[1]));
});

test('re-encryption across backends after a rotation', async (t) => {
  const local = new StaticKeyProvider({ keys: [{ version: 1, key: randomBytes(32) }] });
  const native = await Vault.open(local, { backend: nativeBackend });
  const old = native.encryptToString('rotate me', contexts[0]);
  await local.rotate();
  const js = await Vault.open(local, { backend: jsBackend });
  const fresh = js.reencrypt(old, contexts[0]);
  await native.refresh();
  t.false(native.needsReencryption(fresh));
  t.is(native.decryptToString(fresh, contexts[0]), 'rotate me');
});
