// Pure-JS backend (lib/backend/js): RFC known-answer tests on both engines, node:crypto vs @noble
// byte equality, the v1 envelope rules of docs/FORMAT.md, and the frozen test-vectors/format-v1.json.
import test from 'ava';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createJsBackend, jsBackend, nodeEngineAvailable } from '../dist/backend/js/index.js';

const hex = (s) => Buffer.from(s, 'hex');
const toHex = (b) => Buffer.from(b).toString('hex');
const ascii = (s) => Buffer.from(s, 'latin1');
const range = (from, to) => Buffer.from(Array.from({ length: to - from + 1 }, (_, i) => from + i));
const fill = (byte, n) => Buffer.alloc(n, byte);

const IMPLS = nodeEngineAvailable() ? ['node', 'noble'] : ['noble'];
const backends = Object.fromEntries(IMPLS.map((impl) => [impl, createJsBackend({ impl })]));

/** Canonical v1 context (docs/FORMAT.md), built independently of the library. */
function canonicalContext({ tenant, table, column, version = 1 }) {
  const field = (s) => {
    const b = Buffer.from(s ?? '', 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    return Buffer.concat([len, b]);
  };
  const v = Buffer.alloc(4);
  v.writeUInt32BE(version);
  return Buffer.concat([Buffer.of(1), field(tenant), field(table), field(column), v]);
}

const CTX = canonicalContext({ tenant: 'acme', table: 'users', column: 'email' });
const OTHER_CTX = canonicalContext({ tenant: 'acme', table: 'users', column: 'phone' });

function assertCode(t, fn, code, message) {
  const error = t.throws(fn);
  t.is(error?.code, code, error?.message);
  t.is(error?.name, 'SifreDBError');
  if (message !== undefined) t.regex(error.message, message);
  return error;
}

// --- Known-answer vectors -------------------------------------------------------------------------

// RFC 8439 §2.8.2; the XChaCha vector (draft-irtf-cfrg-xchacha A.3.1) reuses its key, AAD and plaintext.
const AEAD_KEY = range(0x80, 0x9f);
const AEAD_AAD = hex('50515253c0c1c2c3c4c5c6c7');
const SUNSCREEN = ascii(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
const RFC8439 = {
  nonce: hex('070000004041424344454647'),
  sealed:
    'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116' +
    '1ae10b594f09e26a7e902ecbd0600691',
};
const XCHACHA_DRAFT = {
  nonce: range(0x40, 0x57),
  sealed:
    'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e' +
    'c0875924c1c7987947deafd8780acf49',
};

// RFC 5869 appendix A.1–A.3 (SHA-256).
const RFC5869 = [
  {
    ikm: fill(0x0b, 22),
    salt: range(0x00, 0x0c),
    info: range(0xf0, 0xf9),
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    okm:
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    ikm: fill(0x0b, 22),
    salt: Buffer.alloc(0),
    info: Buffer.alloc(0),
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

// RFC 4231 test cases 1–4, 6, 7 (full output) and 5 (128-bit truncation: compare the prefix).
const RFC4231 = [
  { key: fill(0x0b, 20), data: ascii('Hi There'), mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7' },
  { key: ascii('Jefe'), data: ascii('what do ya want for nothing?'), mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' },
  { key: fill(0xaa, 20), data: fill(0xdd, 50), mac: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe' },
  { key: range(0x01, 0x19), data: fill(0xcd, 50), mac: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b' },
  { key: fill(0x0c, 20), data: ascii('Test With Truncation'), mac: 'a3b6167473100ee06e0c796c2955552b' },
  {
    key: fill(0xaa, 131),
    data: ascii('Test Using Larger Than Block-Size Key - Hash Key First'),
    mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  },
  {
    key: fill(0xaa, 131),
    data: ascii(
      'This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.',
    ),
    mac: '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
  },
];

// AES-256-SIV (512-bit key) with one associated-data string. RFC 5297's own examples are AES-128, so
// these come from Wycheproof aes_siv_cmac_test.json (as shipped in the RustCrypto aes-siv crate) and
// the AES-SIV-CMAC-512 vector of miscreant. Rows are [key, ad, plaintext, V ‖ C].
const MISCREANT_SIV_512 = [
  'fffefdfcfbfaf9f8f7f6f5f4f3f2f1f06f6e6d6c6b6a69686766656463626160f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f',
  '101112131415161718191a1b1c1d1e1f2021222324252627',
  '112233445566778899aabbccddee',
  'f125274c598065cfc26b0e71575029088b035217e380cac8919ee800c126',
];

const WYCHEPROOF_SIV_PASS = [
  [
    'bc7635c1fd566aa8357fd103714bfaee1c9e5b3c578b3980401a981030254a54b1756a8c96e600b7252fd0aab12f39d115d256b3f3e7c2c41a7fece72ba7c3c4',
    '',
    '',
    '44b1c6fe8a8c07dee5377b161f283c31',
  ],
  [
    'aff6388fdd2908e0c3b610e3dcd410c8146a268d6befd5c45ffdd23508b5b311cc3a9d8f838f456436b289018682151dd57d8d65d1a823c06eca8ab8ee01da01',
    'd0bb2949a411e22d32964526',
    '',
    'e288d802a0e56ed7544a2e5775459389',
  ],
  [
    'eef6bcf16ef7ae17326a33f22d1406ec1bd3f866505f4b2e4fe8b45bd62ccbd85032a9899facf2db0c93a2345cb8892afb74db549781211dd8881a8c8e25c171',
    'e941d15fadebaf4671e0e3d6d835f87bfb1cc7028f149930daa69c3de446c423',
    '',
    'b754ecb55c1e124de0c8a973d033bd7f',
  ],
  [
    'c25cafc6018b98dfbb79a40ec89c575a4f88c4116489bba27707479800c0130235334a45dbe8d8dae3da8dcb45bbe5dce031b0f68ded544fda7eca30d6749442',
    'deeb0ccf3aef47a296ed1ca8f4ae5907',
    'beec61030fa3d670337196beade6aeaa',
    '5865208eab9163db85cab9f96d846234a2626aae22f5c17c9aad4b501f4416e4',
  ],
  [
    '97bfd0f3e9bb8167bbb55f4cdc14529d8307c0ec2c3fe8bc88522d05c1261ba460c9cb4116f630edd74d413ec417324c6e29b566fb2dd3df18e07b53b1f9f83b',
    '1cda342c166ea208df5c56bcf995a59b',
    '48ef10ccb1978b53ae73167abe1cc538fa80da3f5df93e3d5c4e9a9ad1f213504f22a694b98a35ad67620af9d8a29fc7',
    'd55c5d0af0260dc1123adb5d7869201f8ccee46deb66dd695c593cde1d7645c72796e42a1733b6705753631b9b626991ddbd28473ce75cfdc4c14d20e66f212d',
  ],
  [
    'e2c5662bb18fbb411d0304e4241db073fe60a4704fee290073513038a22b4cd542580b2b4edbc37e3de01c0cb61abcad46986cdc491ce9e5ae5af223ff58b953',
    'fab912dec29a34aabfaef176',
    '0d',
    '1c6969ecb15741a9959b7a8492250e391a',
  ],
  [
    '8f13f2bf02d72360d9958eb8aa90634ae48331e7dfdbf16fc51c7238ae9f9d50d4495d196676ef5259b64a616305ffaae517c587d4e7afba40e4a2c5b0989182',
    '755f50cfdfc849654ad98cc7',
    'ac598720b96e',
    'adee2a373a7f6bbaf4f00e5f3f93435a09091b5221ae',
  ],
  [
    '8916d0342001561922e674b0cc51c05a935e5dc45a6d6284f34a4c5c79e92062dc3091217584607e9cf9056aa495ca4cd53fd3d4c6a94c4b384007e62174506b',
    '890dcea871da1caff4766d32',
    '6ad348470891d1babb13f3bf0e8c',
    'fbb68324b8c5b3e55ebc1feb4b98761521f4aac7eb7b6c0fb0505a08457b',
  ],
  [
    '139383f3f82dc78e0b380027f9e5fcd2ed23716404be5c554452e4dc73d237026594491820c6b8297185cc1fa84f49a5c7d7cd05c5de090ff1c3397bc2740437',
    'd39da73ffc03ad0a9213ffc7',
    '48604944a80fadf50d55b87727934458c8',
    'a9cf73951cb39823777f35c96c845169476e2ec2317cb6b8dd8b6172fdceabff9d',
  ],
  [
    'c0f4bede68c6ed5ad14918e2ddeced692dfd5419c04204d5b96f4ca47078b07028c6fb87b1b490d875f070bbe4d790f65e5df19947f02c9d3a4e493b542d0291',
    'b411e4d2facca67ea4a9f2a1',
    '2f358d4534559ac99dd71798b7925705d6f013f6b848ffe01cc86cef09d88f',
    'd27ae26dfe02e3eedf544e1b452cb0f0c9303a4e4819318315ae08839bcce558e4741817ec08dae406bbfc09f59aa9',
  ],
  [
    '72a76714e0171e8213de624f00e273bc900050e69d25c454cc42b61e8b3fbc92d4942e1ae14421e164046c1479a7b9c9f4b50b382cb62dfeaa210b98dec7d937',
    '6a8aaf2c84003e0e6f409658',
    '92d8f4dc7d41e8b180d66e8994022db79249cdc76fd7f3ea12d9925b51925250cd75a15fcfd78ea85c57fe6196f8d7545086f99ea796a0ea69170db9944200435d9d3d551943892400ce787f703c1105',
    '69f720f36b0da86ec8cc0f46d62835dcb35ac23f5b891152d861c4e0f0018f19d272ee8b12d83300bfd46aeec0124d5d23b3cb849c1cab1fdf64b70947ebf79f5442e209076dfa9a3f36ab0a6d3cf4a75ddfcdc21837743b20885db4c803ac27',
  ],
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '8dbfee9580e7e2bc66100a674497f4e1',
    '000000000000000000000000000000007ef8aa7e4dd49d9cfa09e9cb574fd90d',
  ],
];

const WYCHEPROOF_SIV_FAIL = [
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '',
    '6ef5b8ef53fc365606cd3ea047374885',
  ],
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '3031323334353637',
    '202e4a8f8b4c66788f3af230fb1c3ada5ead70c7f066d4df',
  ],
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '303132333435363738393a3b3c3d3e3f',
    '05b4e8166f28082987a32cdaf53deb61211dffad7562c4b924bb79fed73d9ce2',
  ],
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '303132333435363738393a3b3c3d3e3f40414243',
    '315d6cf8eeb36a37849710e7d1f72940adfd10a7615d6515b999dbfc5a10f3ae9df5f19a',
  ],
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '3031323334353637',
    'a12e4a8f8b4c66788f3af230fb1c3ada5ead70c7f066d4df',
  ],
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '303132333435363738393a3b3c3d3e3f',
    '04b4e8166e28082987a32cdaf53deb61211dffad7562c4b924bb79fed73d9ce2',
  ],
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '303132333435363738393a3b3c3d3e3f40414243',
    '305d6cf8eeb36a37849711e7d1f72940adfd10a7615d6515b999dbfc5a10f3ae9df5f19a',
  ],
  [
    '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
    '',
    '303132333435363738393a3b3c3d3e3f',
    '04b4e8166f2808a987a32cdaf53debe1211dffad7562c4b924bb79fed73d9ce2',
  ],
];

// --- Backend shape and engine selection ---------------------------------------------------------------

test('jsBackend implements the Backend contract', (t) => {
  t.is(jsBackend.name, 'js');
  t.true(IMPLS.includes(jsBackend.impl));
  t.is(typeof jsBackend.importRootKey, 'function');
  for (const name of [
    'aesSivEncrypt',
    'aesSivDecrypt',
    'chacha20Poly1305Encrypt',
    'chacha20Poly1305Decrypt',
    'xchacha20Poly1305Encrypt',
    'xchacha20Poly1305Decrypt',
    'hkdfSha256',
    'hmacSha256',
    'randomBytes',
  ]) {
    t.is(typeof jsBackend.primitives[name], 'function', name);
  }
});

test('node:crypto is used under Node, and SIFREDB_JS_IMPL forces an engine', (t) => {
  t.true(nodeEngineAvailable());
  t.is(createJsBackend().impl, process.env.SIFREDB_JS_IMPL === 'noble' ? 'noble' : 'node');
  const saved = process.env.SIFREDB_JS_IMPL;
  try {
    process.env.SIFREDB_JS_IMPL = 'noble';
    t.is(createJsBackend().impl, 'noble');
    t.is(createJsBackend({ impl: 'node' }).impl, 'node', 'an explicit impl wins over the environment');
    process.env.SIFREDB_JS_IMPL = 'bogus';
    assertCode(t, () => createJsBackend(), 'ERR_SIFREDB_BACKEND');
  } finally {
    if (saved === undefined) delete process.env.SIFREDB_JS_IMPL;
    else process.env.SIFREDB_JS_IMPL = saved;
  }
  assertCode(t, () => createJsBackend({ impl: 'wasm' }), 'ERR_SIFREDB_INPUT');
});

// --- RFC known answers, on every engine ----------------------------------------------------------------

for (const impl of IMPLS) {
  const p = backends[impl].primitives;

  test(`${impl}: ChaCha20-Poly1305 RFC 8439 §2.8.2`, (t) => {
    const sealed = p.chacha20Poly1305Encrypt(AEAD_KEY, RFC8439.nonce, SUNSCREEN, AEAD_AAD);
    t.true(Buffer.isBuffer(sealed));
    t.is(toHex(sealed), RFC8439.sealed);
    t.deepEqual(p.chacha20Poly1305Decrypt(AEAD_KEY, RFC8439.nonce, sealed, AEAD_AAD), SUNSCREEN);
  });

  test(`${impl}: XChaCha20-Poly1305 draft-irtf-cfrg-xchacha A.3.1`, (t) => {
    const sealed = p.xchacha20Poly1305Encrypt(AEAD_KEY, XCHACHA_DRAFT.nonce, SUNSCREEN, AEAD_AAD);
    t.is(toHex(sealed), XCHACHA_DRAFT.sealed);
    t.deepEqual(p.xchacha20Poly1305Decrypt(AEAD_KEY, XCHACHA_DRAFT.nonce, sealed, AEAD_AAD), SUNSCREEN);
  });

  test(`${impl}: HKDF-SHA256 RFC 5869 A.1–A.3`, (t) => {
    for (const [i, v] of RFC5869.entries()) {
      const okm = p.hkdfSha256(v.ikm, v.salt, v.info, v.okm.length / 2);
      t.true(Buffer.isBuffer(okm));
      t.is(toHex(okm), v.okm, `A.${i + 1}`);
    }
  });

  test(`${impl}: HMAC-SHA256 RFC 4231`, (t) => {
    for (const v of RFC4231) {
      const mac = p.hmacSha256(v.key, v.data);
      t.is(mac.length, 32);
      t.is(toHex(mac).slice(0, v.mac.length), v.mac);
    }
  });

  test(`${impl}: AES-256-SIV, Wycheproof and miscreant (one AD string)`, (t) => {
    for (const [key, ad, pt, ct] of [...WYCHEPROOF_SIV_PASS, MISCREANT_SIV_512]) {
      t.is(toHex(p.aesSivEncrypt(hex(key), hex(pt), hex(ad))), ct);
      t.is(toHex(p.aesSivDecrypt(hex(key), hex(ct), hex(ad))), pt);
    }
    for (const [key, ad, , ct] of WYCHEPROOF_SIV_FAIL) {
      assertCode(t, () => p.aesSivDecrypt(hex(key), hex(ct), hex(ad)), 'ERR_SIFREDB_AUTH', /^authentication failed$/);
    }
  });

  test(`${impl}: AEAD and SIV reject tampering with ERR_SIFREDB_AUTH`, (t) => {
    const key = randomBytes(32);
    const sealed = p.chacha20Poly1305Encrypt(key, RFC8439.nonce, SUNSCREEN, AEAD_AAD);
    for (const i of [0, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[i] ^= 1;
      assertCode(t, () => p.chacha20Poly1305Decrypt(key, RFC8439.nonce, bad, AEAD_AAD), 'ERR_SIFREDB_AUTH');
    }
    assertCode(t, () => p.chacha20Poly1305Decrypt(key, RFC8439.nonce, sealed, Buffer.of(1)), 'ERR_SIFREDB_AUTH');
    assertCode(t, () => p.chacha20Poly1305Decrypt(key, RFC8439.nonce, sealed.subarray(0, 15), AEAD_AAD), 'ERR_SIFREDB_AUTH');
    const x = p.xchacha20Poly1305Encrypt(key, XCHACHA_DRAFT.nonce, SUNSCREEN, AEAD_AAD);
    assertCode(t, () => p.xchacha20Poly1305Decrypt(key, randomBytes(24), x, AEAD_AAD), 'ERR_SIFREDB_AUTH');
    const sivKey = randomBytes(64);
    const siv = p.aesSivEncrypt(sivKey, SUNSCREEN, AEAD_AAD);
    siv[siv.length - 1] ^= 1;
    assertCode(t, () => p.aesSivDecrypt(sivKey, siv, AEAD_AAD), 'ERR_SIFREDB_AUTH');
    assertCode(t, () => p.aesSivDecrypt(sivKey, siv.subarray(0, 15), AEAD_AAD), 'ERR_SIFREDB_AUTH');
  });

  test(`${impl}: primitives validate their arguments`, (t) => {
    const k = randomBytes(32);
    const n = randomBytes(12);
    const e = Buffer.alloc(0);
    assertCode(t, () => p.chacha20Poly1305Encrypt('k', n, e, e), 'ERR_SIFREDB_INPUT', /^key must be a Uint8Array$/);
    assertCode(t, () => p.chacha20Poly1305Encrypt(k, n, [1, 2], e), 'ERR_SIFREDB_INPUT', /^plaintext must be a Uint8Array$/);
    assertCode(t, () => p.chacha20Poly1305Encrypt(k, n, e, null), 'ERR_SIFREDB_INPUT', /^aad must be a Uint8Array$/);
    assertCode(t, () => p.chacha20Poly1305Encrypt(randomBytes(16), n, e, e), 'ERR_SIFREDB_INPUT', /^key must be 32 bytes, got 16$/);
    assertCode(t, () => p.chacha20Poly1305Encrypt(k, randomBytes(24), e, e), 'ERR_SIFREDB_INPUT', /^nonce must be 12 bytes, got 24$/);
    assertCode(t, () => p.xchacha20Poly1305Encrypt(k, n, e, e), 'ERR_SIFREDB_INPUT', /^nonce must be 24 bytes, got 12$/);
    assertCode(t, () => p.aesSivEncrypt(k, e, e), 'ERR_SIFREDB_INPUT', /^key must be 64 bytes, got 32$/);
    for (const length of [0, 8161, 1.5, '32', Number.NaN]) {
      assertCode(t, () => p.hkdfSha256(k, e, e, length), 'ERR_SIFREDB_INPUT', /^length must be an integer/);
    }
    t.is(p.hkdfSha256(k, e, e, 8160).length, 8160);
    assertCode(t, () => p.hmacSha256(k, 'message'), 'ERR_SIFREDB_INPUT', /^message must be a Uint8Array$/);
    for (const bad of [-1, 65537, 2.5, '8']) assertCode(t, () => p.randomBytes(bad), 'ERR_SIFREDB_INPUT');
    t.is(p.randomBytes(0).length, 0);
    const r = p.randomBytes(65536);
    t.true(Buffer.isBuffer(r));
    t.is(r.length, 65536);
    t.notDeepEqual(p.randomBytes(32), p.randomBytes(32));
    // Other typed-array views are refused rather than reinterpreted as bytes.
    assertCode(t, () => p.hmacSha256(new Uint16Array(16), e), 'ERR_SIFREDB_INPUT');
  });
}

// --- node:crypto and @noble give the same bytes ----------------------------------------------------------

test('node:crypto and @noble primitives agree on random inputs', (t) => {
  const [a, b] = [backends.node.primitives, backends.noble.primitives];
  const same = (x, y, what) => t.is(toHex(x), toHex(y), what);
  for (let i = 0; i < 200; i++) {
    // Every length 0..99 (all block-boundary cases), then random lengths up to a few blocks of 4 KiB.
    const len = i < 100 ? i : randomInt(0, 10_000);
    const pt = randomBytes(len);
    const aad = randomBytes(randomInt(0, 80));
    const k = randomBytes(32);
    const n12 = randomBytes(12);
    const n24 = randomBytes(24);
    const k64 = randomBytes(64);
    same(a.chacha20Poly1305Encrypt(k, n12, pt, aad), b.chacha20Poly1305Encrypt(k, n12, pt, aad), `chacha ${len}`);
    same(a.xchacha20Poly1305Encrypt(k, n24, pt, aad), b.xchacha20Poly1305Encrypt(k, n24, pt, aad), `xchacha ${len}`);
    const siv = a.aesSivEncrypt(k64, pt, aad);
    same(siv, b.aesSivEncrypt(k64, pt, aad), `siv ${len}/${aad.length}`);
    same(b.aesSivDecrypt(k64, siv, aad), pt, `siv open ${len}`);
    // Long info takes node's HMAC composition instead of hkdfSync (which caps info at 1024 bytes).
    const info = randomBytes(i % 10 === 0 ? 1025 + i : randomInt(0, 200));
    const ikm = randomBytes(i % 7 === 0 ? 0 : randomInt(1, 100));
    const salt = randomBytes(i % 3 === 0 ? 0 : randomInt(1, 100));
    const L = randomInt(1, 8161);
    same(a.hkdfSha256(ikm, salt, info, L), b.hkdfSha256(ikm, salt, info, L), `hkdf ${ikm.length}/${info.length}/${L}`);
    const mk = randomBytes(i % 9 === 0 ? 0 : randomInt(1, 200));
    same(a.hmacSha256(mk, pt), b.hmacSha256(mk, pt), `hmac ${mk.length}`);
  }
});

test('node:crypto and @noble handles agree: envelopes, SIV and blind indexes', (t) => {
  const material = randomBytes(32);
  const [a, b] = [backends.node.importRootKey(7, material), backends.noble.importRootKey(7, material)];
  for (let i = 0; i < 60; i++) {
    const value = i % 2 ? randomBytes(randomInt(0, 300)) : 'é😀 '.repeat(randomInt(0, 40));
    const tag = i % 2 ? 0 : 1;
    for (const alg of [1, 2]) {
      const nonce = randomBytes(alg === 1 ? 12 : 24);
      const envA = a.randomizedCipher(alg, CTX).encryptWithNonce(value, tag, nonce);
      t.is(toHex(envA), toHex(b.randomizedCipher(alg, CTX).encryptWithNonce(value, tag, nonce)));
      t.deepEqual(b.randomizedCipher(alg, CTX).decrypt(envA), a.randomizedCipher(alg, CTX).decrypt(envA));
    }
    const det = a.deterministicCipher(CTX).encrypt(value, tag);
    t.is(toHex(det), toHex(b.deterministicCipher(CTX).encrypt(value, tag)));
    t.deepEqual(b.deterministicCipher(CTX).decrypt(det), a.deterministicCipher(CTX).decrypt(det));
    const bits = randomInt(8, 257);
    const msg = randomBytes(randomInt(0, 100));
    const name = Buffer.from(`idx_${i}`);
    t.is(toHex(a.blindIndex(CTX, name).compute(msg, bits)), toHex(b.blindIndex(CTX, name).compute(msg, bits)));
  }
});

// --- The v1 format, on every engine ------------------------------------------------------------------

/** Expected envelope composed from primitives and docs/FORMAT.md alone. */
function composeByHand(p, { algorithm, version, root, context, plaintext, nonce }) {
  const purpose = { 1: 'chacha20poly1305', 2: 'xchacha20poly1305', 3: 'aes-256-siv' }[algorithm];
  const info = Buffer.concat([ascii(`SifreDB/v1/${purpose}`), Buffer.of(0), context]);
  const key = p.hkdfSha256(root, ascii('SifreDB/v1/hkdf-salt'), info, algorithm === 3 ? 64 : 32);
  const header = Buffer.of(0x53, 0x01, algorithm, 0, 0, 0, 0);
  header.writeUInt32BE(version, 3);
  const aad = Buffer.concat([header, context]);
  if (algorithm === 3) return Buffer.concat([header, p.aesSivEncrypt(key, plaintext, aad)]);
  const seal = algorithm === 1 ? p.chacha20Poly1305Encrypt : p.xchacha20Poly1305Encrypt;
  return Buffer.concat([header, nonce, seal(key, nonce, plaintext, aad)]);
}

for (const impl of IMPLS) {
  const backend = backends[impl];
  const p = backend.primitives;

  test(`${impl}: handles follow FORMAT.md (header, HKDF info, AAD = header ‖ context)`, (t) => {
    const root = randomBytes(32);
    const version = 0xfffffffe;
    const rk = backend.importRootKey(version, root);
    t.is(rk.version, version);
    const value = 'alice@example.com';
    const plaintext = Buffer.concat([Buffer.of(1), Buffer.from(value)]);
    for (const algorithm of [1, 2]) {
      const nonce = randomBytes(algorithm === 1 ? 12 : 24);
      const handle = rk.randomizedCipher(algorithm, CTX);
      t.is(handle.algorithm, algorithm);
      t.is(handle.keyVersion, version);
      const expected = composeByHand(p, { algorithm, version, root, context: CTX, plaintext, nonce });
      t.is(toHex(handle.encryptWithNonce(value, 1, nonce)), toHex(expected));
      const fresh = handle.encrypt(value, 1);
      t.is(fresh.length, (algorithm === 1 ? 35 : 47) + plaintext.length);
      t.is(toHex(fresh.subarray(0, 7)), toHex(expected.subarray(0, 7)));
      t.deepEqual(handle.decrypt(fresh), plaintext);
    }
    const det = rk.deterministicCipher(CTX);
    t.is(det.algorithm, 3);
    t.is(det.encryptWithNonce, undefined);
    const expected = composeByHand(p, { algorithm: 3, version, root, context: CTX, plaintext });
    t.is(toHex(det.encrypt(value, 1)), toHex(expected));
    t.is(expected.length, 23 + plaintext.length);
    t.deepEqual(det.decrypt(expected), plaintext);

    const indexName = Buffer.from('email_idx');
    const info = Buffer.concat([ascii('SifreDB/v1/blind-index'), Buffer.of(0), CTX, Buffer.of(0, indexName.length), indexName]);
    const kIndex = p.hkdfSha256(root, ascii('SifreDB/v1/hkdf-salt'), info, 32);
    const message = Buffer.concat([Buffer.of(0, 0, 0, 5), Buffer.from('alice')]);
    const full = p.hmacSha256(kIndex, message);
    const bi = rk.blindIndex(CTX, indexName);
    t.is(bi.keyVersion, version);
    t.deepEqual(bi.compute(message, 256), full);
    t.deepEqual(bi.compute(message, 16), full.subarray(0, 2));
    const term13 = bi.compute(message, 13);
    t.is(term13.length, 2);
    t.is(term13[0], full[0]);
    t.is(term13[1], full[1] & 0xf8);
    t.deepEqual(bi.computeMany([message, message], 13), [term13, term13]);
    for (const bits of [7, 257, 12.5]) assertCode(t, () => bi.compute(message, bits), 'ERR_SIFREDB_INPUT');
  });

  test(`${impl}: random nonces differ and values round-trip`, (t) => {
    const rk = backend.importRootKey(1, randomBytes(32));
    for (const alg of [1, 2]) {
      const h = rk.randomizedCipher(alg, CTX);
      const nonceLength = alg === 1 ? 12 : 24;
      // More than one 4 KiB nonce-pool refill.
      const envs = Array.from({ length: 1000 }, () => h.encrypt('same', 1));
      t.is(new Set(envs.map((e) => toHex(e.subarray(7, 7 + nonceLength)))).size, envs.length);
      t.deepEqual(h.decrypt(envs[999]), Buffer.from('\x01same', 'latin1'));
      const bytes = randomBytes(5000);
      t.deepEqual(h.decrypt(h.encrypt(bytes, 0)), Buffer.concat([Buffer.of(0), bytes]));
      t.deepEqual(h.decrypt(h.encrypt('', 1)), Buffer.of(1));
      t.deepEqual(h.decrypt(h.encrypt(new Uint8Array(0), 0)), Buffer.of(0));
    }
    const det = rk.deterministicCipher(CTX);
    t.deepEqual(det.encrypt('x', 1), det.encrypt(Buffer.from('x'), 1));
    t.notDeepEqual(det.encrypt('x', 1), det.encrypt('x', 0));
    t.notDeepEqual(det.encrypt('x', 1), rk.deterministicCipher(OTHER_CTX).encrypt('x', 1));
  });

  test(`${impl}: decrypt checks in order: format, key version, length, then authentication`, (t) => {
    const rk = backend.importRootKey(3, randomBytes(32));
    const handles = [rk.randomizedCipher(1, CTX), rk.randomizedCipher(2, CTX), rk.deterministicCipher(CTX)];
    for (const h of handles) {
      const env = h.encrypt('secret', 1);
      const edit = (i, v) => {
        const e = Buffer.from(env);
        e[i] = v;
        return e;
      };
      assertCode(t, () => h.decrypt('sdb1:AAAA'), 'ERR_SIFREDB_INPUT', /^envelope must be a Uint8Array$/);
      assertCode(t, () => h.decrypt(env.subarray(0, 6)), 'ERR_SIFREDB_FORMAT', /truncated/);
      assertCode(t, () => h.decrypt(edit(0, 0x54)), 'ERR_SIFREDB_FORMAT');
      assertCode(t, () => h.decrypt(edit(1, 0x02)), 'ERR_SIFREDB_FORMAT');
      assertCode(t, () => h.decrypt(edit(2, 0x09)), 'ERR_SIFREDB_FORMAT');
      assertCode(t, () => h.decrypt(edit(2, (h.algorithm % 3) + 1)), 'ERR_SIFREDB_FORMAT');
      assertCode(t, () => h.decrypt(edit(6, 4)), 'ERR_SIFREDB_KEY');
      assertCode(t, () => h.decrypt(edit(6, 0)), 'ERR_SIFREDB_FORMAT', /key version 0/);
      const minimum = 7 + { 1: 12, 2: 24, 3: 0 }[h.algorithm] + 16 + 1;
      assertCode(t, () => h.decrypt(env.subarray(0, minimum - 1)), 'ERR_SIFREDB_FORMAT', /truncated/);
      for (const i of [7, env.length - 1]) {
        assertCode(t, () => h.decrypt(edit(i, env[i] ^ 0x80)), 'ERR_SIFREDB_AUTH', /^authentication failed$/);
      }
      // Another column's handle under the same key: the context is authenticated, not just keyed.
      const other = h.algorithm === 3 ? rk.deterministicCipher(OTHER_CTX) : rk.randomizedCipher(h.algorithm, OTHER_CTX);
      assertCode(t, () => other.decrypt(env), 'ERR_SIFREDB_AUTH');
      // Same version number, different root key material.
      const foreign = backend.importRootKey(3, randomBytes(32));
      const twin = h.algorithm === 3 ? foreign.deterministicCipher(CTX) : foreign.randomizedCipher(h.algorithm, CTX);
      assertCode(t, () => twin.decrypt(env), 'ERR_SIFREDB_AUTH');
      t.deepEqual(h.decrypt(env), Buffer.from('\x01secret', 'latin1'));
    }
  });

  test(`${impl}: encrypt validates values, tags and nonces; errors name the index`, (t) => {
    const rk = backend.importRootKey(1, randomBytes(32));
    const h = rk.randomizedCipher(1, CTX);
    assertCode(t, () => h.encrypt('a\uD800b', 1), 'ERR_SIFREDB_INPUT', /lone surrogate/);
    assertCode(t, () => h.encrypt('\uDC00', 1), 'ERR_SIFREDB_INPUT', /lone surrogate/);
    t.notThrows(() => h.encrypt('\uD83D\uDE00', 1));
    assertCode(t, () => h.encrypt(42, 2), 'ERR_SIFREDB_INPUT', /^value must be a Uint8Array or a string$/);
    for (const tag of [-1, 256, 1.5, '1']) assertCode(t, () => h.encrypt('a', tag), 'ERR_SIFREDB_INPUT', /typeTag/);
    assertCode(t, () => h.encryptWithNonce('a', 1, randomBytes(24)), 'ERR_SIFREDB_INPUT', /^nonce must be 12 bytes, got 24$/);

    const many = h.encryptMany(['a', Buffer.from('b'), 'c'], Uint8Array.of(1, 0, 1));
    t.deepEqual(h.decryptMany(many), [Buffer.from('\x01a', 'latin1'), Buffer.from('\x00b', 'latin1'), Buffer.from('\x01c', 'latin1')]);
    t.deepEqual(h.encryptMany([], new Uint8Array(0)), []);
    assertCode(t, () => h.encryptMany(['a', 'b'], Uint8Array.of(1)), 'ERR_SIFREDB_INPUT', /typeTags/);
    assertCode(t, () => h.encryptMany(['a', 'b', 'c', '\uD800'], Uint8Array.of(1, 1, 1, 1)), 'ERR_SIFREDB_INPUT', /^values\[3\]: /);
    const broken = [...many];
    broken[2] = Buffer.from(broken[2]);
    broken[2][broken[2].length - 1] ^= 1;
    assertCode(t, () => h.decryptMany(broken), 'ERR_SIFREDB_AUTH', /^envelopes\[2\]: authentication failed$/);
    assertCode(t, () => h.decryptMany([many[0], 'x']), 'ERR_SIFREDB_INPUT', /^envelopes\[1\]: /);
  });

  test(`${impl}: importRootKey and handle constructors validate their inputs`, (t) => {
    for (const v of [0, -1, 2 ** 32, 1.5, '1']) {
      assertCode(t, () => backend.importRootKey(v, randomBytes(32)), 'ERR_SIFREDB_INPUT', /^version must be an integer/);
    }
    assertCode(t, () => backend.importRootKey(1, randomBytes(31)), 'ERR_SIFREDB_INPUT', /^material must be 32 bytes, got 31$/);
    assertCode(t, () => backend.importRootKey(1, 'k'.repeat(32)), 'ERR_SIFREDB_INPUT', /^material must be a Uint8Array$/);

    // The handle keeps its own copy of the root key.
    const material = randomBytes(32);
    const materialHex = toHex(material);
    const rk = backend.importRootKey(1, material);
    const before = rk.deterministicCipher(CTX).encrypt('v', 1);
    material.fill(0);
    t.deepEqual(rk.deterministicCipher(CTX).encrypt('v', 1), before);
    // Key bytes live in private fields: nothing enumerable or serializable exposes them.
    t.false(JSON.stringify(rk).includes(materialHex));
    t.deepEqual(Object.keys(rk), ['version']);

    assertCode(t, () => rk.randomizedCipher(3, CTX), 'ERR_SIFREDB_INPUT', /^algorithm/);
    assertCode(t, () => rk.randomizedCipher(1, 'ctx'), 'ERR_SIFREDB_INPUT', /^context must be a Uint8Array$/);
    const badContexts = [
      Buffer.alloc(0),
      Buffer.concat([Buffer.of(2), CTX.subarray(1)]),
      CTX.subarray(0, CTX.length - 1),
      Buffer.concat([CTX, Buffer.of(0)]),
      canonicalContext({ table: '', column: 'c' }),
      canonicalContext({ table: 't'.repeat(256), column: 'c' }),
      canonicalContext({ table: 't', column: 'c', version: 0 }),
      canonicalContext({ tenant: 'x'.repeat(256), table: 't', column: 'c' }),
      Buffer.concat([Buffer.of(1, 0, 0, 0, 1, 0xff, 0, 1), ascii('c'), Buffer.of(0, 0, 0, 1)]),
    ];
    for (const ctx of badContexts) assertCode(t, () => rk.deterministicCipher(ctx), 'ERR_SIFREDB_INPUT', /canonical/);
    t.notThrows(() => rk.deterministicCipher(canonicalContext({ table: 't'.repeat(255), column: 'c' })));
    assertCode(t, () => rk.blindIndex(CTX, Buffer.alloc(0)), 'ERR_SIFREDB_INPUT', /^indexName must be 1..255 bytes/);
    assertCode(t, () => rk.blindIndex(CTX, Buffer.alloc(256)), 'ERR_SIFREDB_INPUT', /^indexName must be 1..255 bytes/);
    assertCode(t, () => rk.blindIndex(CTX, 'idx'), 'ERR_SIFREDB_INPUT', /^indexName must be a Uint8Array$/);
  });
}

// --- Frozen vectors shared with the native backend ----------------------------------------------------

const VECTORS_PATH = new URL('../test-vectors/format-v1.json', import.meta.url);
const ALGORITHM_IDS = { chacha20poly1305: 1, xchacha20poly1305: 2, 'aes-256-siv': 3, aessiv: 3 };

test('test-vectors/format-v1.json reproduces on every engine', (t) => {
  t.true(existsSync(VECTORS_PATH), 'test-vectors/format-v1.json is missing: the frozen format vectors must exist');
  if (!existsSync(VECTORS_PATH)) return;
  const vectors = JSON.parse(readFileSync(VECTORS_PATH, 'utf8'));
  const rootKeyOf = (ref) => {
    const found = vectors.rootKeys.find((k) => k.version === ref || k.name === ref || k.id === ref);
    if (found === undefined) throw new Error(`unknown rootKey ${ref}`);
    return found;
  };
  const contextOf = (ref) => {
    const found = vectors.contexts.find((c) => c.name === ref || c.id === ref);
    if (found === undefined) throw new Error(`unknown context ${ref}`);
    return hex(found.canonicalHex);
  };
  const algorithmId = (a) => (typeof a === 'number' ? a : ALGORITHM_IDS[a]);

  for (const c of vectors.contexts) {
    if (c.table === undefined) continue;
    t.is(toHex(canonicalContext(c)), c.canonicalHex, `context ${c.name}`);
  }

  let checked = 0;
  for (const impl of IMPLS) {
    const backend = backends[impl];
    const roots = new Map(vectors.rootKeys.map((k) => [k, backend.importRootKey(k.version, hex(k.hex))]));

    for (const d of vectors.derivedKeys ?? []) {
      const root = rootKeyOf(d.rootKey);
      const context = contextOf(d.context);
      const expected = d.keyHex ?? d.okmHex ?? d.hex;
      const indexName = d.indexName == null ? undefined : Buffer.from(d.indexName);
      const suffix = indexName === undefined ? [] : [Buffer.of(indexName.length >> 8, indexName.length & 0xff), indexName];
      const info = Buffer.concat([ascii(`SifreDB/v1/${d.purpose}`), Buffer.of(0), context, ...suffix]);
      const okm = backend.primitives.hkdfSha256(hex(root.hex), ascii('SifreDB/v1/hkdf-salt'), info, expected.length / 2);
      t.is(toHex(okm), expected, `${impl} derived key ${d.purpose}`);
      checked++;
    }

    for (const v of vectors.envelopes ?? []) {
      const rk = roots.get(rootKeyOf(v.rootKey));
      const context = contextOf(v.context);
      const algorithm = algorithmId(v.algorithm);
      const handle = algorithm === 3 ? rk.deterministicCipher(context) : rk.randomizedCipher(algorithm, context);
      const value = hex(v.valueHex);
      const envelope = algorithm === 3 ? handle.encrypt(value, v.typeTag) : handle.encryptWithNonce(value, v.typeTag, hex(v.nonceHex));
      t.is(toHex(envelope), v.envelopeHex, `${impl} envelope ${v.kind} ${v.algorithm}`);
      t.deepEqual(handle.decrypt(hex(v.envelopeHex)), Buffer.concat([Buffer.of(v.typeTag), value]));
      if (v.text !== undefined) t.is(v.text, `sdb1:${Buffer.from(v.envelopeHex, 'hex').toString('base64url')}`);
      checked++;
    }

    for (const b of vectors.blindIndex ?? []) {
      const rk = roots.get(rootKeyOf(b.rootKey));
      const indexName = Buffer.from(b.indexName);
      const term = rk.blindIndex(contextOf(b.context), indexName).compute(hex(b.messageHex), b.bits);
      t.is(toHex(term), b.termHex, `${impl} blind index ${b.bits} bits`);
      checked++;
    }
  }
  t.true(checked > 0, 'format-v1.json holds no vectors');
});
