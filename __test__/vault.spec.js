// Vault (randomized): round trips, typed values, text form, isolation, tampering, truncation, wrong
// keys, unknown versions, fail-closed decryption, and secret-free errors. Runs on the backend chosen
// by SIFREDB_BACKEND.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { BlindIndex, DeterministicVault, EncryptionContext, StaticKeyProvider, VALUE_TAG, Vault, inspect, isEncrypted, valueTypeOf } from '../dist/index.js';

const KEY = randomBytes(32);
const provider = new StaticKeyProvider(KEY);
const ctx = new EncryptionContext({ table: 'users', column: 'email' });
const ALGORITHMS = ['chacha20-poly1305', 'xchacha20-poly1305'];
const toText = (ct) => `sdb1:${ct.toString('base64url')}`;
const OVERHEAD = { 'chacha20-poly1305': 35, 'xchacha20-poly1305': 47 };
const vaults = Object.fromEntries(await Promise.all(ALGORITHMS.map(async (a) => [a, await Vault.open(provider, { algorithm: a })])));
const vault = vaults['chacha20-poly1305'];
const dvault = await DeterministicVault.open(vault.keyring);

const SECRET = 'SECRET-PLAINTEXT-4242-do-not-log';

function code(t, fn, expected) {
  const error = t.throws(fn);
  if (Array.isArray(expected)) t.true(expected.includes(error?.code), `got ${error?.code}: ${error?.message}`);
  else t.is(error?.code, expected, error?.message);
  return error;
}

const samples = {
  empty: '',
  oneByte: 'x',
  ascii: 'alice@example.com',
  unicode: 'Ünïcödé ✓ 日本語 🔐👩‍👩‍👧 e\u0301',
  mib: 'é'.repeat(512 * 1024), // 1 MiB of UTF-8
};

for (const algorithm of ALGORITHMS) {
  const v = vaults[algorithm];

  for (const [name, value] of Object.entries(samples)) {
    test(`${algorithm}: string round trip (${name})`, (t) => {
      const ct = v.encrypt(value, ctx);
      t.true(Buffer.isBuffer(ct));
      t.is(ct.length, Buffer.byteLength(value) + 1 + OVERHEAD[algorithm]);
      t.is(v.decryptToString(ct, ctx), value);
      t.true(v.decryptBytes(ct, ctx).equals(Buffer.from(value, 'utf8')));
      const text = v.encryptToString(value, ctx);
      t.true(text.startsWith('sdb1:'));
      t.is(v.decryptToString(text, ctx), value);
      t.is(v.decrypt(text, ctx), value);
    });
  }

  for (const [name, value] of Object.entries({ empty: Buffer.alloc(0), oneByte: Buffer.of(0), mib: randomBytes(1024 * 1024) })) {
    test(`${algorithm}: bytes round trip (${name})`, (t) => {
      // Buffer#equals, not deepEqual: ava's deep diff of 1 MiB takes seconds.
      const ct = v.encrypt(value, ctx);
      t.true(v.decryptBytes(ct, ctx).equals(value));
      const back = v.decrypt(ct, ctx);
      t.true(Buffer.isBuffer(back));
      t.true(back.equals(value));
      t.true(v.decryptBytes(new Uint8Array(ct), ctx).equals(value), 'a plain Uint8Array envelope is accepted');
    });
  }

  test(`${algorithm}: equal plaintexts give unrelated ciphertexts`, (t) => {
    const a = v.encrypt(SECRET, ctx);
    const b = v.encrypt(SECRET, ctx);
    t.notDeepEqual(a, b);
    t.deepEqual(a.subarray(0, 7), b.subarray(0, 7));
  });

  test(`${algorithm}: inspect reports the header without keys`, (t) => {
    const ct = v.encrypt('hello', ctx);
    const nonceLength = algorithm === 'chacha20-poly1305' ? 12 : 24;
    t.deepEqual(inspect(ct), {
      format: 1,
      algorithm,
      keyVersion: 1,
      nonceLength,
      bodyLength: 5 + 1 + 16,
      plaintextLength: 5,
      form: 'binary',
    });
    t.is(inspect(v.encryptToString('hello', ctx)).form, 'text');
    t.is(ct[0], 0x53);
    t.is(ct[1], 1);
    t.is(ct[2], algorithm === 'chacha20-poly1305' ? 1 : 2);
    t.is(ct.readUInt32BE(3), 1);
  });

  test(`${algorithm}: every header byte tampered fails (FORMAT, KEY or AUTH), never succeeds`, (t) => {
    const ct = v.encrypt(SECRET, ctx);
    for (let i = 0; i < 7; i++) {
      for (let x = 1; x < 256; x++) {
        const bad = Buffer.from(ct);
        bad[i] ^= x;
        const error = t.throws(() => v.decrypt(bad, ctx));
        t.true(['ERR_SIFREDB_FORMAT', 'ERR_SIFREDB_KEY', 'ERR_SIFREDB_AUTH'].includes(error.code), `byte ${i} ^ ${x}: ${error.code}`);
        t.false(error.message.includes(SECRET));
      }
    }
  });

  test(`${algorithm}: every nonce and body bit flipped fails with AUTH`, (t) => {
    const ct = v.encrypt('short secret', ctx);
    for (let bit = 7 * 8; bit < ct.length * 8; bit++) {
      const bad = Buffer.from(ct);
      bad[bit >> 3] ^= 1 << (bit & 7);
      code(t, () => v.decrypt(bad, ctx), 'ERR_SIFREDB_AUTH');
    }
  });

  test(`${algorithm}: every truncation fails (FORMAT or AUTH)`, (t) => {
    const ct = v.encrypt('some value', ctx);
    for (let n = 0; n < ct.length; n++) {
      code(t, () => v.decrypt(ct.subarray(0, n), ctx), ['ERR_SIFREDB_FORMAT', 'ERR_SIFREDB_AUTH']);
    }
    code(t, () => v.decrypt(Buffer.concat([ct, Buffer.of(0)]), ctx), 'ERR_SIFREDB_AUTH');
  });
}

test('typed values come back as the same JS type', (t) => {
  const values = [
    0,
    -0,
    1.5,
    -123456789.125,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    0n,
    -(2n ** 200n) + 7n,
    12345678901234567890n,
    true,
    false,
    new Date(0),
    new Date('2024-02-29T12:34:56.789Z'),
    new Date(-8.64e15),
    null,
    [],
    [1, 'two', { three: [null, true] }],
    { name: 'Ada', tags: ['x'], nested: { n: 1.25 }, unicode: '🔐' },
  ];
  for (const value of values) {
    for (const form of ['binary', 'text']) {
      const ct = form === 'text' ? vault.encryptToString(value, ctx) : vault.encrypt(value, ctx);
      const back = vault.decrypt(ct, ctx);
      if (value instanceof Date) {
        t.true(back instanceof Date);
        t.is(back.getTime(), value.getTime());
      } else if (typeof value === 'number') {
        t.is(typeof back, 'number');
        t.true(Object.is(back, value), `${value}`);
      } else {
        t.deepEqual(back, value);
        t.is(typeof back, typeof value);
      }
    }
  }
  t.is(vault.decryptBytes(vault.encrypt(true, ctx), ctx).toString('hex'), '01');
  t.is(vault.decryptBytes(vault.encrypt(-1n, ctx), ctx).toString(), '-1');
});

test('lone surrogates are rejected, never replaced', (t) => {
  for (const value of ['\uD800', 'abc\uDBFF', '\uDC00xyz', 'a\uDC00\uD800b']) {
    const error = code(t, () => vault.encrypt(value, ctx), 'ERR_SIFREDB_INPUT');
    t.regex(error.message, /lone surrogate/);
    code(t, () => vault.encryptToString(value, ctx), 'ERR_SIFREDB_INPUT');
  }
  // A well-formed surrogate pair is fine.
  t.is(vault.decryptToString(vault.encrypt('\uD83D\uDD10', ctx), ctx), '🔐');
  // Inside JSON, JSON.stringify escapes a lone surrogate, so it round-trips exactly.
  t.deepEqual(vault.decrypt(vault.encrypt({ s: 'a\uD800' }, ctx), ctx), { s: 'a\uD800' });
});

test('values that cannot be represented are refused', (t) => {
  for (const value of [undefined, () => 1, Symbol('s'), new Map(), new Set([1]), new ArrayBuffer(2), new Date(Number.NaN), { big: 1n }]) {
    code(t, () => vault.encrypt(value, ctx), 'ERR_SIFREDB_INPUT');
  }
  const cyclic = {};
  cyclic.self = cyclic;
  code(t, () => vault.encrypt(cyclic, ctx), 'ERR_SIFREDB_INPUT');
});

test('JSON values: anything nested that JSON would drop or rewrite is refused with its path', (t) => {
  const secret = 'do-not-quote-me';
  const cases = [
    [{ m: new Map([[secret, 1]]) }, 'value.m is a Map'],
    [{ s: new Set([secret]) }, 'value.s is a Set'],
    [{ a: [1, Number.NaN] }, 'value.a[1] is NaN'],
    [{ n: Number.POSITIVE_INFINITY }, 'value.n is Infinity'],
    [[{ b: Buffer.from(secret) }], 'value[0].b is a Buffer'],
    [{ u: new Uint8Array(2) }, 'value.u is a Uint8Array'],
    [{ d: new Date(0) }, 'value.d is a Date'],
    [{ x: undefined }, 'value.x is undefined'],
    [[1, undefined], 'value[1] is undefined'],
    [{ f: () => secret }, 'value.f is a function'],
    [{ t: { toJSON: () => secret } }, 'value.t is an object with toJSON()'],
    [{ 'odd key': { deep: [{ z: 5n }] } }, 'value["odd key"].deep[0].z is a bigint'],
    [[1, , 3], 'value[1] is a hole in a sparse array'], // eslint-disable-line no-sparse-arrays
    [{ c: new (class Point {})() }, 'value.c is a Point'],
    [{ [Symbol('k')]: 1 }, 'value has symbol keys'],
  ];
  for (const [value, message] of cases) {
    const error = code(t, () => vault.encrypt(value, ctx), 'ERR_SIFREDB_INPUT');
    t.true(error.message.startsWith(message), `${message} — got: ${error.message}`);
    t.false(error.message.includes(secret));
  }
  const shared = { k: 1 };
  const cyclic = { a: { b: {} } };
  cyclic.a.b.back = cyclic.a;
  t.regex(code(t, () => vault.encrypt(cyclic, ctx), 'ERR_SIFREDB_INPUT').message, /value\.a\.b\.back is a circular reference/);
  // Plain data, including a repeated (not circular) object and a null prototype, still round-trips.
  const plain = { a: [1, -0.5, 'x', null, true, { b: shared }], c: shared, d: Object.assign(Object.create(null), { e: 'f' }) };
  t.deepEqual(vault.decrypt(vault.encrypt(plain, ctx), ctx), JSON.parse(JSON.stringify(plain)));
});

test('decryptToString refuses a value that is not a string', (t) => {
  const error = code(t, () => vault.decryptToString(vault.encrypt(42, ctx), ctx), 'ERR_SIFREDB_INPUT');
  t.regex(error.message, /number, not a string/);
  code(t, () => vault.decryptToString(vault.encrypt(Buffer.from('hi'), ctx), ctx), 'ERR_SIFREDB_INPUT');
});

test('context isolation: another table, column, tenant or context version fails with AUTH', (t) => {
  const ct = vault.encrypt(SECRET, ctx);
  const others = [
    EncryptionContext.of('users', 'name'),
    EncryptionContext.of('customers', 'email'),
    ctx.withTenant('t_1'),
    ctx.withVersion(2),
    new EncryptionContext({ table: 'users|email', column: 'x' }),
  ];
  for (const other of others) {
    const error = code(t, () => vault.decrypt(ct, other), 'ERR_SIFREDB_AUTH');
    t.false(error.message.includes(SECRET));
  }
});

test('tenant isolation: a value cannot be moved to another tenant', (t) => {
  const a = ctx.withTenant('tenant-a');
  const b = ctx.withTenant('tenant-b');
  const ct = vault.encrypt(SECRET, a);
  t.is(vault.decryptToString(ct, a), SECRET);
  code(t, () => vault.decrypt(ct, b), 'ERR_SIFREDB_AUTH');
  code(t, () => vault.decrypt(ct, ctx), 'ERR_SIFREDB_AUTH');
});

test('a wrong key fails with AUTH', async (t) => {
  const other = await Vault.open(new StaticKeyProvider(randomBytes(32)));
  const error = code(t, () => other.decrypt(vault.encrypt(SECRET, ctx), ctx), 'ERR_SIFREDB_AUTH');
  t.false(error.message.includes(SECRET));
});

test('an unknown key version fails with KEY', (t) => {
  const ct = vault.encrypt(SECRET, ctx);
  for (const version of [2, 99, 2 ** 32 - 1]) {
    const bad = Buffer.from(ct);
    bad.writeUInt32BE(version, 3);
    const error = code(t, () => vault.decrypt(bad, ctx), 'ERR_SIFREDB_KEY');
    t.regex(error.message, new RegExp(`unknown key version ${version}`));
    code(t, () => vault.reencrypt(bad, ctx), 'ERR_SIFREDB_KEY');
  }
});

test('fail closed: a plaintext left in the column throws FORMAT, never passes through', (t) => {
  const stored = ['alice@example.com', '', 'sdb1:', 'sdb1:not base64!', 'SDB1:UwEB', 'sdb1:UwEB====', ' sdb1:UwEBAAAAAQ'];
  for (const value of stored) {
    for (const fn of [() => vault.decrypt(value, ctx), () => vault.decryptToString(value, ctx), () => vault.decryptBytes(value, ctx)]) {
      const error = code(t, fn, 'ERR_SIFREDB_FORMAT');
      if (value.length > 6) t.false(error.message.includes(value), 'the input is not echoed');
    }
    t.false(isEncrypted(value));
  }
  for (const bytes of [Buffer.from('alice@example.com'), Buffer.alloc(0), Buffer.alloc(64)]) {
    code(t, () => vault.decrypt(bytes, ctx), 'ERR_SIFREDB_FORMAT');
    t.false(isEncrypted(bytes));
  }
  t.true(isEncrypted(vault.encrypt('x', ctx)));
  t.true(isEncrypted(vault.encryptToString('x', ctx)));
  t.false(isEncrypted(42));
  t.false(isEncrypted(null));
  code(t, () => vault.decrypt(42, ctx), 'ERR_SIFREDB_INPUT');
});

test('the text form is parsed strictly', (t) => {
  const text = vault.encryptToString('value', ctx);
  t.regex(text, /^sdb1:[A-Za-z0-9_-]+$/);
  t.is(inspect(Buffer.from(text.slice(5), 'base64url')).plaintextLength, 5, 'the text form is base64url of the binary envelope');
  const variants = [`${text}=`, `${text} `, `${text}\n`, text.replace('sdb1:', 'sdb2:'), text.replace('sdb1:', 'sdb1: '), `${text.slice(0, -1)}+`];
  for (const bad of variants) code(t, () => vault.decrypt(bad, ctx), 'ERR_SIFREDB_FORMAT');
  // Non-canonical: a last character with stray low bits decodes to the same bytes in lenient decoders.
  const envelope = Buffer.from(text.slice(5), 'base64url');
  if (envelope.length % 3 !== 0) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(text.at(-1));
    const nonCanonical = text.slice(0, -1) + alphabet[last | 1];
    if (nonCanonical !== text) code(t, () => vault.decrypt(nonCanonical, ctx), 'ERR_SIFREDB_FORMAT');
  }
});

test('inspect reports unsupported format versions and algorithms', (t) => {
  const ct = vault.encrypt('x', ctx);
  const v2 = Buffer.from(ct);
  v2[1] = 2;
  t.regex(code(t, () => inspect(v2), 'ERR_SIFREDB_FORMAT').message, /unsupported format version 2/);
  t.regex(code(t, () => vault.decrypt(v2, ctx), 'ERR_SIFREDB_FORMAT').message, /unsupported format version 2/);
  const alg = Buffer.from(ct);
  alg[2] = 9;
  t.regex(code(t, () => inspect(alg), 'ERR_SIFREDB_FORMAT').message, /unknown algorithm id 9/);
  t.regex(code(t, () => inspect(ct.subarray(0, 5)), 'ERR_SIFREDB_FORMAT').message, /header/);
  t.regex(code(t, () => inspect(ct.subarray(0, 20)), 'ERR_SIFREDB_FORMAT').message, /truncated/);
  const magic = Buffer.from(ct);
  magic[0] = 0x54;
  t.regex(code(t, () => inspect(magic), 'ERR_SIFREDB_FORMAT').message, /bad magic/);
});

test('algorithms: each vault reads both randomized algorithms; needsReencryption follows the configured one', (t) => {
  const chacha = vaults['chacha20-poly1305'];
  const xchacha = vaults['xchacha20-poly1305'];
  const a = chacha.encrypt(SECRET, ctx);
  const b = xchacha.encrypt(SECRET, ctx);
  t.is(xchacha.decryptToString(a, ctx), SECRET);
  t.is(chacha.decryptToString(b, ctx), SECRET);
  t.false(chacha.needsReencryption(a));
  t.true(chacha.needsReencryption(b));
  t.true(xchacha.needsReencryption(a));
  const upgraded = xchacha.reencrypt(a, ctx);
  t.is(inspect(upgraded).algorithm, 'xchacha20-poly1305');
  t.is(chacha.decryptToString(upgraded, ctx), SECRET);
  t.is(chacha.algorithm, 'chacha20-poly1305');
});

test('a Vault and a DeterministicVault do not read each other', async (t) => {
  code(t, () => vault.decrypt(dvault.encrypt('x', ctx), ctx), 'ERR_SIFREDB_FORMAT');
  code(t, () => dvault.decrypt(vault.encrypt('x', ctx), ctx), 'ERR_SIFREDB_FORMAT');
  code(t, () => vault.needsReencryption(dvault.encrypt('x', ctx)), 'ERR_SIFREDB_FORMAT');
});

test('reencrypt keeps the form and the type', (t) => {
  const text = vault.encryptToString(new Date(5), ctx);
  const again = vault.reencrypt(text, ctx);
  t.is(typeof again, 'string');
  t.not(again, text);
  t.deepEqual(vault.decrypt(again, ctx), new Date(5));
  const bin = vault.reencrypt(vault.encrypt(7n, ctx), ctx);
  t.true(Buffer.isBuffer(bin));
  t.is(vault.decrypt(bin, ctx), 7n);
  code(t, () => vault.reencrypt(vault.encrypt(1, ctx), ctx.withTenant('x')), 'ERR_SIFREDB_AUTH');
});

test('arguments are validated', async (t) => {
  code(t, () => vault.encrypt('x', { table: 'users', column: 'email' }), 'ERR_SIFREDB_INPUT');
  code(t, () => vault.decrypt(vault.encrypt('x', ctx), 'users|email'), 'ERR_SIFREDB_INPUT');
  await t.throwsAsync(() => Vault.open(provider, { algorithm: 'aes-128-gcm' }), { code: 'ERR_SIFREDB_INPUT' });
  await t.throwsAsync(() => Vault.open(provider, { cacheSize: 0 }), { code: 'ERR_SIFREDB_INPUT' });
  await t.throwsAsync(() => Vault.open({}), { code: 'ERR_SIFREDB_INPUT' });
  await t.throwsAsync(() => Vault.open(vault.keyring, { cacheSize: 5 }), { code: 'ERR_SIFREDB_INPUT' });
});

test('errors never contain the plaintext or key bytes', (t) => {
  const keyForms = [KEY.toString('hex'), KEY.toString('base64'), KEY.toString('base64url')];
  const ct = vault.encrypt(SECRET, ctx);
  const failures = [
    () => vault.decrypt(ct, ctx.withTenant('x')),
    () => vault.decrypt(Buffer.from(SECRET), ctx),
    () => vault.decrypt(SECRET, ctx),
    () => vault.decrypt(`sdb1:${SECRET}`, ctx),
    () => vault.encrypt(`${SECRET}\uD800`, ctx),
    () => vault.decryptToString(vault.encrypt({ SECRET }, ctx), ctx),
    () => new StaticKeyProvider(KEY.toString('base64').slice(1)),
  ];
  for (const fail of failures) {
    const error = t.throws(fail);
    const text = `${error.message} ${String(error.cause?.message ?? '')}`;
    t.false(text.includes(SECRET), error.message);
    for (const form of keyForms) t.false(text.includes(form));
  }
});

// One value of every stored type, with the `expect` name of that type.
const TYPED = [
  ['string', SECRET],
  ['bytes', Buffer.from('raw bytes \x00\xff', 'latin1')],
  ['number', -12.5],
  ['bigint', -(10n ** 30n)],
  ['boolean', false],
  ['date', new Date(1_700_000_000_123)],
  ['json', null],
  ['json', [1, 'two', { three: [null, true] }]],
  ['json', { name: 'Ada', nested: { n: 1.25 } }],
];

test('decrypt returns every type as it was encrypted; expect of the same type passes', (t) => {
  for (const v of [vault, dvault]) {
    for (const [type, value] of TYPED) {
      for (const ct of [v.encrypt(value, ctx), v.encryptToString(value, ctx)]) {
        for (const back of [v.decrypt(ct, ctx), v.decrypt(ct, ctx, { expect: type })]) {
          if (type === 'bytes') t.true(Buffer.isBuffer(back) && back.equals(value));
          else if (type === 'date') t.true(back instanceof Date && back.getTime() === value.getTime());
          else t.deepEqual(back, value);
          if (type !== 'json' && type !== 'date' && type !== 'bytes') t.is(typeof back, type);
        }
      }
    }
  }
  // Row binding and expect together.
  t.is(vault.decrypt(vault.encrypt(7, ctx, { aad: 'row-1' }), ctx, { aad: 'row-1', expect: 'number' }), 7);
  t.deepEqual(
    Object.values(VALUE_TAG).map((tag) => [tag, valueTypeOf(tag)]),
    Object.entries(VALUE_TAG).map(([name, tag]) => [tag, name]),
  );
  t.is(valueTypeOf(7), undefined);
});

test('expect of another type throws INPUT naming both types, never the value', (t) => {
  const phrase = { string: 'a string', bytes: 'bytes', number: 'a number', bigint: 'a bigint', boolean: 'a boolean', date: 'a date', json: 'JSON' };
  for (const [stored, value] of TYPED) {
    const ct = vault.encrypt(value, ctx);
    for (const expect of Object.keys(phrase)) {
      if (expect === stored) continue;
      const error = code(t, () => vault.decrypt(ct, ctx, { expect }), 'ERR_SIFREDB_INPUT');
      t.is(error.message, `the stored value is ${phrase[stored]}, not ${phrase[expect]}`);
      t.false(error.message.includes(SECRET));
    }
  }
  t.is(code(t, () => vault.decrypt(vault.encrypt(1, ctx), ctx, { expect: 'date' }), 'ERR_SIFREDB_INPUT').message, 'the stored value is a number, not a date');
  // A bad expect is refused before anything is decrypted (a non-ciphertext is not even looked at).
  for (const expect of ['Date', 'object', 'undefined', 42, null, {}]) {
    t.regex(code(t, () => vault.decrypt('not a ciphertext', ctx, { expect }), 'ERR_SIFREDB_INPUT').message, /^expect must be one of 'bytes', 'string'/);
  }
  // A plaintext with an unknown type tag is malformed, whatever was expected: FORMAT, not INPUT.
  const odd = vault.keyring.randomizedCipher(1, ctx).encrypt(Buffer.from('x'), 9);
  for (const expect of [undefined, 'string']) {
    t.regex(code(t, () => vault.decrypt(odd, ctx, { expect }), 'ERR_SIFREDB_FORMAT').message, /unknown type tag 9/);
    t.regex(code(t, () => vault.decryptMany([odd], ctx, { expect }), 'ERR_SIFREDB_FORMAT').message, /^ciphertexts\[0\]: /);
  }
  // decryptBytes hands the bytes on, but only of a value a correct writer could have produced.
  t.regex(code(t, () => vault.decryptBytes(odd, ctx), 'ERR_SIFREDB_FORMAT').message, /unknown type tag 9/);
  // A refused read leaves the ciphertext readable with the right type.
  const ct = vault.encrypt(SECRET, ctx);
  code(t, () => vault.decrypt(ct, ctx, { expect: 'bytes' }), 'ERR_SIFREDB_INPUT');
  t.is(vault.decrypt(ct, ctx, { expect: 'string' }), SECRET);
});

test('decryptMany / decryptManyAsync return typed values; expect checks each and names the index', async (t) => {
  for (const v of [vault, dvault]) {
    const values = TYPED.map(([, value]) => value);
    const sealed = v.encryptMany(values, ctx);
    const check = (opened) => {
      t.is(opened.length, values.length);
      for (let i = 0; i < values.length; i++) {
        const [type, value] = TYPED[i];
        if (type === 'date') t.is(opened[i].getTime(), value.getTime());
        else if (type === 'bytes') t.true(opened[i].equals(value));
        else t.deepEqual(opened[i], value);
      }
    };
    check(v.decryptMany(sealed, ctx));
    check(await v.decryptManyAsync(sealed, ctx, { threads: 2 }));
    check(v.decryptMany(TYPED.map(([, value], i) => v.encrypt(value, ctx, { aad: i })), ctx, { aad: TYPED.map((_, i) => i) }));

    const strings = ['a', 'b', 'c', 'd'].map((x) => `${SECRET} ${x}`);
    const batch = v.encryptMany(strings, ctx);
    t.deepEqual(v.decryptMany(batch, ctx, { expect: 'string' }), strings);
    t.deepEqual(await v.decryptManyAsync(batch, ctx, { expect: 'string' }), strings);
    batch[2] = v.encrypt(new Date(0), ctx);
    const rowIds = { aad: [1, 2, 3, 4], expect: 'string' };
    const bound = strings.map((x, i) => v.encrypt(i === 2 ? new Date(0) : x, ctx, { aad: i + 1 }));
    for (const error of [
      t.throws(() => v.decryptMany(batch, ctx, { expect: 'string' })),
      await t.throwsAsync(v.decryptManyAsync(batch, ctx, { expect: 'string', threads: 2 })),
      t.throws(() => v.decryptMany(bound, ctx, rowIds)),
      await t.throwsAsync(v.decryptManyAsync(bound, ctx, rowIds)),
    ]) {
      t.is(error.code, 'ERR_SIFREDB_INPUT');
      t.is(error.message, 'ciphertexts[2]: the stored value is a date, not a string');
      t.is(error.index, 2);
    }
    t.is(t.throws(() => v.decryptMany(batch, ctx, { expect: 'text' })).code, 'ERR_SIFREDB_INPUT');
    t.is((await t.throwsAsync(v.decryptManyAsync(batch, ctx, { expect: 'text' }))).code, 'ERR_SIFREDB_INPUT');
  }
});

test('decryptBytes / decryptManyBytes return the raw value bytes, whatever the type', async (t) => {
  const float = (n) => {
    const out = Buffer.alloc(8);
    out.writeDoubleBE(n);
    return out;
  };
  const raw = [
    [SECRET, Buffer.from(SECRET, 'utf8')],
    [Buffer.of(0, 1, 2), Buffer.of(0, 1, 2)],
    [-12.5, float(-12.5)],
    [-(10n ** 30n), Buffer.from((-(10n ** 30n)).toString(), 'latin1')],
    [true, Buffer.of(1)],
    [new Date(1_700_000_000_123), float(1_700_000_000_123)],
    [{ a: [1, null] }, Buffer.from('{"a":[1,null]}')],
  ];
  for (const v of [vault, dvault]) {
    const sealed = v.encryptMany(raw.map(([value]) => value), ctx);
    const many = v.decryptManyBytes(sealed, ctx);
    const manyAsync = await v.decryptManyBytesAsync(sealed, ctx, { threads: 2 });
    for (let i = 0; i < raw.length; i++) {
      const expected = raw[i][1];
      t.true(v.decryptBytes(sealed[i], ctx).equals(expected), `decryptBytes ${i}`);
      t.true(v.decryptBytes(toText(sealed[i]), ctx).equals(expected), `decryptBytes of text ${i}`);
      t.true(many[i].equals(expected), `decryptManyBytes ${i}`);
      t.true(manyAsync[i].equals(expected), `decryptManyBytesAsync ${i}`);
    }
  }
  t.is(vault.decryptValue, undefined, 'decryptValue is gone');
});

test('BlindIndex term.int: a number up to 53 bits, a bigint above', async (t) => {
  for (const [bits, type] of [[undefined, 'number'], [16, 'number'], [53, 'number'], [54, 'bigint'], [256, 'bigint']]) {
    const index = await BlindIndex.open(vault.keyring, bits === undefined ? { name: 'email' } : { name: 'email', bits });
    const term = index.compute('alice@example.com', ctx);
    t.is(typeof term.int, type, `${bits} bits`);
    t.is(BigInt(term.int), BigInt(`0x${term.hex}`) >> BigInt(term.bytes.length * 8 - index.bits));
  }
});
