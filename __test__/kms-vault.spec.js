// VaultTransitProvider against a local server that implements Vault's Transit HTTP API for the calls
// SifreDB makes (helpers/vault-transit.js: real AES-GCM, tokens, AppRole, namespaces, Vault's error
// bodies and status codes). No Vault binary can be installed here; the server counts the requests it
// answers per operation and key, which proves how many Vault calls each operation makes.
//
// An opt-in live test runs against a real Vault when VAULT_ADDR and VAULT_TOKEN are set; otherwise it
// is reported as skipped, with the reason in its title.
//
// Runs on both backends (SIFREDB_BACKEND=native / js). Serial: the tests share one server and read its
// request counters.
import test from 'ava';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  EncryptionContext,
  SifreDBError,
  SifreDBKmsError,
  TenantKeyRouter,
  Vault,
  VaultTransitAdapter,
  VaultTransitProvider,
} from '../dist/index.js';
import { startVaultTransit } from './helpers/vault-transit.js';

const EMAIL = new EncryptionContext({ table: 'users', column: 'email' });

let vault;
let dir;
let seq = 0;

test.before(async () => {
  vault = await startVaultTransit();
  dir = await mkdtemp(join(tmpdir(), 'sifredb-vault-'));
});

test.after.always(async () => {
  await vault?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function keyringPath(name = 'keyring') {
  seq += 1;
  return join(dir, `${name}-${seq}.json`);
}

/** A fresh derived Transit key on `server`; returns its name. */
function newKey(server = vault, options = {}) {
  seq += 1;
  const name = `app-${seq}`;
  server.createKey(name, options);
  return name;
}

/** Opens a provider on `server` (root token unless given); closed at the end of the test. */
async function open(t, options, server = vault) {
  const provider = await VaultTransitProvider.open({ address: server.address, token: server.rootToken, ...options });
  t.teardown(() => provider.close());
  return provider;
}

function chain(error) {
  const out = [];
  for (let e = error; e && out.length < 10; e = e.cause) out.push(e);
  return out;
}

const kmsCause = (error) => chain(error).find((e) => e instanceof SifreDBKmsError);

/** Calls the Vault admin API of the test server as an operator would. */
async function admin(server, method, path, body) {
  const response = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': server.rootToken, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!response.ok && response.status !== 204) throw new Error(`admin ${method} ${path}: ${response.status} ${await response.text()}`);
}

test.serial('first open: one datakey (and one key check); the file is 0600, format 2, and holds only the wrapped key', async (t) => {
  const name = newKey();
  const path = keyringPath();
  vault.resetCounts();
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path, keyringId: 'app-prod' });
  t.is(vault.count('datakey', name), 1);
  t.is(vault.count('read', name), 1, 'the key is checked to be derived before the first write');
  const key = Buffer.from(await provider.loadKey(1));
  t.is(key.length, 32);
  t.is(vault.count('decrypt'), 0, 'the data key came with datakey: no decrypt in this process');

  const text = await readFile(path, 'utf8');
  const doc = JSON.parse(text);
  t.is(doc.formatVersion, 2);
  t.is(doc.keyringId, 'app-prod');
  t.deepEqual(Object.keys(doc.versions[0].wraps[0]), ['provider', 'keyId', 'wrappedKey']);
  t.is(doc.versions[0].wraps[0].provider, 'vault-transit');
  t.is(doc.versions[0].wraps[0].keyId, `transit/keys/${name}`);
  t.regex(doc.versions[0].wraps[0].wrappedKey, /^vault:v1:/);
  for (const encoding of ['base64', 'base64url', 'hex']) t.false(text.includes(key.toString(encoding)));
  if (process.platform !== 'win32') t.is((await stat(path)).mode & 0o777, 0o600);
  t.regex(provider.description, new RegExp(`^vault-transit:${vault.address} transit/keys/${name} keyring file:`));
  t.is(provider.keyId, `transit/keys/${name}`);
});

test.serial('reopen: no Vault call at open, one decrypt per version per process, concurrent loads share it', async (t) => {
  const name = newKey();
  const path = keyringPath();
  const first = await open(t, { key: `transit/keys/${name}`, keyring: path });
  const original = Buffer.from(await first.loadKey(1));
  await first.rotate();
  const v2 = Buffer.from(await first.loadKey(2));

  vault.resetCounts();
  const second = await open(t, { key: `transit/keys/${name}`, keyring: path });
  t.is(vault.log.length, 0, 'opening an existing keyring calls no Vault API');
  const loaded = await Promise.all([1, 1, 1, 2, 2].map((v) => second.loadKey(v)));
  t.true(Buffer.from(loaded[0]).equals(original));
  t.true(Buffer.from(loaded[4]).equals(v2));
  t.is(vault.count('decrypt', name), 2, 'one decrypt per version, shared by concurrent loads');
  await Vault.open(second);
  const reader = await Vault.open(second);
  await reader.refresh();
  t.is(vault.count('decrypt', name), 2, 'further vaults and refreshes unwrap nothing');
  t.is(vault.log.length, 2);
  t.log(`Vault calls per process start with 2 versions (token auth): ${JSON.stringify(vault.log.map((r) => `${r.method} ${r.path}`))}`);

  await t.throwsAsync(VaultTransitProvider.open({ address: vault.address, token: vault.rootToken, key: `transit/keys/${name}`, keyring: keyringPath(), createIfMissing: false }), {
    code: 'ERR_SIFREDB_KEY',
    message: /does not exist/,
  });
  await t.throwsAsync(VaultTransitProvider.create({ address: vault.address, token: vault.rootToken, key: `transit/keys/${name}`, keyring: path }), {
    code: 'ERR_SIFREDB_KEY',
    message: /already exists/,
  });
  await t.throwsAsync(open(t, { key: `transit/keys/${name}`, keyring: path, keyringId: 'other' }), { code: 'ERR_SIFREDB_KEY', message: /keyringId/ });
});

test.serial('rotate: one datakey each; old versions stay readable; retire; a fresh process unwraps each version once', async (t) => {
  const name = newKey();
  const path = keyringPath();
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path });
  const writer = await Vault.open(provider);
  const stored = { 1: writer.encryptToString('v1@example.com', EMAIL) };
  vault.resetCounts();
  for (const version of [2, 3]) {
    t.is(await provider.rotate(), version);
    await writer.refresh();
    stored[version] = writer.encryptToString(`v${version}@example.com`, EMAIL);
  }
  t.is(vault.count('datakey', name), 2, 'a rotation is one datakey');
  t.is(vault.count('read', name), 0, 'the key check is made once per adapter');

  vault.resetCounts();
  const fresh = await open(t, { key: `transit/keys/${name}`, keyring: path });
  const reader = await Vault.open(fresh);
  t.is(vault.count('decrypt', name), 3);
  for (const [version, text] of Object.entries(stored)) t.is(reader.decryptToString(text, EMAIL), `v${version}@example.com`);
  await provider.retire(1);
  t.deepEqual((await fresh.listVersions()).map((v) => v.status), ['retired', 'active', 'active']);
  await t.throwsAsync(provider.retire(3), { code: 'ERR_SIFREDB_KEY', message: /current/ });
  t.is(vault.count('decrypt', name), 3);
});

test.serial('Vault key rotation + rewrap(): one rewrap per version, data readable after min_decryption_version is raised', async (t) => {
  const name = newKey();
  const path = keyringPath();
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path });
  await provider.rotate();
  const stored = (await Vault.open(provider)).encryptToString('kept', EMAIL);

  await admin(vault, 'POST', `transit/keys/${name}/rotate`);
  vault.resetCounts();
  const result = await provider.rewrap();
  t.is(vault.count('rewrap', name), 2);
  t.is(vault.count('decrypt', name), 0, 'rewrap happens inside Vault');
  t.is(result.versions, 2);
  const doc = JSON.parse(await readFile(path, 'utf8'));
  t.true(doc.versions.every((v) => v.wraps[0].wrappedKey.startsWith('vault:v2:')));

  // Old Transit key versions can now be retired in Vault.
  await admin(vault, 'POST', `transit/keys/${name}/config`, { min_decryption_version: 2 });
  const fresh = await open(t, { key: `transit/keys/${name}`, keyring: path });
  t.is((await Vault.open(fresh)).decryptToString(stored, EMAIL), 'kept');

  // A keyring left on the retired Transit version: a clear "disabled" refusal.
  const other = newKey();
  const stale = keyringPath();
  await open(t, { key: `transit/keys/${other}`, keyring: stale });
  await admin(vault, 'POST', `transit/keys/${other}/rotate`);
  await admin(vault, 'POST', `transit/keys/${other}/config`, { min_decryption_version: 2 });
  const blocked = await open(t, { key: `transit/keys/${other}`, keyring: stale });
  const error = await t.throwsAsync(blocked.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(error.reason, 'disabled');
  t.false(error.transient);
  t.is(error.httpStatusCode, 400);
  t.regex(error.message, /min_decryption_version/);

  // rewrap to another Transit key: decrypt (or the cache) + encrypt, then the old key can go.
  const moved = newKey();
  vault.resetCounts();
  const movedResult = await provider.rewrap(`transit/keys/${moved}`);
  t.is(movedResult.keyIds, `transit/keys/${moved}`);
  t.is(vault.count('encrypt', moved), 2);
  t.is(vault.count('decrypt', name), 0, 'both versions were loaded: no unwrap needed');
  t.is(provider.keyId, `transit/keys/${moved}`);
  const afterMove = await open(t, { key: `transit/keys/${moved}`, keyring: path });
  t.is((await Vault.open(afterMove)).decryptToString(stored, EMAIL), 'kept');
});

test.serial('wrong key: "wrapped under another key", and rotation is refused without writing', async (t) => {
  const right = newKey();
  const wrongName = newKey();
  const path = keyringPath();
  await open(t, { key: `transit/keys/${right}`, keyring: path });
  const before = await readFile(path, 'utf8');
  const wrong = await open(t, { key: `transit/keys/${wrongName}`, keyring: path });
  const error = await t.throwsAsync(wrong.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.true(error instanceof SifreDBKmsError);
  t.is(error.provider, 'vault-transit');
  t.is(error.reason, 'wrong-key');
  t.is(error.operation, 'decrypt');
  t.regex(error.message, new RegExp(`wrapped under Vault key transit/keys/${right}, not transit/keys/${wrongName}`));
  const vaultError = await t.throwsAsync(Vault.open(wrong));
  t.is(kmsCause(vaultError)?.reason, 'wrong-key');
  await t.throwsAsync(wrong.rotate(), { code: 'ERR_SIFREDB_KEY', message: /rewrap/ });
  t.is(await readFile(path, 'utf8'), before);

  // A key that does not exist.
  const missing = await t.throwsAsync(open(t, { key: 'transit/keys/no-such-key', keyring: keyringPath() }), { code: 'ERR_SIFREDB_KMS' });
  t.is(missing.reason, 'not-found');
  t.is(missing.httpStatusCode, 404);
  // A key that is not derived: Vault would ignore the context, so SifreDB refuses to write under it.
  const plain = newKey(vault, { derived: false });
  const notDerived = await t.throwsAsync(open(t, { key: `transit/keys/${plain}`, keyring: keyringPath() }), { code: 'ERR_SIFREDB_KMS' });
  t.regex(notDerived.message, /not a derived key.*derived=true.*associated_data/);
  // Bad options are input errors.
  await t.throwsAsync(open(t, { key: 'transit/app', keyring: keyringPath() }), { code: 'ERR_SIFREDB_INPUT', message: /<mount>\/keys\/<name>/ });
  await t.throwsAsync(VaultTransitProvider.open({ address: 'ftp://x', token: 't', key: 'transit/keys/a', keyring: keyringPath() }), { code: 'ERR_SIFREDB_INPUT' });
});

test.serial('binding "associated_data" on a non-derived key: local data key + encrypt; swapping versions fails', async (t) => {
  const name = newKey(vault, { derived: false });
  const path = keyringPath();
  vault.resetCounts();
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path, binding: 'associated_data' });
  t.is(vault.count('datakey', name), 0);
  t.is(vault.count('encrypt', name), 1);
  await provider.rotate();
  const keys = await Promise.all([1, 2].map(async (v) => Buffer.from(await provider.loadKey(v)).toString('hex')));
  const fresh = await open(t, { key: `transit/keys/${name}`, keyring: path, binding: 'associated_data' });
  t.deepEqual(await Promise.all([1, 2].map(async (v) => Buffer.from(await fresh.loadKey(v)).toString('hex'))), keys);
  // The associated data binds each wrap to its version.
  const doc = JSON.parse(await readFile(path, 'utf8'));
  [doc.versions[0].wraps[0].wrappedKey, doc.versions[1].wraps[0].wrappedKey] = [doc.versions[1].wraps[0].wrappedKey, doc.versions[0].wraps[0].wrappedKey];
  await writeFile(path, JSON.stringify(doc));
  const swapped = await open(t, { key: `transit/keys/${name}`, keyring: path, binding: 'associated_data' });
  const error = await t.throwsAsync(swapped.loadKey(1), { code: 'ERR_SIFREDB_KEY' });
  t.is(error.reason, 'invalid-ciphertext');
  // rewrap() with associated data: no Vault rewrap (it takes none); decrypt + encrypt instead.
  vault.resetCounts();
  await provider.rewrap();
  t.is(vault.count('rewrap', name), 0);
  t.is(vault.count('encrypt', name), 2);
});

test.serial('crypto-shredding: deleting tenant A\'s Transit key makes only A unreadable', async (t) => {
  const [keyA, keyB] = [newKey(), newKey()];
  const paths = { a: keyringPath('tenant-a'), b: keyringPath('tenant-b') };
  const router = async (cache) =>
    new TenantKeyRouter({
      tenants: {
        a: await open(t, { key: `transit/keys/${keyA}`, keyring: paths.a, keyringId: 'tenant-a', cache }),
        b: await open(t, { key: `transit/keys/${keyB}`, keyring: paths.b, keyringId: 'tenant-b', cache }),
      },
    });
  const ctxA = EMAIL.withTenant('a');
  const ctxB = EMAIL.withTenant('b');
  const writer = await Vault.open(await router());
  const storedA = writer.encryptToString('alice@a.example', ctxA);
  const storedB = writer.encryptToString('bob@b.example', ctxB);
  const longRunning = await Vault.open(await router({ maxKeyAgeMs: 1 }));

  await admin(vault, 'POST', `transit/keys/${keyA}/config`, { deletion_allowed: true });
  await admin(vault, 'DELETE', `transit/keys/${keyA}`);

  const reader = await Vault.open(await router());
  const error = t.throws(() => reader.decryptToString(storedA, ctxA), { code: 'ERR_SIFREDB_KEY' });
  t.regex(error.message, /tenant "a"/);
  t.is(kmsCause(error)?.reason, 'not-found');
  t.is(reader.decryptToString(storedB, ctxB), 'bob@b.example');
  t.is(reader.decryptToString(reader.encryptToString('new@b.example', ctxB), ctxB), 'new@b.example');

  t.is(longRunning.decryptToString(storedA, ctxA), 'alice@a.example');
  await new Promise((resolve) => setTimeout(resolve, 5));
  await longRunning.refresh();
  t.throws(() => longRunning.decryptToString(storedA, ctxA), { code: 'ERR_SIFREDB_KEY' });
  t.is(longRunning.decryptToString(storedB, ctxB), 'bob@b.example');
});

test.serial('Vault stopped after load: work goes on; a fresh open fails with a transient "unreachable" error', async (t) => {
  const local = await startVaultTransit();
  t.teardown(() => local.stop());
  const name = newKey(local);
  const path = keyringPath();
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path }, local);
  await provider.rotate();
  const running = await Vault.open(provider);
  const before = running.encryptToString('before', EMAIL);
  const shortLived = await open(t, { key: `transit/keys/${name}`, keyring: path, cache: { maxKeyAgeMs: 1 }, maxAttempts: 1 }, local);
  const shortVault = await Vault.open(shortLived);

  await local.stop();
  t.is(running.decryptToString(before, EMAIL), 'before');
  t.is(running.decryptToString(running.encryptToString('after', EMAIL), EMAIL), 'after');
  await running.refresh();
  await new Promise((resolve) => setTimeout(resolve, 5));
  await shortVault.refresh(); // past maxKeyAgeMs: Vault is down, the keys are kept
  t.is(shortVault.decryptToString(before, EMAIL), 'before');

  const fresh = await open(t, { key: `transit/keys/${name}`, keyring: path, requestTimeoutMs: 2000 }, local);
  const error = await t.throwsAsync(Vault.open(fresh), { code: 'ERR_SIFREDB_KEY' });
  const cause = kmsCause(error);
  t.truthy(cause);
  t.true(cause.transient);
  t.is(cause.reason, 'unreachable');
  t.is(cause.networkErrorCode, 'ECONNREFUSED');
  t.is(cause.attempts, 3, 'retried before giving up');
  t.regex(cause.message, new RegExp(`Vault unreachable at ${local.address.replace(/\./g, '\\.')} \\(ECONNREFUSED\\) after 3 attempts`));
  await t.throwsAsync(open(t, { key: `transit/keys/${name}`, keyring: keyringPath() }, local), { code: 'ERR_SIFREDB_KMS', message: /unreachable/ });

  await local.start();
  t.is((await Vault.open(fresh)).decryptToString(before, EMAIL), 'before', 'back up: the same provider loads');
});

test.serial('a Vault that accepts connections but never answers: a timeout, not a hang', async (t) => {
  const { createServer } = await import('node:net');
  const sockets = new Set();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const error = await t.throwsAsync(
    VaultTransitProvider.open({ address: `http://127.0.0.1:${silent.address().port}`, token: 'x', key: 'transit/keys/a', keyring: keyringPath(), requestTimeoutMs: 200, maxAttempts: 2 }),
    { code: 'ERR_SIFREDB_KMS' },
  );
  t.is(error.networkErrorCode, 'ETIMEDOUT');
  t.true(error.transient);
  t.is(error.attempts, 2);
});

test.serial('corrupted keyring: ERR_SIFREDB_KEY, no Vault call, the file is never overwritten', async (t) => {
  const name = newKey();
  const good = keyringPath();
  await open(t, { key: `transit/keys/${name}`, keyring: good });
  const valid = JSON.parse(await readFile(good, 'utf8'));
  const variant = (change) => {
    const doc = structuredClone(valid);
    change(doc);
    return JSON.stringify(doc);
  };
  const cases = {
    'not JSON': '{"type": "sifredb-kms-keyring", "formatVer',
    'empty file': '',
    'format 3': variant((d) => (d.formatVersion = 3)),
    'no wraps': variant((d) => (d.versions[0].wraps = [])),
    'bad provider': variant((d) => (d.versions[0].wraps[0].provider = 'Vault Transit')),
    'wrapped key with spaces': variant((d) => (d.versions[0].wraps[0].wrappedKey = 'vault:v1: x')),
    'twice the same key': variant((d) => d.versions[0].wraps.push({ ...d.versions[0].wraps[0] })),
    'format 1 shape in format 2': variant((d) => {
      d.versions[0].kmsKeyArn = 'x';
      delete d.versions[0].wraps;
    }),
  };
  vault.resetCounts();
  for (const [label, text] of Object.entries(cases)) {
    const path = keyringPath('corrupt');
    await writeFile(path, text, { mode: 0o600 });
    const error = await t.throwsAsync(open(t, { key: `transit/keys/${name}`, keyring: path }), { code: 'ERR_SIFREDB_KEY' }, label);
    t.regex(error.message, /corrupted/, label);
    t.is(await readFile(path, 'utf8'), text, `${label}: file unchanged`);
  }
  t.is(vault.log.length, 0, 'no Vault call for a corrupted keyring');

  // Valid JSON, a wrapped key altered: Vault refuses it → ERR_SIFREDB_KEY, file untouched.
  const path = keyringPath();
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path });
  await provider.rotate();
  const doc = JSON.parse(await readFile(path, 'utf8'));
  const wrap = doc.versions[0].wraps[0];
  const body = Buffer.from(wrap.wrappedKey.split(':')[2], 'base64');
  body[body.length - 1] ^= 1;
  wrap.wrappedKey = `vault:v1:${body.toString('base64')}`;
  // The context binds each wrap to its version: version 2 carrying version 1's wrap fails too.
  doc.versions[1].wraps[0].wrappedKey = JSON.parse(await readFile(path, 'utf8')).versions[0].wraps[0].wrappedKey;
  const tampered = JSON.stringify(doc);
  await writeFile(path, tampered);
  const reader = await open(t, { key: `transit/keys/${name}`, keyring: path });
  for (const version of [1, 2]) {
    const error = await t.throwsAsync(reader.loadKey(version), { code: 'ERR_SIFREDB_KEY' });
    t.is(error.reason, 'invalid-ciphertext');
    t.regex(error.message, /altered|binding/);
  }
  t.is(await readFile(path, 'utf8'), tampered);

  // Readable by others: refused unless allowed.
  if (process.platform !== 'win32') {
    await chmod(good, 0o644);
    await t.throwsAsync(open(t, { key: `transit/keys/${name}`, keyring: good }), { code: 'ERR_SIFREDB_KEY', message: /group or others/ });
  }
});

test.serial('429 and 5xx are retried (counted by the server), then reported as transient; 403 is not retried', async (t) => {
  const local = await startVaultTransit();
  t.teardown(() => local.stop());
  const name = newKey(local);
  const path = keyringPath();
  await open(t, { key: `transit/keys/${name}`, keyring: path }, local);

  local.resetCounts();
  local.inject(429, ['request path "transit/decrypt": rate limit quota exceeded'], 2, (op) => op === 'decrypt');
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path }, local);
  t.is((await provider.loadKey(1)).length, 32);
  t.is(local.count('decrypt', name), 3, 'two 429s, then the answer');

  local.resetCounts();
  local.inject(503, ['Vault is sealed'], 3, (op) => op === 'decrypt');
  const sealed = await open(t, { key: `transit/keys/${name}`, keyring: path }, local);
  const error = await t.throwsAsync(sealed.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(local.count('decrypt', name), 3);
  t.true(error.transient);
  t.is(error.reason, 'service');
  t.is(error.httpStatusCode, 503);
  t.is(error.attempts, 3);
  t.regex(error.message, /Vault-side error after 3 attempts; retry later \(HTTP 503: Vault is sealed\)/);

  local.resetCounts();
  local.inject(500, ['internal error'], 1, (op) => op === 'datakey');
  t.is(await provider.rotate(), 2, 'a 500 on datakey is retried');
  t.is(local.count('datakey', name), 2);

  local.resetCounts();
  const readOnly = local.addToken(['read:*']);
  const denied = await VaultTransitProvider.open({ address: local.address, token: readOnly, key: `transit/keys/${name}`, keyring: path });
  t.teardown(() => denied.close());
  const deniedError = await t.throwsAsync(denied.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(local.count('decrypt', name), 1, '403 is not retried');
  t.is(deniedError.reason, 'denied');
  t.false(deniedError.transient);
  t.regex(deniedError.message, new RegExp(`permission denied on transit/decrypt/${name}`));
});

test.serial('AppRole login: one login per provider, shared by concurrent calls, again when the token expires', async (t) => {
  const name = newKey();
  const path = keyringPath();
  await open(t, { key: `transit/keys/${name}`, keyring: path });
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path });
  await provider.rotate();
  await provider.rotate();
  const role = vault.addAppRole([`decrypt:${name}`], { ttlSeconds: 1 });

  vault.resetCounts();
  const reader = await VaultTransitProvider.open({ address: vault.address, appRole: role, key: `transit/keys/${name}`, keyring: path });
  t.teardown(() => reader.close());
  t.is(vault.log.length, 0, 'no login until a key is needed');
  await Vault.open(reader);
  t.is(vault.count('login', 'approle'), 1, 'one login for three parallel decrypts');
  t.is(vault.count('decrypt', name), 3);
  t.log(`Vault calls per process start with 3 versions (AppRole): ${vault.log.length}`);

  // The token expires (TTL 1 s): the next call logs in again.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  reader.forget();
  t.is((await reader.loadKey(1)).length, 32);
  t.is(vault.count('login', 'approle'), 2);

  // A token that Vault stops accepting (revoked) is replaced once: 403, login, the call again.
  vault.revokeLoginTokens();
  reader.forget();
  vault.resetCounts();
  t.is((await reader.loadKey(2)).length, 32);
  t.is(vault.count('login', 'approle'), 1);
  t.is(vault.count('decrypt', name), 2);

  // Wrong secret id: a credentials error that names no secret.
  const wrong = await VaultTransitProvider.open({
    address: vault.address,
    appRole: { roleId: role.roleId, secretId: 'not-the-secret' },
    key: `transit/keys/${name}`,
    keyring: path,
  });
  t.teardown(() => wrong.close());
  const error = await t.throwsAsync(wrong.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(error.operation, 'login');
  t.is(error.httpStatusCode, 400);
  t.false(error.message.includes('not-the-secret'));
  await t.throwsAsync(VaultTransitProvider.open({ address: vault.address, appRole: role, token: 'x', key: 'transit/keys/a', keyring: path }), {
    code: 'ERR_SIFREDB_INPUT',
    message: /not both/,
  });
});

test.serial('namespaces: X-Vault-Namespace selects the namespace; the keyring records it', async (t) => {
  seq += 1;
  const name = `ns-key-${seq}`;
  vault.createKey(name, { namespace: 'team-a' });
  const path = keyringPath();
  vault.resetCounts();
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path, namespace: 'team-a' });
  t.true(vault.log.every((r) => r.namespace === 'team-a'));
  t.is(JSON.parse(await readFile(path, 'utf8')).versions[0].wraps[0].keyId, `team-a/transit/keys/${name}`);
  t.is(provider.keyId, `team-a/transit/keys/${name}`);
  const reader = await open(t, { key: `transit/keys/${name}`, keyring: path, namespace: 'team-a' });
  t.is((await reader.loadKey(1)).length, 32);
  // Without the namespace the key is not there (and the wrap is another key's).
  const outside = await open(t, { key: `transit/keys/${name}`, keyring: path });
  await t.throwsAsync(outside.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
});

test.serial('errors never contain tokens, AppRole secrets, key bytes or wrapped keys', async (t) => {
  const local = await startVaultTransit();
  t.teardown(() => local.stop());
  const name = newKey(local);
  const path = keyringPath();
  const provider = await open(t, { key: `transit/keys/${name}`, keyring: path }, local);
  await provider.rotate();
  const keys = await Promise.all([1, 2].map(async (v) => Buffer.from(await provider.loadKey(v))));
  const doc = JSON.parse(await readFile(path, 'utf8'));
  const role = local.addAppRole([]);
  const token = local.addToken([]);

  const errors = [];
  const capture = async (promise) => errors.push(await t.throwsAsync(promise));
  const noRights = await open(t, { key: `transit/keys/${name}`, keyring: path, token }, local);
  await capture(noRights.loadKey(1));
  await capture(Vault.open(noRights));
  await capture(noRights.rotate());
  const byRole = await open(t, { key: `transit/keys/${name}`, keyring: path, token: undefined, appRole: role }, local);
  await capture(byRole.loadKey(2));
  const wrongKey = newKey(local);
  await capture((await open(t, { key: `transit/keys/${wrongKey}`, keyring: path }, local)).loadKey(1));
  local.inject(500, [`internal error near ${local.rootToken}`], 10);
  await capture((await open(t, { key: `transit/keys/${name}`, keyring: path, maxAttempts: 2 }, local)).loadKey(1));
  await local.stop();
  await capture((await open(t, { key: `transit/keys/${name}`, keyring: path, maxAttempts: 1 }, local)).loadKey(1));
  await capture(open(t, { key: `transit/keys/${name}`, keyring: keyringPath(), maxAttempts: 1 }, local));

  const forbidden = [
    local.rootToken,
    token,
    role.secretId,
    ...doc.versions.map((v) => v.wraps[0].wrappedKey),
    ...doc.versions.map((v) => v.wraps[0].wrappedKey.split(':')[2]),
    ...keys.flatMap((k) => [k.toString('base64'), k.toString('base64url'), k.toString('hex')]),
  ];
  for (const error of errors) {
    t.true(error instanceof SifreDBError);
    const rendered = [error.message, error.stack, inspect(error, { depth: Infinity, showHidden: true }), JSON.stringify(error), ...chain(error).map((e) => String(e.message))].join('\n');
    for (const secret of forbidden) t.false(rendered.includes(secret), `${error.message} leaks a secret`);
  }
  t.is(errors.length, 8);
  t.regex(errors[5].message, /\[redacted\]/, "a token echoed in Vault's message is redacted");
});

test.serial('VaultTransitAdapter on its own: wrap/unwrap round trip bound to the keyring id and version', async (t) => {
  const name = newKey();
  const adapter = new VaultTransitAdapter({ address: vault.address, token: vault.rootToken, key: `transit/keys/${name}` });
  const data = Buffer.alloc(32, 7);
  const wrapped = await adapter.wrap(data, { keyringId: 'k', version: 1 });
  t.deepEqual(Buffer.from(await adapter.unwrap(wrapped, { keyringId: 'k', version: 1 })), data);
  const other = await t.throwsAsync(adapter.unwrap(wrapped, { keyringId: 'other', version: 1 }), { code: 'ERR_SIFREDB_KEY' });
  t.is(other.reason, 'invalid-ciphertext');
  await t.throwsAsync(adapter.unwrap(wrapped, { keyringId: 'k', version: 2 }), { code: 'ERR_SIFREDB_KEY' });
});

const LIVE = Boolean(process.env.VAULT_ADDR && process.env.VAULT_TOKEN);
const LIVE_TITLE = 'live Vault Transit (VAULT_ADDR, VAULT_TOKEN; key from SIFREDB_LIVE_VAULT_KEY or a new derived key)';
if (!LIVE) {
  process.stderr.write(`\n[kms-vault.spec] SKIPPED "${LIVE_TITLE}": VAULT_ADDR and VAULT_TOKEN are not set\n`);
  test.skip(`${LIVE_TITLE} — SKIPPED: VAULT_ADDR and VAULT_TOKEN are not set`, () => {});
} else {
  test.serial(LIVE_TITLE, async (t) => {
    const address = process.env.VAULT_ADDR;
    const token = process.env.VAULT_TOKEN;
    let key = process.env.SIFREDB_LIVE_VAULT_KEY;
    if (!key) {
      // Needs a transit mount at transit/ and the right to create keys there.
      key = `transit/keys/sifredb-live-${Date.now()}`;
      const response = await fetch(`${address.replace(/\/$/, '')}/v1/${key}`, {
        method: 'POST',
        headers: { 'x-vault-token': token, 'content-type': 'application/json', ...(process.env.VAULT_NAMESPACE ? { 'x-vault-namespace': process.env.VAULT_NAMESPACE } : {}) },
        body: JSON.stringify({ derived: true }),
      });
      t.true(response.ok || response.status === 204, `creating ${key}: HTTP ${response.status}`);
    }
    t.log(`live Vault at ${new URL(address).host}, key ${key}`);
    const path = keyringPath('live');
    const provider = await VaultTransitProvider.open({ key, keyring: path });
    t.teardown(() => provider.close());
    const vaultA = await Vault.open(provider);
    const stored = vaultA.encryptToString('live', EMAIL);
    t.is(await provider.rotate(), 2);
    const fresh = await VaultTransitProvider.open({ key, keyring: path, preload: true });
    t.teardown(() => fresh.close());
    t.is((await Vault.open(fresh)).decryptToString(stored, EMAIL), 'live');
    t.is((await provider.rewrap()).versions, 2);
  });
}
