// What each row of the benchmark runs: SifreDB through its public API on both backends, and the
// libraries users would pick instead, each doing the equivalent work. Every function here does one
// operation on one value; run.js loops them.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { aessiv } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import miscreant from 'miscreant';
import { decryptStringSync, encryptStringSync, generateKey, parseKeySync } from '@47ng/cloak';
import ciphersweet from 'ciphersweet-js';
import { BlindIndex, DeterministicVault, EncryptionContext, Keyring, StaticKeyProvider, Vault } from '../dist/index.js';
import { jsBackend } from '../dist/backend/js/index.js';
import { loadNativeBackend } from '../dist/backend/native.js';

export const ROWS = {
  native: 'SifreDB native',
  nativeBatch: 'SifreDB native batch',
  js: 'SifreDB pure-JS',
  node: 'node:crypto',
  noble: '@noble',
  miscreant: 'miscreant',
  ciphersweet: 'ciphersweet-js',
  cloak: '@47ng/cloak',
};

/** A value of `size` bytes: random bytes, or ASCII text for the string APIs. */
export const bytesOf = (size) => randomBytes(size);
export const textOf = (size) => randomBytes(Math.ceil(size / 2) + 1).toString('hex').slice(0, size);

export async function makeSubjects() {
  const native = await loadNativeBackend();
  if (!native.backend) throw new Error(`the native addon did not load (run npm run build): ${native.error.message}`);
  const rootKey = randomBytes(32);
  const keys = new StaticKeyProvider(rootKey);
  const ctx = EncryptionContext.of('users', 'email');
  const sifredb = {};
  for (const [name, backend] of [
    ['native', native.backend],
    ['js', jsBackend],
  ]) {
    const keyring = await Keyring.open(keys, { backend });
    sifredb[name] = {
      backend,
      keyring,
      vault: await Vault.open(keyring),
      dvault: await DeterministicVault.open(keyring),
      index: await BlindIndex.open(keyring, { name: 'email', bits: 16 }),
      root: backend.importRootKey(1, rootKey),
    };
  }

  // Peers get a key of their own, the associated data a SifreDB envelope authenticates (header ‖
  // context, 28 bytes here), and a fresh random nonce per value where the cipher needs one.
  const key32 = randomBytes(32);
  const key64 = randomBytes(64);
  const aad = Buffer.concat([Buffer.from([0x53, 1, 1, 0, 0, 0, 1]), ctx.bytes]);
  const info = Buffer.concat([Buffer.from('SifreDB/v1/chacha20poly1305\0'), ctx.bytes]);
  const salt = Buffer.from('SifreDB/v1/hkdf-salt');

  const node = {
    encrypt(value) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('chacha20-poly1305', key32, nonce, { authTagLength: 16 });
      cipher.setAAD(aad);
      const body = cipher.update(value);
      cipher.final();
      return { nonce, body, tag: cipher.getAuthTag() };
    },
    decrypt({ nonce, body, tag }) {
      const decipher = createDecipheriv('chacha20-poly1305', key32, nonce, { authTagLength: 16 });
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      const out = decipher.update(body);
      decipher.final();
      return out;
    },
    mac: (text) => createHmac('sha256', key32).update(text).digest(),
    derive: () => hkdfSync('sha256', key32, salt, info, 32),
  };

  const noble = {
    encrypt(value) {
      const nonce = randomBytes(12);
      return { nonce, sealed: chacha20poly1305(key32, nonce, aad).encrypt(value) };
    },
    decrypt: ({ nonce, sealed }) => chacha20poly1305(key32, nonce, aad).decrypt(sealed),
    // One instance per call: an @noble aessiv instance refuses a second encrypt().
    sivEncrypt: (value) => aessiv(key64, aad).encrypt(value),
    mac: (bytes) => hmac(sha256, key32, bytes),
    derive: () => hkdf(sha256, key32, salt, info, 32),
  };

  // miscreant with its pure-JS provider: its API is async either way, and on Node the polyfill is
  // several times faster per value than its WebCrypto provider (one thread-pool round trip per AES
  // call; that mode also wraps the CTR counter at 16 bits, giving non-standard output for long values).
  const sivKey = await miscreant.SIV.importKey(key64, 'AES-SIV', new miscreant.PolyfillCryptoProvider());
  const miscreantSubject = { sivEncrypt: (value) => sivKey.seal(value, [aad]) };

  const cloakKey = parseKeySync(generateKey());
  const cloak = {
    encrypt: (text) => encryptStringSync(text, cloakKey),
    decrypt: (cloaked) => decryptStringSync(cloaked, cloakKey),
  };

  // ciphersweet-js, default backend (BoringCrypto: XChaCha20-Poly1305 + BLAKE2b-based fast blind
  // index), one blind index with fastHash as its docs recommend for speed.
  const engine = new ciphersweet.CipherSweet(new ciphersweet.StringProvider(randomBytes(32).toString('hex')));
  const field = new ciphersweet.EncryptedField(engine, 'users', 'email');
  field.addBlindIndex(new ciphersweet.BlindIndex('email_idx', [], 16, true));
  await field.prepareForStorage('warm-up');
  const ciphersweetSubject = {
    encrypt: (text) => field.encryptValue(text),
    decrypt: (ciphertext) => field.decryptValue(ciphertext),
    blindIndex: (text) => field.getBlindIndex(text, 'email_idx'),
    prepare: (text) => field.prepareForStorage(text),
  };

  return { ctx, sifredb, node, noble, miscreant: miscreantSubject, cloak, ciphersweet: ciphersweetSubject };
}
