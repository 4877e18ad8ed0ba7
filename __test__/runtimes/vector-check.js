// Runtime-neutral check of the frozen format vectors through the public API only. Imported as is by
// the Node specs and by the scripts that run in Deno, Bun, Chromium and workerd (bundled for the last
// two), so it uses nothing but ECMAScript and the web platform: no Buffer, no node: modules, no
// process. The vectors are passed in parsed (some runtimes cannot read files).
//
//   checkVectors(sifredb, { format: <format-v1.json>, rowBinding: <format-v1-row-binding.json> })
//     → { backend, impl?, backendError?, checked, counts, failures }
//
// The result is JSON-serializable and holds no key material: failures name the vector and the check,
// and show ciphertexts, terms and plaintexts (all public in the vector files), never a key.

const ALGORITHMS = { 1: 'chacha20-poly1305', 2: 'xchacha20-poly1305', 3: 'aes-256-siv' };
const AUTH_LIKE = ['ERR_SIFREDB_FORMAT', 'ERR_SIFREDB_KEY', 'ERR_SIFREDB_AUTH'];
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) throw new Error(`bad hex ${String(hex).slice(0, 20)}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
function base64url(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) s += B64URL[(n >> (18 - 6 * j)) & 63];
  }
  return s;
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const u16be = (n) => Uint8Array.of(n >> 8, n & 0xff);
const u32be = (n) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const isBytes = (v) => v instanceof Uint8Array;
const sameBytes = (a, b) => isBytes(a) && isBytes(b) && a.length === b.length && a.every((x, i) => x === b[i]);
const describe = (v) => (isBytes(v) ? `bytes:${bytesToHex(v)}` : typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? '-0' : JSON.stringify(v));
const errorText = (e) => (e && typeof e === 'object' ? `${e.name ?? 'Error'}${e.code ? ` ${e.code}` : ''}: ${e.message}` : String(e));

/** Canonical v1 context (docs/FORMAT.md), built independently of the library. */
function canonicalContext({ tenant, table, column, version = 1 }) {
  const field = (s) => {
    const b = utf8.encode(s ?? '');
    return concat(u16be(b.length), b);
  };
  return concat(Uint8Array.of(1), field(tenant), field(table), field(column), u32be(version));
}

/** A cryptographically random key, from WebCrypto (present in every runtime this runs in). */
function randomKey() {
  const key = new Uint8Array(32);
  globalThis.crypto.getRandomValues(key);
  return key;
}

export async function checkVectors(sifredb, vectors) {
  const { BlindIndex, DeterministicVault, EncryptionContext, Keyring, StaticKeyProvider, Vault, encodeRowAd, inspect, isEncrypted, primitives } = sifredb;
  const failures = [];
  const counts = {};
  let checked = 0;

  /** Runs one named check; a thrown error or a false result is a failure. Extra detail must be key-free. */
  const check = (kind, id, fn) => {
    counts[kind] = (counts[kind] ?? 0) + 1;
    checked++;
    try {
      const outcome = fn();
      if (outcome === true || outcome === undefined) return;
      failures.push({ kind, id, ...(typeof outcome === 'object' ? outcome : { message: String(outcome) }) });
    } catch (error) {
      failures.push({ kind, id, message: `threw ${errorText(error)}` });
    }
  };
  const checkAsync = async (kind, id, fn) => {
    counts[kind] = (counts[kind] ?? 0) + 1;
    checked++;
    try {
      const outcome = await fn();
      if (outcome === true || outcome === undefined) return;
      failures.push({ kind, id, ...(typeof outcome === 'object' ? outcome : { message: String(outcome) }) });
    } catch (error) {
      failures.push({ kind, id, message: `threw ${errorText(error)}` });
    }
  };
  const expectEqual = (got, expected) => {
    const ok = isBytes(expected) ? sameBytes(got, expected) : Object.is(got, expected);
    return ok ? true : { expected: describe(expected), got: describe(got) };
  };
  const expectThrows = (fn, codes) => {
    try {
      fn();
    } catch (error) {
      return codes.includes(error?.code) ? true : { message: `threw ${errorText(error)}, wanted ${codes.join('|')}` };
    }
    return { message: `did not throw, wanted ${codes.join('|')}` };
  };

  const format = vectors?.format;
  const rowBinding = vectors?.rowBinding;
  if (format?.format !== 1 || !Array.isArray(format.envelopes)) throw new Error('vectors.format must be the parsed test-vectors/format-v1.json');
  if (rowBinding?.format !== 1 || !Array.isArray(rowBinding.envelopes)) {
    throw new Error('vectors.rowBinding must be the parsed test-vectors/format-v1-row-binding.json');
  }

  const valueOf = (v) => (v.typeTag === 1 ? fromUtf8.decode(hexToBytes(v.valueHex)) : hexToBytes(v.valueHex));
  const contextsOf = (file) =>
    new Map(file.contexts.map((c) => [c.name, new EncryptionContext({ tenant: c.tenant, table: c.table, column: c.column, version: c.version })]));

  // ---- format-v1.json ----

  const contexts = contextsOf(format);
  for (const c of format.contexts) {
    check('context', c.name, () => {
      const own = expectEqual(bytesToHex(canonicalContext(c)), c.canonicalHex);
      return own === true ? expectEqual(bytesToHex(contexts.get(c.name).bytes), c.canonicalHex) : { message: 'the vector disagrees with docs/FORMAT.md', ...own };
    });
  }

  const provider = new StaticKeyProvider({ keys: format.rootKeys.map((k) => ({ version: k.version, key: hexToBytes(k.hex) })) });
  const keyring = await Keyring.open(provider);
  const vault = await Vault.open(keyring);
  const dvault = await DeterministicVault.open(keyring);

  // Derived keys through the public HKDF primitive. Failures say only whether the bytes matched.
  const salt = utf8.encode('SifreDB/v1/hkdf-salt');
  for (const [i, d] of format.derivedKeys.entries()) {
    check('derivedKey', `${i} ${d.purpose} ${d.context} key ${d.rootKey}`, () => {
      const root = format.rootKeys.find((k) => k.version === d.rootKey);
      const name = d.indexName == null ? [] : [u16be(utf8.encode(d.indexName).length), utf8.encode(d.indexName)];
      const info = concat(utf8.encode(`SifreDB/v1/${d.purpose}`), Uint8Array.of(0), hexToBytes(format.contexts.find((c) => c.name === d.context).canonicalHex), ...name);
      const okm = primitives.hkdfSha256(hexToBytes(root.hex), salt, info, d.keyHex.length / 2);
      return bytesToHex(okm) === d.keyHex ? true : { message: 'derived key differs (not shown)' };
    });
  }

  for (const [i, v] of format.envelopes.entries()) {
    const id = `${i} ${ALGORITHMS[v.algorithm]} ${v.context} key ${v.rootKey} tag ${v.typeTag}`;
    const ctx = contexts.get(v.context);
    const reader = v.algorithm === 3 ? dvault : vault;
    const envelope = hexToBytes(v.envelopeHex);
    const value = valueOf(v);
    check('envelope.text', id, () => expectEqual(v.text, `sdb1:${base64url(envelope)}`));
    for (const [form, ct] of [['bytes', envelope], ['text', v.text]]) {
      check(`envelope.decrypt.${form}`, id, () => expectEqual(reader.decrypt(ct, ctx), value));
      check(`envelope.decryptBytes.${form}`, id, () => expectEqual(reader.decryptBytes(ct, ctx), hexToBytes(v.valueHex)));
      check(`envelope.isEncrypted.${form}`, id, () => expectEqual(isEncrypted(ct), true));
    }
    check('envelope.inspect', id, () => {
      const info = inspect(v.text);
      const want = { algorithm: ALGORITHMS[v.algorithm], keyVersion: v.rootKey, plaintextLength: v.valueHex.length / 2, nonceLength: v.nonceHex === null ? 0 : v.nonceHex.length / 2 };
      const got = { algorithm: info.algorithm, keyVersion: info.keyVersion, plaintextLength: info.plaintextLength, nonceLength: info.nonceLength };
      return JSON.stringify(got) === JSON.stringify(want) ? true : { expected: JSON.stringify(want), got: JSON.stringify(got) };
    });
    if (v.algorithm === 3) {
      check('envelope.siv.reproduce', id, () => expectEqual(bytesToHex(keyring.deterministicCipher(ctx, v.rootKey).encrypt(value, v.typeTag)), v.envelopeHex));
      if (v.rootKey === keyring.currentVersion) {
        check('envelope.siv.vault', id, () => expectEqual(bytesToHex(dvault.encrypt(value, ctx)), v.envelopeHex));
        check('envelope.siv.vaultText', id, () => expectEqual(dvault.encryptToString(value, ctx), v.text));
      }
      check('envelope.siv.queryTerms', id, () => (dvault.queryTermsAsText(value, ctx).includes(v.text) ? true : { message: 'queryTermsAsText misses the frozen text' }));
    } else {
      check('envelope.randomized.reproduce', id, () => {
        const cipher = keyring.randomizedCipher(v.algorithm, ctx, v.rootKey);
        if (typeof cipher.encryptWithNonce !== 'function') return { message: 'the backend lacks the encryptWithNonce test hook' };
        return expectEqual(bytesToHex(cipher.encryptWithNonce(value, v.typeTag, hexToBytes(v.nonceHex))), v.envelopeHex);
      });
    }
    // Every bit of every fifth envelope, flipped, is rejected with a typed error.
    if (i % 5 === 0) {
      check('envelope.bitflip', id, () => {
        for (let bit = 0; bit < envelope.length * 8; bit++) {
          const bad = envelope.slice();
          bad[bit >> 3] ^= 1 << (bit & 7);
          const outcome = expectThrows(() => reader.decrypt(bad, ctx), AUTH_LIKE);
          if (outcome !== true) return { message: `bit ${bit}: ${outcome.message}` };
        }
        return true;
      });
    }
  }

  for (const [i, b] of format.blindIndex.entries()) {
    await checkAsync('blindIndex', `${i} ${b.indexName} ${b.bits} bits key ${b.rootKey}`, async () => {
      const fields = b.fieldsHex.map((f) => fromUtf8.decode(hexToBytes(f)));
      const index = await BlindIndex.open(keyring, {
        name: b.indexName,
        bits: b.bits,
        ...(fields.length > 1 ? { fields: fields.map((_, j) => ({ name: `f${j}` })) } : {}),
      });
      const terms = index.queryTerms(fields.length > 1 ? fields : fields[0], contexts.get(b.context));
      const term = terms.find((x) => x.version === b.rootKey);
      return expectEqual(term?.hex, b.termHex);
    });
  }

  // ---- format-v1-row-binding.json ----

  const rowContexts = contextsOf(rowBinding);
  for (const c of rowBinding.contexts) check('rowBinding.context', c.name, () => expectEqual(bytesToHex(rowContexts.get(c.name).bytes), c.canonicalHex));
  const rowKeyring = await Keyring.open(new StaticKeyProvider({ keys: [{ version: rowBinding.rootKey.version, key: hexToBytes(rowBinding.rootKey.hex) }] }));
  const rowVault = await Vault.open(rowKeyring);
  const rowDvault = await DeterministicVault.open(rowKeyring);
  const version = rowBinding.rootKey.version;
  for (const [i, v] of rowBinding.envelopes.entries()) {
    const id = `${i} ${ALGORITHMS[v.algorithm]} ${v.context} row ${v.rowAd} tag ${v.typeTag}`;
    const ctx = rowContexts.get(v.context);
    const rowAd = hexToBytes(v.rowAdHex);
    const value = valueOf(v);
    const reader = v.algorithm === 3 ? rowDvault : rowVault;
    check('rowBinding.aad', id, () => expectEqual(bytesToHex(concat(hexToBytes(v.envelopeHex).subarray(0, 7), ctx.bytes, u32be(rowAd.length), rowAd)), v.aadHex));
    if (v.algorithm === 3) {
      check('rowBinding.siv.reproduce', id, () => expectEqual(bytesToHex(rowKeyring.deterministicCipher(ctx, version).encrypt(value, v.typeTag, rowAd)), v.envelopeHex));
      check('rowBinding.siv.vaultText', id, () => expectEqual(rowDvault.encryptToString(value, ctx, { aad: rowAd }), v.text));
    } else {
      check('rowBinding.randomized.reproduce', id, () => {
        const cipher = rowKeyring.randomizedCipher(v.algorithm, ctx, version);
        if (typeof cipher.encryptWithNonce !== 'function') return { message: 'the backend lacks the encryptWithNonce test hook' };
        return expectEqual(bytesToHex(cipher.encryptWithNonce(value, v.typeTag, hexToBytes(v.nonceHex), rowAd)), v.envelopeHex);
      });
    }
    for (const [form, ct] of [['bytes', hexToBytes(v.envelopeHex)], ['text', v.text]]) {
      check(`rowBinding.decrypt.${form}`, id, () => expectEqual(reader.decrypt(ct, ctx, { aad: rowAd }), value));
      check(`rowBinding.unbound.${form}`, id, () => expectThrows(() => reader.decrypt(ct, ctx), ['ERR_SIFREDB_AUTH']));
      check(`rowBinding.otherRow.${form}`, id, () => expectThrows(() => reader.decrypt(ct, ctx, { aad: concat(rowAd, utf8.encode('x')) }), ['ERR_SIFREDB_AUTH']));
    }
    const [label, text] = v.rowAd.split(' ');
    const encoded = { number: () => encodeRowAd(Number(text)), bigint: () => encodeRowAd(BigInt(text)), empty: () => encodeRowAd('') }[label];
    if (encoded) check('rowBinding.encodeRowAd', id, () => expectEqual(bytesToHex(encoded()), v.rowAdHex));
    check('rowBinding.inspect', id, () => expectEqual(inspect(v.text).keyVersion, version));
  }

  // ---- random round trips, both vaults, fresh random keys ----

  const randomKeyring = await Keyring.open(
    new StaticKeyProvider({ keys: [{ version: 1, key: randomKey() }, { version: 2, key: randomKey() }], current: 2 }),
  );
  const ctx = EncryptionContext.of('users', 'email');
  const values = ['', 'alice@example.com', 'Ünïcödé 🔐', Uint8Array.of(0, 1, 2, 255), 42.5, -0, 10n ** 30n, true, null, new Date(5), { a: [1, null, 'x'] }];
  const same = (a, b) =>
    isBytes(b) ? sameBytes(a, b) : b instanceof Date ? a instanceof Date && a.getTime() === b.getTime() : typeof b === 'object' && b !== null ? JSON.stringify(a) === JSON.stringify(b) : Object.is(a, b);
  const roundTrips = [
    ['chacha20-poly1305', await Vault.open(randomKeyring)],
    ['xchacha20-poly1305', await Vault.open(randomKeyring, { algorithm: 'xchacha20-poly1305' })],
    ['aes-256-siv', await DeterministicVault.open(randomKeyring)],
  ];
  for (const [name, v] of roundTrips) {
    for (const value of values) {
      check('roundTrip', `${name} ${describe(value instanceof Date ? value.toISOString() : value)}`, () => {
        for (const options of [undefined, { aad: 7n }]) {
          for (const ct of [v.encrypt(value, ctx, options), v.encryptToString(value, ctx, options)]) {
            const back = v.decrypt(ct, ctx, options);
            if (!same(back, value)) return { message: `${options ? 'bound' : 'unbound'}: got ${describe(back instanceof Date ? back.toISOString() : back)}` };
            if (inspect(ct).keyVersion !== 2 || inspect(ct).algorithm !== name) return { message: `inspect says ${JSON.stringify(inspect(ct))}` };
          }
        }
        const [a, b] = [v.encryptToString(value, ctx), v.encryptToString(value, ctx)];
        if ((a === b) !== (name === 'aes-256-siv')) return { message: name === 'aes-256-siv' ? 'deterministic output differs' : 'randomized output repeats' };
        return true;
      });
    }
  }
  check('roundTrip.randomBytes', 'primitives.randomBytes', () => {
    const [a, b] = [primitives.randomBytes(32), primitives.randomBytes(32)];
    return a.length === 32 && !sameBytes(a, b) ? true : { message: 'randomBytes(32) twice gave equal or short output' };
  });

  const chosen = typeof sifredb.getBackend === 'function' ? sifredb.getBackend() : undefined;
  return {
    backend: sifredb.backend,
    ...(chosen?.impl !== undefined ? { impl: chosen.impl } : {}),
    ...(sifredb.backendError !== undefined ? { backendError: errorText(sifredb.backendError) } : {}),
    checked,
    counts,
    failures,
  };
}
