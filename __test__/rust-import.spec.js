// Reading what SifreDB for Rust wrote (lib/rust-import): a key directory and a few hundred values
// written by the published crates themselves (__test__/rust-writer, `sifredb` and
// `sifredb-key-file` 0.1.1), opened on both backends; the formats re-checked against Python's
// `cryptography` and `hmac`; the key directory never written; ambiguous contexts refused.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  backend,
  RustDeterministicVault,
  RustKeyDirectory,
  rustContextString,
  rustIndexContextString,
} from '../dist/index.js';
import { jsBackend, nativeBackend } from './helpers/backends.js';
import { runRustWriter } from './helpers/rust-writer.js';

const written = runRustWriter();
const backends = [
  ['native', nativeBackend],
  ['js', jsBackend],
];
const contextOf = (v) => ({ tenant: v.tenant, table: v.table, column: v.column, version: v.version });

function code(t, fn, expected, pattern) {
  const error = t.throws(fn);
  t.is(error?.code, expected, error?.message);
  if (pattern) t.regex(error.message, pattern);
  return error;
}

async function codeAsync(t, fn, expected, pattern) {
  const error = await t.throwsAsync(fn);
  t.is(error?.code, expected, error?.message);
  if (pattern) t.regex(error.message, pattern);
  return error;
}

/** Every file of a directory: name, kind, mode, link target or content, mtime. */
function snapshot(dir) {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const path = join(dir, name);
      const s = lstatSync(path);
      return [name, s.mode, s.mtimeMs, s.isSymbolicLink() ? readlinkSync(path) : readFileSync(path).toString('hex')];
    });
}

test('the Rust writer wrote a key directory and a few hundred values, unicode and empty ones included', (t) => {
  t.true(written.values.length >= 300, `${written.values.length} values`);
  t.true(written.values.some((v) => v.plaintext.length === 0));
  t.true(written.values.some((v) => /[^\x00-\x7f]/.test(v.plaintext.toString())));
  t.true(written.values.some((v) => v.tenant === null) && written.values.some((v) => v.tenant === ''));
  t.deepEqual(new Set(written.values.map((v) => v.version)), new Set([1, 2]));
  t.deepEqual(readdirSync(written.keyDir).sort(), ['current', 'kek_v1.key', 'kek_v2.key', 'pepper.key']);
});

for (const [name, b] of backends) {
  test(`every Rust DeterministicVault value decrypts, and encrypting reproduces its bytes [${name}]`, async (t) => {
    const vault = await RustDeterministicVault.fromKeyFile(written.deterministicKey, { backend: b });
    for (const v of written.values) {
      t.is(rustContextString(contextOf(v)), v.context);
      const plaintext = vault.decrypt(v.ciphertext, contextOf(v));
      t.true(plaintext.equals(v.plaintext), v.context);
      t.true(vault.encrypt(v.plaintext, contextOf(v)).equals(v.ciphertext), v.context);
    }
    // A string plaintext is its UTF-8.
    const unicode = written.values.find((v) => v.plaintext.toString() === 'Çağrı Şükrü Öztürk');
    t.true(vault.encrypt('Çağrı Şükrü Öztürk', contextOf(unicode)).equals(unicode.ciphertext));
    vault.destroy();
    code(t, () => vault.decrypt(unicode.ciphertext, contextOf(unicode)), 'ERR_SIFREDB_KEY', /destroyed/);
  });

  test(`wrong context, version, key or bytes fail with typed errors [${name}]`, async (t) => {
    const vault = await RustDeterministicVault.fromKeyFile(written.deterministicKey, { backend: b });
    const v = written.values.find((x) => x.tenant === 'acme' && x.plaintext.length > 3);
    const ctx = contextOf(v);
    code(t, () => vault.decrypt(v.ciphertext, { ...ctx, tenant: 'globex' }), 'ERR_SIFREDB_AUTH');
    code(t, () => vault.decrypt(v.ciphertext, { ...ctx, version: ctx.version + 1 }), 'ERR_SIFREDB_AUTH');
    code(t, () => vault.decrypt(v.ciphertext, { ...ctx, column: 'other' }), 'ERR_SIFREDB_AUTH');
    const tampered = Buffer.from(v.ciphertext);
    tampered[tampered.length - 1] ^= 1;
    code(t, () => vault.decrypt(tampered, ctx), 'ERR_SIFREDB_AUTH');
    code(t, () => vault.decrypt(v.ciphertext.subarray(0, 15), ctx), 'ERR_SIFREDB_FORMAT');
    code(t, () => vault.decrypt('abc', ctx), 'ERR_SIFREDB_INPUT');
    const other = new RustDeterministicVault(Buffer.alloc(64, 1), { backend: b });
    code(t, () => other.decrypt(v.ciphertext, ctx), 'ERR_SIFREDB_AUTH');
    code(t, () => new RustDeterministicVault(Buffer.alloc(32)), 'ERR_SIFREDB_KEY', /64 bytes/);
  });

  test(`legacy blind-index terms and wrapped DEKs from the key directory [${name}]`, async (t) => {
    const before = snapshot(written.keyDir);
    const dir = await RustKeyDirectory.open(written.keyDir, { backend: b });
    t.deepEqual(dir.keks, [
      { id: 'kek_v1', version: 1 },
      { id: 'kek_v2', version: 2 },
    ]);
    t.is(dir.currentKekId, written.currentKek);
    t.true(dir.hasPepper);
    for (const v of written.values) {
      t.is(rustIndexContextString(contextOf(v)), v.indexContext);
      t.true(dir.blindIndex(v.plaintext, contextOf(v)).equals(v.blindIndex), v.indexContext);
    }
    for (const w of written.wrappedDeks) t.true(dir.unwrapDek(w.kekId, w.wrapped).equals(w.dek));
    const [first, second] = written.wrappedDeks;
    code(t, () => dir.unwrapDek(second.kekId, first.wrapped), 'ERR_SIFREDB_AUTH');
    code(t, () => dir.unwrapDek('kek_v9', first.wrapped), 'ERR_SIFREDB_KEY');
    dir.destroy();
    code(t, () => dir.blindIndex('x', { table: 'users', column: 'email' }), 'ERR_SIFREDB_KEY', /destroyed/);
    t.deepEqual(snapshot(written.keyDir), before, 'the key directory is unchanged');
  });
}

test(`the formats, re-checked by Python's cryptography AESSIV and hmac [${backend}]`, (t) => {
  const key = readFileSync(written.deterministicKey).toString('hex');
  const pepper = readFileSync(join(written.keyDir, 'pepper.key')).toString('hex');
  const script = `
import hmac, hashlib, json, sys
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
d = json.load(sys.stdin)
siv = AESSIV(bytes.fromhex(d["key"]))
pepper = bytes.fromhex(d["pepper"])
n = 0
for v in d["values"]:
    pt = bytes.fromhex(v["plaintext"])
    assert siv.decrypt(bytes.fromhex(v["ciphertext"]), [v["context"].encode(), bytes(16)]) == pt, v["context"]
    term = hmac.new(pepper, pt + v["indexContext"].encode(), hashlib.sha256).digest()[:16]
    assert term.hex() == v["blindIndex"], v["indexContext"]
    n += 1
print(n)
`;
  const values = written.values.map((v) => ({
    context: v.context,
    indexContext: v.indexContext,
    plaintext: v.plaintext.toString('hex'),
    ciphertext: v.ciphertext.toString('hex'),
    blindIndex: v.blindIndex.toString('hex'),
  }));
  const out = execFileSync(process.env.SIFREDB_PYTHON || 'python3', ['-c', script], { input: JSON.stringify({ key, pepper, values }) });
  t.is(Number(out.toString()), written.values.length);
});

test(`contexts: "|" in a name is refused, no tenant is "default", versions are u32 [${backend}]`, async (t) => {
  t.is(rustContextString({ table: 'users', column: 'email' }), 'default|users|email|v1');
  t.is(rustContextString({ tenant: null, table: 't', column: 'c', version: 0 }), 'default|t|c|v0');
  t.is(rustContextString({ tenant: 'default', table: 't', column: 'c' }), rustContextString({ table: 't', column: 'c' }));
  t.is(rustIndexContextString({ tenant: 'ü', table: 't', column: 'c' }), 'ü|t|c');
  // tenant "a|b", table "c" and tenant "a", table "b|c" would be one string: both refused.
  for (const ctx of [
    { tenant: 'a|b', table: 'c', column: 'd' },
    { tenant: 'a', table: 'b|c', column: 'd' },
    { table: 't', column: 'c|v1' },
  ]) {
    code(t, () => rustContextString(ctx), 'ERR_SIFREDB_INPUT', /contains "\|"/);
    code(t, () => rustIndexContextString(ctx), 'ERR_SIFREDB_INPUT', /contains "\|"/);
  }
  for (const version of [-1, 1.5, 2 ** 32, '1']) {
    code(t, () => rustContextString({ table: 't', column: 'c', version }), 'ERR_SIFREDB_INPUT', /version/);
  }
  t.is(rustContextString({ table: 't', column: 'c', version: 2 ** 32 - 1 }), 'default|t|c|v4294967295');
  code(t, () => rustContextString({ table: 't\ud800', column: 'c' }), 'ERR_SIFREDB_INPUT', /lone surrogate/);
  code(t, () => rustContextString({ table: 5, column: 'c' }), 'ERR_SIFREDB_INPUT', /table must be a string/);
  const vault = await RustDeterministicVault.fromKeyFile(written.deterministicKey);
  code(t, () => vault.encrypt('x', { tenant: 'a|b', table: 'c', column: 'd' }), 'ERR_SIFREDB_INPUT');
  const dir = await RustKeyDirectory.open(written.keyDir);
  code(t, () => dir.blindIndex('x', { tenant: 'a', table: 'b|c', column: 'd' }), 'ERR_SIFREDB_INPUT');
});

test(`key files: hex form, sizes, permissions, missing pieces; errors never quote content [${backend}]`, async (t) => {
  const dir = join(written.dir, 'cases');
  cpSync(written.keyDir, dir, { recursive: true, verbatimSymlinks: true });
  const keyBytes = readFileSync(written.deterministicKey);
  const v = written.values[5];

  const hexKey = join(written.dir, 'hex.key');
  writeFileSync(hexKey, `${keyBytes.toString('hex')}\n`, { mode: 0o600 });
  const fromHex = await RustDeterministicVault.fromKeyFile(hexKey);
  t.true(fromHex.decrypt(v.ciphertext, contextOf(v)).equals(v.plaintext));

  const short = join(written.dir, 'short.key');
  writeFileSync(short, keyBytes.subarray(0, 63), { mode: 0o600 });
  const error = await codeAsync(t, () => RustDeterministicVault.fromKeyFile(short), 'ERR_SIFREDB_KEY', /64 bytes/);
  t.false(error.message.includes(keyBytes.subarray(0, 8).toString('hex')));
  const long = join(written.dir, 'long.key');
  writeFileSync(long, Buffer.alloc(4096, 1), { mode: 0o600 });
  await codeAsync(t, () => RustDeterministicVault.fromKeyFile(long), 'ERR_SIFREDB_KEY', /more than 130 bytes/);

  chmodSync(hexKey, 0o644);
  await codeAsync(t, () => RustDeterministicVault.fromKeyFile(hexKey), 'ERR_SIFREDB_KEY', /mode 0644/);
  t.truthy(await RustDeterministicVault.fromKeyFile(hexKey, { allowInsecurePermissions: true }));
  await codeAsync(t, () => RustDeterministicVault.fromKeyFile(join(written.dir, 'absent.key')), 'ERR_SIFREDB_KEY', /ENOENT/);

  chmodSync(join(dir, 'pepper.key'), 0o640);
  await codeAsync(t, () => RustKeyDirectory.open(dir), 'ERR_SIFREDB_KEY', /pepper\.key has mode 0640/);
  chmodSync(join(dir, 'pepper.key'), 0o600);
  rmSync(join(dir, 'pepper.key'));
  const noPepper = await RustKeyDirectory.open(dir);
  t.false(noPepper.hasPepper);
  code(t, () => noPepper.blindIndex('x', { table: 't', column: 'c' }), 'ERR_SIFREDB_KEY', /no pepper\.key/);
  writeFileSync(join(dir, 'kek_v3.key'), Buffer.alloc(31), { mode: 0o600 });
  await codeAsync(t, () => RustKeyDirectory.open(dir), 'ERR_SIFREDB_KEY', /kek_v3\.key is not a key of 32 bytes/);
  rmSync(join(dir, 'kek_v3.key'));
  rmSync(join(dir, 'current'));
  await codeAsync(t, () => RustKeyDirectory.open(dir), 'ERR_SIFREDB_KEY', /no `current` symlink/);
  symlinkSync('kek_v7.key', join(dir, 'current'));
  await codeAsync(t, () => RustKeyDirectory.open(dir), 'ERR_SIFREDB_KEY', /not in the directory/);
  await codeAsync(t, () => RustKeyDirectory.open(join(dir, 'absent')), 'ERR_SIFREDB_KEY', /cannot read/);
});
