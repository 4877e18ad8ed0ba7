// The public API reproduces the frozen vectors of test-vectors/format-v1.json: canonical contexts,
// envelopes (decrypted by the vaults; deterministic ones re-encrypted to the same bytes; randomized
// ones re-created with their fixed nonce through the handle's test hook), text forms, headers, and
// blind-index terms.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { BlindIndex, DeterministicVault, EncryptionContext, Keyring, StaticKeyProvider, Vault, inspect, isEncrypted } from '../dist/index.js';

const vectors = JSON.parse(readFileSync(new URL('../test-vectors/format-v1.json', import.meta.url), 'utf8'));
const hex = (s) => Buffer.from(s, 'hex');
const ALGORITHMS = { 1: 'chacha20-poly1305', 2: 'xchacha20-poly1305', 3: 'aes-256-siv' };

const contexts = new Map(
  vectors.contexts.map((c) => [c.name, new EncryptionContext({ tenant: c.tenant, table: c.table, column: c.column, version: c.version })]),
);
const provider = new StaticKeyProvider({ keys: vectors.rootKeys.map((k) => ({ version: k.version, key: hex(k.hex) })) });
const keyring = await Keyring.open(provider);
const vault = await Vault.open(keyring);
const dvault = await DeterministicVault.open(keyring);

/** The value as the API takes it: a string for type tag 1, bytes for type tag 0. */
const valueOf = (v) => (v.typeTag === 1 ? hex(v.valueHex).toString('utf8') : hex(v.valueHex));

test('the file holds every kind of vector', (t) => {
  t.is(vectors.format, 1);
  t.true(vectors.envelopes.some((v) => v.algorithm === 1));
  t.true(vectors.envelopes.some((v) => v.algorithm === 2));
  t.true(vectors.envelopes.some((v) => v.algorithm === 3));
  t.true(vectors.blindIndex.length > 0);
});

test('canonical contexts', (t) => {
  for (const c of vectors.contexts) t.is(contexts.get(c.name).bytes.toString('hex'), c.canonicalHex, c.name);
});

test('every frozen envelope decrypts to its value, in both forms, and inspects correctly', (t) => {
  for (const v of vectors.envelopes) {
    const ctx = contexts.get(v.context);
    const reader = v.algorithm === 3 ? dvault : vault;
    const value = valueOf(v);
    t.is(v.text, `sdb1:${hex(v.envelopeHex).toString('base64url')}`);
    for (const ct of [hex(v.envelopeHex), v.text]) {
      t.deepEqual(reader.decrypt(ct, ctx), value);
      t.true(reader.decryptBytes(ct, ctx).equals(hex(v.valueHex)));
      t.true(isEncrypted(ct));
    }
    const info = inspect(v.text);
    t.is(info.algorithm, ALGORITHMS[v.algorithm]);
    t.is(info.keyVersion, v.rootKey);
    t.is(info.plaintextLength, v.valueHex.length / 2);
    t.is(info.nonceLength, v.nonceHex === null ? 0 : v.nonceHex.length / 2);
  }
});

test('deterministic envelopes are reproduced byte for byte', (t) => {
  let checked = 0;
  for (const v of vectors.envelopes.filter((e) => e.algorithm === 3)) {
    const ctx = contexts.get(v.context);
    const cipher = keyring.deterministicCipher(ctx, v.rootKey);
    t.is(cipher.encrypt(valueOf(v), v.typeTag).toString('hex'), v.envelopeHex);
    if (v.rootKey === keyring.currentVersion) {
      t.is(dvault.encrypt(valueOf(v), ctx).toString('hex'), v.envelopeHex);
      t.is(dvault.encryptToString(valueOf(v), ctx), v.text);
    }
    t.true(dvault.queryTermsAsText(valueOf(v), ctx).includes(v.text), 'found by queryTerms whichever version wrote it');
    checked++;
  }
  t.true(checked > 0);
});

test('randomized envelopes are reproduced with their fixed nonces', (t) => {
  let checked = 0;
  for (const v of vectors.envelopes.filter((e) => e.algorithm !== 3)) {
    const cipher = keyring.randomizedCipher(v.algorithm, contexts.get(v.context), v.rootKey);
    if (typeof cipher.encryptWithNonce !== 'function') return t.fail('the backend lacks the encryptWithNonce test hook');
    t.is(cipher.encryptWithNonce(valueOf(v), v.typeTag, hex(v.nonceHex)).toString('hex'), v.envelopeHex);
    checked++;
  }
  t.true(checked > 0);
});

test('any single flipped bit of a frozen envelope is rejected', (t) => {
  for (const v of vectors.envelopes.filter((_, i) => i % 5 === 0)) {
    const reader = v.algorithm === 3 ? dvault : vault;
    const envelope = hex(v.envelopeHex);
    for (let bit = 0; bit < envelope.length * 8; bit++) {
      const bad = Buffer.from(envelope);
      bad[bit >> 3] ^= 1 << (bit & 7);
      const error = t.throws(() => reader.decrypt(bad, contexts.get(v.context)));
      t.true(['ERR_SIFREDB_FORMAT', 'ERR_SIFREDB_KEY', 'ERR_SIFREDB_AUTH'].includes(error.code));
    }
  }
});

test('blind-index terms', async (t) => {
  for (const b of vectors.blindIndex) {
    const fields = b.fieldsHex.map((f) => hex(f).toString('utf8'));
    t.true(fields.every((f, i) => Buffer.from(f).toString('hex') === b.fieldsHex[i]), 'fields are UTF-8 text');
    const index = await BlindIndex.open(keyring, {
      name: b.indexName,
      bits: b.bits,
      ...(fields.length > 1 ? { fields: fields.map((_, i) => ({ name: `f${i}` })) } : {}),
    });
    const terms = index.queryTerms(fields.length > 1 ? fields : fields[0], contexts.get(b.context));
    const term = terms.find((x) => x.version === b.rootKey);
    t.is(term?.hex, b.termHex, `${b.indexName} ${b.bits} bits, key ${b.rootKey}`);
  }
});
