// Every Project Wycheproof case for SifreDB's primitives, run against the backend in use
// (`npm test` runs this file once with SIFREDB_BACKEND=native and once with SIFREDB_BACKEND=js).
import test from 'ava';
import { backend, primitives } from '../dist/index.js';
import { hex, loadWycheproof, vectorsRequired, wycheproofDir } from './helpers/wycheproof.js';

const files = {
  aesSiv: 'aes_siv_cmac_test.json',
  chacha: 'chacha20_poly1305_test.json',
  xchacha: 'xchacha20_poly1305_test.json',
  hkdf: 'hkdf_sha256_test.json',
  hmac: 'hmac_sha256_test.json',
};

const loaded = Object.fromEntries(Object.entries(files).map(([name, file]) => [name, loadWycheproof(file)]));
const missing = Object.entries(loaded).filter(([, data]) => !data).map(([name]) => files[name]);

if (missing.length > 0) {
  const banner = `\n${'!'.repeat(78)}\n!! Wycheproof vectors NOT FOUND in ${wycheproofDir}\n!! missing: ${missing.join(', ')}\n!! Set SIFREDB_WYCHEPROOF_DIR to a checkout of C2SP/wycheproof testvectors_v1 to run them.\n${'!'.repeat(78)}\n`;
  console.warn(banner);
  if (vectorsRequired) {
    test(`Wycheproof vectors are present (required in CI) [${backend}]`, (t) => {
      t.fail(`missing in ${wycheproofDir}: ${missing.join(', ')}`);
    });
  } else {
    test.skip(`Wycheproof vectors absent (${missing.join(', ')}) [${backend}]`, () => {});
  }
}

/** Runs every case of a file; `check` returns true when the backend's behaviour matches `result`. */
function suite(name, check) {
  const data = loaded[name];
  if (!data) return;
  test(`Wycheproof ${data.algorithm}: every case [${backend}]`, (t) => {
    const counts = { valid: 0, invalid: 0, acceptable: 0 };
    const failures = [];
    for (const group of data.testGroups) {
      for (const tc of group.tests) {
        counts[tc.result] += 1;
        let ok;
        try {
          ok = check(group, tc);
        } catch (error) {
          ok = `threw ${error?.code ?? ''} ${error?.message}`;
        }
        if (ok !== true) failures.push(`tcId ${tc.tcId} (${tc.result}, ${tc.comment}): ${ok}`);
      }
    }
    t.deepEqual(failures, []);
    t.is(counts.valid + counts.invalid + counts.acceptable, data.numberOfTests);
    t.true(counts.valid > 0 && counts.invalid > 0, 'both valid and invalid cases ran');
    t.log(`${data.numberOfTests} cases: ${counts.valid} valid, ${counts.invalid} invalid, ${counts.acceptable} acceptable`);
  });
}

/** A case that must be rejected is rejected with a SifreDB error code, never a crash or a wrong success. */
function rejects(operation) {
  try {
    operation();
  } catch (error) {
    return typeof error?.code === 'string' && error.code.startsWith('ERR_SIFREDB_') ? true : `wrong error ${error}`;
  }
  return 'accepted an invalid case';
}

function aeadCheck(encrypt, decrypt) {
  return (group, tc) => {
    const [key, iv, aad, msg] = [hex(tc.key), hex(tc.iv), hex(tc.aad), hex(tc.msg)];
    const sealed = Buffer.concat([hex(tc.ct), hex(tc.tag)]);
    if (tc.result === 'valid') {
      const out = encrypt(key, iv, msg, aad);
      if (!out.equals(sealed)) return 'encryption differs';
      const back = decrypt(key, iv, sealed, aad);
      return back.equals(msg) ? true : 'decryption differs';
    }
    return rejects(() => decrypt(key, iv, sealed, aad));
  };
}

suite('chacha', aeadCheck(primitives.chacha20Poly1305Encrypt, primitives.chacha20Poly1305Decrypt));
suite('xchacha', aeadCheck(primitives.xchacha20Poly1305Encrypt, primitives.xchacha20Poly1305Decrypt));

suite('aesSiv', (group, tc) => {
  const [key, aad, msg, ct] = [hex(tc.key), hex(tc.aad), hex(tc.msg), hex(tc.ct)];
  if (group.keySize !== 512) {
    // AES-128/192-SIV keys: SifreDB is AES-256-SIV only, so every such key must be refused.
    return rejects(() => primitives.aesSivEncrypt(key, msg, aad)) === true &&
      rejects(() => primitives.aesSivDecrypt(key, ct, aad)) === true
      ? true
      : 'accepted a non-512-bit key';
  }
  if (tc.result === 'valid') {
    if (!primitives.aesSivEncrypt(key, msg, aad).equals(ct)) return 'encryption differs';
    return primitives.aesSivDecrypt(key, ct, aad).equals(msg) ? true : 'decryption differs';
  }
  return rejects(() => primitives.aesSivDecrypt(key, ct, aad));
});

suite('hkdf', (group, tc) => {
  const run = () => primitives.hkdfSha256(hex(tc.ikm), hex(tc.salt), hex(tc.info), tc.size);
  if (tc.result === 'valid') return run().equals(hex(tc.okm)) ? true : 'okm differs';
  return rejects(run);
});

suite('hmac', (group, tc) => {
  const expected = hex(tc.tag);
  const full = primitives.hmacSha256(hex(tc.key), hex(tc.msg));
  // Truncated-tag groups compare the prefix of the full 32-byte MAC.
  const matches = full.subarray(0, group.tagSize / 8).equals(expected);
  return tc.result === 'valid' ? matches || 'tag differs' : !matches || 'accepted a wrong tag';
});
