// AwsKmsProvider against a real KMS-compatible server: moto's server mode, started for this file on
// 127.0.0.1 with a free port (see helpers/moto.js). KMS keys are created, disabled and scheduled for
// deletion through the KMS API; nothing in the SDK is mocked. The client counts its requests per
// command, which proves how many KMS calls each operation makes.
//
// Runs on both backends (SIFREDB_BACKEND=native / js); fails, never skips, when moto cannot start.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import {
  AwsKmsProvider,
  EncryptionContext,
  SifreDBError,
  SifreDBKmsError,
  TenantKeyRouter,
  Vault,
  autoRefresh,
  getBackend,
} from '../dist/index.js';
import { countingKmsClient, startMoto, TEST_CREDENTIALS, TEST_REGION } from './helpers/moto.js';

const DIST_INDEX = new URL('../dist/index.js', import.meta.url).href;

/** Runs `node script args…` asynchronously; resolves with its exit code and output. */
function runNode(script, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let moto;
let admin;
let dir;
let seq = 0;

test.before(async () => {
  moto = await startMoto();
  admin = countingKmsClient(moto.endpoint);
  dir = await mkdtemp(join(tmpdir(), 'sifredb-kms-'));
});

test.after.always(async () => {
  admin?.destroy();
  await moto?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const EMAIL = new EncryptionContext({ table: 'users', column: 'email' });

/** A new symmetric KMS key; returns its id. */
async function createKey(client = admin, description = 'sifredb test') {
  const out = await client.send(new CreateKeyCommand({ Description: description }));
  return out.KeyMetadata.KeyId;
}

function keyringPath(name = 'keyring') {
  seq += 1;
  return join(dir, `${name}-${seq}.json`);
}

/** Opens a provider with its own counting client; closed at the end of the test. */
async function open(t, options, endpoint = moto.endpoint) {
  const client = countingKmsClient(endpoint);
  const provider = await AwsKmsProvider.open({ client, ...options });
  t.teardown(() => {
    provider.close();
    client.destroy();
  });
  return { provider, client };
}

/** Every SifreDB error a chain holds (error, cause, cause's cause…). */
function chain(error) {
  const out = [];
  for (let e = error; e && out.length < 10; e = e.cause) out.push(e);
  return out;
}

function kmsCause(error) {
  return chain(error).find((e) => e instanceof SifreDBKmsError);
}

test('first open creates version 1 with one GenerateDataKey; the file is 0600 and holds only the wrapped key', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  const { provider, client } = await open(t, { keyId, keyring: path, keyringId: 'app-prod' });
  t.deepEqual(client.calls, { GenerateDataKeyCommand: 1 });

  t.is(await provider.currentVersion(), 1);
  const versions = await provider.listVersions();
  t.is(versions.length, 1);
  t.is(versions[0].version, 1);
  t.is(versions[0].status, 'active');
  t.true(versions[0].createdAt instanceof Date);

  const key = Buffer.from(await provider.loadKey(1));
  t.is(key.length, 32);
  // The data key came with GenerateDataKey: no Decrypt needed in this process.
  t.deepEqual(client.calls, { GenerateDataKeyCommand: 1 });

  const text = await readFile(path, 'utf8');
  const doc = JSON.parse(text);
  t.is(doc.type, 'sifredb-kms-keyring');
  t.is(doc.keyringId, 'app-prod');
  t.is(doc.current, 1);
  t.is(doc.versions[0].kmsKeyArn, `arn:aws:kms:us-east-1:123456789012:key/${keyId}`);
  t.true(Buffer.from(doc.versions[0].wrappedKey, 'base64').length > 32);
  for (const encoding of ['base64', 'base64url', 'hex']) t.false(text.includes(key.toString(encoding)));
  if (process.platform !== 'win32') t.is((await stat(path)).mode & 0o777, 0o600);
  t.is(provider.keyringId, 'app-prod');
  t.regex(provider.description, /^aws-kms:/);
});

test('reopen reads the keyring: no GenerateDataKey, one Decrypt per version, the same key bytes', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  const first = await open(t, { keyId, keyring: path });
  const original = Buffer.from(await first.provider.loadKey(1));

  const second = await open(t, { keyId, keyring: path });
  t.deepEqual(second.client.calls, {}, 'opening an existing keyring calls no KMS API');
  const loaded = await Promise.all([1, 1, 1, 1].map((v) => second.provider.loadKey(v)));
  for (const bytes of loaded) t.true(Buffer.from(bytes).equals(original));
  t.deepEqual(second.client.calls, { DecryptCommand: 1 }, 'concurrent loads share one Decrypt');
  await second.provider.loadKey(1);
  t.deepEqual(second.client.calls, { DecryptCommand: 1 }, 'cached afterwards');

  // The returned buffer is a copy: zeroing it (as the Vault does) does not damage the cache.
  loaded[0].fill(0);
  t.true(Buffer.from(await second.provider.loadKey(1)).equals(original));
  // createIfMissing: false refuses to create; AwsKmsProvider.create refuses to overwrite.
  await t.throwsAsync(AwsKmsProvider.open({ keyId, keyring: keyringPath(), client: second.client, createIfMissing: false }), {
    code: 'ERR_SIFREDB_KEY',
    message: /does not exist/,
  });
  await t.throwsAsync(AwsKmsProvider.create({ keyId, keyring: path, client: second.client }), {
    code: 'ERR_SIFREDB_KEY',
    message: /already exists/,
  });
  // keyringId, when given, must match.
  await t.throwsAsync(AwsKmsProvider.open({ keyId, keyring: path, client: second.client, keyringId: 'other' }), {
    code: 'ERR_SIFREDB_KEY',
    message: /keyringId/,
  });
});

test('rotate: one GenerateDataKey each; old versions stay readable; a fresh process unwraps each version once', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  const { provider, client } = await open(t, { keyId, keyring: path });
  const vault = await Vault.open(provider);
  const stored = { 1: vault.encryptToString('v1@example.com', EMAIL) };

  client.resetCounts();
  t.is(await provider.rotate(), 2);
  t.deepEqual(client.calls, { GenerateDataKeyCommand: 1 }, 'a rotation is one GenerateDataKey (plus the keyring write)');
  await vault.refresh();
  stored[2] = vault.encryptToString('v2@example.com', EMAIL);
  t.is(await provider.rotate(), 3);
  await vault.refresh();
  stored[3] = vault.encryptToString('v3@example.com', EMAIL);
  t.deepEqual(client.calls, { GenerateDataKeyCommand: 2 });
  t.is(vault.currentVersion, 3);
  const versions = await provider.listVersions();
  t.deepEqual(versions.map((v) => [v.version, v.status]), [[1, 'active'], [2, 'active'], [3, 'active']]);

  // A "process start": a fresh provider and client on the same keyring.
  const fresh = await open(t, { keyId, keyring: path });
  const reader = await Vault.open(fresh.provider);
  t.deepEqual(fresh.client.calls, { DecryptCommand: 3 }, 'process start = one Decrypt per version');
  for (const [version, text] of Object.entries(stored)) {
    t.is(reader.decryptToString(text, EMAIL), `v${version}@example.com`);
  }
  t.log(`KMS calls per process start with 3 versions: ${JSON.stringify(fresh.client.calls)}; per rotation: GenerateDataKey 1`);

  // Refreshes and further vaults on the same provider do not unwrap again.
  await reader.refresh();
  await reader.refresh();
  await Vault.open(fresh.provider);
  t.deepEqual(fresh.client.calls, { DecryptCommand: 3 }, 'exactly one Decrypt per version per process');
  t.deepEqual(fresh.client.attempts, { DecryptCommand: 3 }, 'and no retried HTTP request');

  // retire(): still readable, no longer active; the current version cannot be retired.
  await provider.retire(1);
  t.deepEqual((await fresh.provider.listVersions()).map((v) => v.status), ['retired', 'active', 'active']);
  await reader.refresh();
  t.is(reader.decryptToString(stored[1], EMAIL), 'v1@example.com');
  await t.throwsAsync(provider.retire(3), { code: 'ERR_SIFREDB_KEY', message: /current/ });
});

test('loadKey copies are not Buffer-pool slices; forget() makes the next load unwrap again', async (t) => {
  const keyId = await createKey();
  const { provider, client } = await open(t, { keyId, keyring: keyringPath() });
  const pools = new Set([Buffer.from('x').buffer]);
  const first = await provider.loadKey(1);
  const second = await provider.loadKey(1); // from the cache
  pools.add(Buffer.from('x').buffer);
  for (const copy of [first, second]) {
    t.false(pools.has(copy.buffer), 'a data key was handed out in the shared Buffer pool');
    t.is(copy.buffer.byteLength, 32);
  }
  t.not(first.buffer, second.buffer);
  for (const pool of pools) t.is(Buffer.from(pool).indexOf(first), -1, 'a data key is readable from the pool');
  client.resetCounts();
  provider.forget(1);
  t.true(Buffer.from(await provider.loadKey(1)).equals(Buffer.from(first)), 'forget() leaves handed-out copies alone');
  t.deepEqual(client.calls, { DecryptCommand: 1 });
  provider.close();
  await t.throwsAsync(provider.loadKey(1), { code: 'ERR_SIFREDB_KEY', message: /closed/ });
});

test('cache.keepPlaintextKeys: false keeps no data key after handing it over; every load unwraps with KMS', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  await t.throwsAsync(open(t, { keyId, keyring: path, cache: { keepPlaintextKeys: 'no' } }), { code: 'ERR_SIFREDB_INPUT' });
  const { provider, client } = await open(t, { keyId, keyring: path, cache: { keepPlaintextKeys: false } });
  t.deepEqual(client.calls, { GenerateDataKeyCommand: 1 });
  const vault = await Vault.open(provider);
  const v1 = vault.encryptToString('one@example.com', EMAIL);
  t.deepEqual(client.calls, { GenerateDataKeyCommand: 1, DecryptCommand: 1 }, 'the key made at creation was not kept');

  const [a, b] = await Promise.all([provider.loadKey(1), provider.loadKey(1)]);
  t.true(Buffer.from(a).equals(Buffer.from(b)));
  t.not(a.buffer, b.buffer);
  t.is(client.calls.DecryptCommand, 3, 'no cache: each load is one Decrypt');

  t.is(await provider.rotate(), 2);
  await vault.refresh();
  t.is(vault.currentVersion, 2);
  const v2 = vault.encryptToString('two@example.com', EMAIL);
  t.is(client.calls.GenerateDataKeyCommand, 2);
  t.true(client.calls.DecryptCommand >= 4, 'the rotated key was not kept either: the refresh unwrapped it');
  t.is(vault.decryptToString(v1, EMAIL), 'one@example.com');
  t.is(vault.decryptToString(v2, EMAIL), 'two@example.com');

  // A default provider on the same keyring reads the same keys.
  const other = await open(t, { keyId, keyring: path });
  const reader = await Vault.open(other.provider);
  t.is(reader.decryptToString(v2, EMAIL), 'two@example.com');
});

test('preload: true unwraps every version in parallel at open', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  const { provider } = await open(t, { keyId, keyring: path });
  await provider.rotate();
  await provider.rotate();
  const { client } = await open(t, { keyId, keyring: path, preload: true });
  t.deepEqual(client.calls, { DecryptCommand: 3 });
});

test('an alias works as keyId; the keyring records the key ARN', async (t) => {
  const keyId = await createKey();
  const alias = `alias/sifredb-test-${seq + 1}`;
  await admin.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
  const path = keyringPath();
  await open(t, { keyId: alias, keyring: path });
  const doc = JSON.parse(await readFile(path, 'utf8'));
  t.regex(doc.versions[0].kmsKeyArn, new RegExp(`:key/${keyId}$`));
  const again = await open(t, { keyId: alias, keyring: path });
  t.is((await again.provider.loadKey(1)).length, 32);
});

test('wrong or unknown KMS key: clear ERR_SIFREDB_KMS errors with the AWS error name', async (t) => {
  const keyA = await createKey();
  const keyB = await createKey();
  const path = keyringPath();
  await open(t, { keyId: keyA, keyring: path });

  // The keyring is wrapped under A; the configuration names B.
  const wrong = await open(t, { keyId: keyB, keyring: path });
  const error = await t.throwsAsync(wrong.provider.loadKey(1));
  t.true(error instanceof SifreDBKmsError);
  t.true(error instanceof SifreDBError);
  t.is(error.code, 'ERR_SIFREDB_KMS');
  t.is(error.operation, 'Decrypt');
  // AWS answers IncorrectKeyException; moto AccessDeniedException.
  t.true(['IncorrectKeyException', 'AccessDeniedException'].includes(error.awsErrorName), error.awsErrorName);
  t.regex(error.message, /another KMS key/);
  t.regex(error.message, new RegExp(keyB));
  // Through a Vault: open fails and names the provider, with the KMS error as cause.
  const vaultError = await t.throwsAsync(Vault.open(wrong.provider));
  t.regex(vaultError.message, /another KMS key/);
  t.truthy(kmsCause(vaultError));
  // Rotation under B is refused too: it would mix two KMS keys in one keyring.
  await t.throwsAsync(wrong.provider.rotate(), { code: 'ERR_SIFREDB_KEY', message: /rewrap/ });
  t.is(JSON.parse(await readFile(path, 'utf8')).versions.length, 1);

  // A key that does not exist.
  const missing = '11111111-2222-3333-4444-555555555555';
  const notFound = await t.throwsAsync(
    AwsKmsProvider.open({ keyId: missing, keyring: keyringPath(), client: wrong.client }),
  );
  t.is(notFound.code, 'ERR_SIFREDB_KMS');
  t.is(notFound.awsErrorName, 'NotFoundException');
  t.is(notFound.operation, 'GenerateDataKey');
  t.regex(notFound.message, /not found/);
});

test('disabled KMS key: DisabledException, an outage until it is re-enabled', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  const { provider: writer } = await open(t, { keyId, keyring: path });
  const vault = await Vault.open(writer);
  const stored = vault.encryptToString('kept@example.com', EMAIL);
  await admin.send(new DisableKeyCommand({ KeyId: keyId }));

  // Keys already loaded keep working in this process.
  t.is(vault.decryptToString(stored, EMAIL), 'kept@example.com');

  const { provider } = await open(t, { keyId, keyring: path });
  const error = await t.throwsAsync(provider.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(error.awsErrorName, 'DisabledException');
  t.is(error.httpStatusCode, 409);
  t.false(error.transient);
  t.regex(error.message, /disabled/);
  const vaultError = await t.throwsAsync(Vault.open(provider));
  t.regex(vaultError.message, /DisabledException/);
  t.is(kmsCause(vaultError)?.awsErrorName, 'DisabledException');
  await t.throwsAsync(writer.rotate(), { code: 'ERR_SIFREDB_KMS', message: /disabled/ });

  await admin.send(new EnableKeyCommand({ KeyId: keyId }));
  const reader = await Vault.open(provider);
  t.is(reader.decryptToString(stored, EMAIL), 'kept@example.com');
});

test('KMS server stopped after load: loaded keys keep working, a fresh open fails with "KMS unreachable"', async (t) => {
  // A server of its own: stopping the file's shared server would break the other tests.
  const local = await startMoto();
  t.teardown(() => local.stop());
  const localAdmin = countingKmsClient(local.endpoint);
  t.teardown(() => localAdmin.destroy());
  const keyId = await createKey(localAdmin);
  const path = keyringPath();
  const { provider } = await open(t, { keyId, keyring: path }, local.endpoint);
  await provider.rotate();
  const vault = await Vault.open(provider);
  const before = vault.encryptToString('before@example.com', EMAIL);
  // A provider whose cache expires at once: its refreshes call KMS.
  const { provider: shortLived } = await open(t, { keyId, keyring: path, cache: { maxKeyAgeMs: 1 } }, local.endpoint);
  const shortVault = await Vault.open(shortLived);

  await local.stop();

  t.is(vault.decryptToString(before, EMAIL), 'before@example.com');
  const after = vault.encryptToString('after@example.com', EMAIL);
  t.is(vault.decryptToString(after, EMAIL), 'after@example.com');
  await vault.refresh(); // served from the provider's cache: no KMS call
  t.is(vault.decryptToString(after, EMAIL), 'after@example.com');
  // Past maxKeyAgeMs, a KMS outage does not drop the keys either: the refresh keeps them.
  await new Promise((resolve) => setTimeout(resolve, 5));
  await shortVault.refresh();
  t.is(shortVault.decryptToString(after, EMAIL), 'after@example.com');

  // A fresh process: the keyring file opens (no KMS call), but unwrapping fails clearly.
  const fresh = await open(t, { keyId, keyring: path }, local.endpoint);
  const error = await t.throwsAsync(fresh.provider.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.regex(error.message, /KMS unreachable at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  t.is(error.networkErrorCode, 'ECONNREFUSED');
  t.is(error.awsErrorName, undefined);
  t.true(error.transient);
  t.is(error.attempts, 2);
  const vaultError = await t.throwsAsync(Vault.open(fresh.provider));
  t.regex(vaultError.message, /KMS unreachable/);
  t.is(kmsCause(vaultError)?.code, 'ERR_SIFREDB_KMS');
  // preload: true fails at open; creating a keyring needs KMS too.
  await t.throwsAsync(
    AwsKmsProvider.open({ keyId, keyring: path, client: fresh.client, preload: true }),
    { code: 'ERR_SIFREDB_KMS', message: /unreachable/ },
  );
  await t.throwsAsync(
    AwsKmsProvider.open({ keyId, keyring: keyringPath(), client: fresh.client }),
    { code: 'ERR_SIFREDB_KMS', message: /GenerateDataKey failed .*unreachable/ },
  );
});

test('corrupted keyring: ERR_SIFREDB_KEY, and the file is never overwritten', async (t) => {
  const keyId = await createKey();
  const { client } = await open(t, { keyId, keyring: keyringPath() });
  const cases = {
    'not JSON': '{"type": "sifredb-kms-keyring", "formatVer',
    'empty file': '',
    'wrong type': JSON.stringify({ type: 'something-else' }),
    'no versions': JSON.stringify({ type: 'sifredb-kms-keyring', formatVersion: 1, keyringId: 'x', revision: 1, current: 1, versions: [] }),
  };
  for (const [name, text] of Object.entries(cases)) {
    const path = keyringPath('corrupt');
    await writeFile(path, text, { mode: 0o600 });
    const error = await t.throwsAsync(AwsKmsProvider.open({ keyId, keyring: path, client }), { code: 'ERR_SIFREDB_KEY' }, name);
    t.regex(error.message, /corrupted/, name);
    t.is(await readFile(path, 'utf8'), text, `${name}: file unchanged`);
  }
  t.deepEqual(Object.keys(client.calls), ['GenerateDataKeyCommand'], 'no KMS call for a corrupted keyring');

  // Corrupted, or deleted, under a running provider: rotate and refresh fail; nothing is rewritten.
  const live = keyringPath();
  const running = await open(t, { keyId, keyring: live });
  const vault = await Vault.open(running.provider);
  const garbage = '{"truncated":';
  await writeFile(live, garbage);
  await t.throwsAsync(running.provider.rotate(), { code: 'ERR_SIFREDB_KEY', message: /corrupted/ });
  await t.throwsAsync(vault.refresh(), { code: 'ERR_SIFREDB_KEY', message: /corrupted/ });
  t.is(await readFile(live, 'utf8'), garbage);
  t.is(vault.decryptToString(vault.encryptToString('still', EMAIL), EMAIL), 'still', 'loaded keys keep working');
  await rm(live);
  await t.throwsAsync(running.provider.rotate(), { code: 'ERR_SIFREDB_KEY', message: /has disappeared; restore it from a backup/ });
  await t.throwsAsync(stat(live), { code: 'ENOENT' }, 'a lost keyring is never silently recreated');

  // Valid JSON, but a wrapped key altered: KMS refuses it (InvalidCiphertextException) → ERR_SIFREDB_KEY.
  const path = keyringPath();
  const { provider } = await open(t, { keyId, keyring: path });
  await provider.rotate();
  const doc = JSON.parse(await readFile(path, 'utf8'));
  const blob = Buffer.from(doc.versions[0].wrappedKey, 'base64');
  blob[blob.length - 1] ^= 1;
  doc.versions[0].wrappedKey = blob.toString('base64');
  // The encryption context binds each wrapped key to its version: swapping them fails too.
  [doc.versions[1].wrappedKey] = [JSON.parse(await readFile(path, 'utf8')).versions[0].wrappedKey];
  const tampered = JSON.stringify(doc);
  await writeFile(path, tampered);
  const reader = await open(t, { keyId, keyring: path });
  for (const version of [1, 2]) {
    const error = await t.throwsAsync(reader.provider.loadKey(version), { code: 'ERR_SIFREDB_KEY' });
    t.is(error.awsErrorName, 'InvalidCiphertextException');
    t.regex(error.message, /altered|encryption context/);
  }
  t.is(await readFile(path, 'utf8'), tampered);
});

test('a keyring file readable by group or others is refused unless allowed', async (t) => {
  if (process.platform === 'win32') return t.pass();
  const keyId = await createKey();
  const path = keyringPath();
  const { client } = await open(t, { keyId, keyring: path });
  await chmod(path, 0o644);
  await t.throwsAsync(AwsKmsProvider.open({ keyId, keyring: path, client }), {
    code: 'ERR_SIFREDB_KEY',
    message: /has mode 0644: group or others can access it/,
  });
  const { provider } = await open(t, { keyId, keyring: path, allowInsecurePermissions: true });
  t.is(await provider.currentVersion(), 1);
  // A write (rotation) replaces it with a 0600 file.
  await provider.rotate();
  t.is((await stat(path)).mode & 0o777, 0o600);
});

test('rewrap under a new KMS key: one ReEncrypt per version, field data untouched and readable', async (t) => {
  const oldKey = await createKey();
  const newKey = await createKey();
  const path = keyringPath();
  const { provider, client } = await open(t, { keyId: oldKey, keyring: path });
  await provider.rotate();
  const vault = await Vault.open(provider);
  const v2 = vault.encryptToString('two@example.com', EMAIL);
  const v1 = (await Vault.open(await AwsKmsProvider.open({ keyId: oldKey, keyring: path, client })))
    .encrypt('one', EMAIL);

  client.resetCounts();
  const result = await provider.rewrap(newKey);
  t.deepEqual(client.calls, { ReEncryptCommand: 2 });
  t.is(result.versions, 2);
  t.regex(result.kmsKeyArn, new RegExp(`:key/${newKey}$`));
  t.is(provider.keyId, newKey);
  const doc = JSON.parse(await readFile(path, 'utf8'));
  t.true(doc.versions.every((v) => v.kmsKeyArn === result.kmsKeyArn));

  // The old KMS key can go: the data is readable with the new one alone.
  await admin.send(new DisableKeyCommand({ KeyId: oldKey }));
  const fresh = await open(t, { keyId: newKey, keyring: path });
  const reader = await Vault.open(fresh.provider);
  t.is(reader.decryptToString(v2, EMAIL), 'two@example.com');
  t.is(reader.decryptToString(v1, EMAIL), 'one');
  t.deepEqual(fresh.client.calls, { DecryptCommand: 2 });
  // Rotation after the rewrap uses the new key.
  t.is(await provider.rotate(), 3);
  t.regex(JSON.parse(await readFile(path, 'utf8')).versions[2].kmsKeyArn, new RegExp(`:key/${newKey}$`));
  // The old key configured: a clear error.
  const stale = await open(t, { keyId: oldKey, keyring: path });
  await t.throwsAsync(stale.provider.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
});

test('per-tenant KMS keys and crypto-shredding: deleting tenant A\'s key makes only A unreadable', async (t) => {
  const [keyA, keyB, keyDefault] = await Promise.all([createKey(), createKey(), createKey()]);
  const paths = { a: keyringPath('tenant-a'), b: keyringPath('tenant-b'), default: keyringPath('default') };
  const providers = async (cache) => {
    const [a, b, fallback] = await Promise.all([
      open(t, { keyId: keyA, keyring: paths.a, keyringId: 'tenant-a', cache }),
      open(t, { keyId: keyB, keyring: paths.b, keyringId: 'tenant-b', cache }),
      open(t, { keyId: keyDefault, keyring: paths.default, keyringId: 'default', cache }),
    ]);
    return new TenantKeyRouter({ tenants: { a: a.provider, b: b.provider }, default: fallback.provider });
  };
  const ctxA = EMAIL.withTenant('a');
  const ctxB = EMAIL.withTenant('b');
  const ctxC = EMAIL.withTenant('c'); // no key of its own: the default provider's

  const writer = await Vault.open(await providers());
  const stored = {
    a: writer.encryptToString('alice@a.example', ctxA),
    b: writer.encryptToString('bob@b.example', ctxB),
    c: writer.encryptToString('carol@c.example', ctxC),
    none: writer.encryptToString('nobody@example.com', EMAIL),
  };
  // Each tenant's data is under its own key: A's value does not open as B's.
  t.throws(() => writer.decrypt(stored.a, ctxB), { code: 'ERR_SIFREDB_AUTH' });

  // A long-running process whose cached keys expire quickly, opened before the shredding.
  const longRunning = await Vault.open(await providers({ maxKeyAgeMs: 1 }));

  // Crypto-shredding of tenant A: schedule its KMS key for deletion (disabling works the same way).
  await admin.send(new ScheduleKeyDeletionCommand({ KeyId: keyA, PendingWindowInDays: 7 }));

  // A fresh Vault.open cannot read A's data …
  const reader = await Vault.open(await providers());
  const error = t.throws(() => reader.decryptToString(stored.a, ctxA), { code: 'ERR_SIFREDB_KEY' });
  t.regex(error.message, /tenant "a"/);
  const cause = kmsCause(error);
  t.is(cause?.awsErrorName, 'KMSInvalidStateException');
  t.regex(cause.message, /pending deletion/);
  t.throws(() => reader.encryptToString('new@a.example', ctxA), { code: 'ERR_SIFREDB_KEY' });
  // … while every other tenant, and the default, still decrypt and encrypt.
  t.is(reader.decryptToString(stored.b, ctxB), 'bob@b.example');
  t.is(reader.decryptToString(stored.c, ctxC), 'carol@c.example');
  t.is(reader.decryptToString(stored.none, EMAIL), 'nobody@example.com');
  t.is(reader.decryptToString(reader.encryptToString('new@b.example', ctxB), ctxB), 'new@b.example');

  // A running process loses A at its next refresh past maxKeyAgeMs; B stays.
  t.is(longRunning.decryptToString(stored.a, ctxA), 'alice@a.example');
  await new Promise((resolve) => setTimeout(resolve, 5));
  await longRunning.refresh();
  t.throws(() => longRunning.decryptToString(stored.a, ctxA), { code: 'ERR_SIFREDB_KEY' });
  t.is(longRunning.decryptToString(stored.b, ctxB), 'bob@b.example');

  // Disabling tenant B's key shreds B the same way (until re-enabled), leaving the default alone.
  await admin.send(new DisableKeyCommand({ KeyId: keyB }));
  const third = await Vault.open(await providers());
  const errorB = t.throws(() => third.decryptToString(stored.b, ctxB), { code: 'ERR_SIFREDB_KEY' });
  t.is(kmsCause(errorB)?.awsErrorName, 'DisabledException');
  t.is(third.decryptToString(stored.c, ctxC), 'carol@c.example');
});

test('a custom KeyringStore: compare-and-swap keeps concurrent rotations from losing a version', async (t) => {
  const keyId = await createKey();
  let stored;
  let writes = 0;
  const store = {
    description: 'memory:test',
    async read() {
      return stored === undefined ? undefined : structuredClone(stored);
    },
    async write(doc, previous) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if ((stored?.revision ?? 0) !== (previous?.revision ?? 0)) throw new Error('conflict');
      writes += 1;
      stored = structuredClone(doc);
    },
  };
  const one = await open(t, { keyId, keyring: store });
  const two = await open(t, { keyId, keyring: store });
  const versions = await Promise.all([one.provider.rotate(), two.provider.rotate(), one.provider.rotate()]);
  t.deepEqual([...versions].sort(), [2, 3, 4]);
  t.deepEqual(stored.versions.map((v) => v.version), [1, 2, 3, 4]);
  t.is(stored.revision, 4);
  t.is(writes, 4);
  t.is(one.provider.description, 'aws-kms:' + keyId + ' keyring memory:test');
  // Both providers read every version, each with its own Decrypts.
  const a = await Promise.all([1, 2, 3, 4].map((v) => one.provider.loadKey(v).then((k) => Buffer.from(k).toString('hex'))));
  const b = await Promise.all([1, 2, 3, 4].map((v) => two.provider.loadKey(v).then((k) => Buffer.from(k).toString('hex'))));
  t.deepEqual(a, b);
  t.is(new Set(a).size, 4);

  // A store returning garbage is a keyring problem.
  const bad = { read: async () => ({ type: 'nope' }), write: async () => t.fail('must not write') };
  await t.throwsAsync(AwsKmsProvider.open({ keyId, keyring: bad, client: one.client }), { code: 'ERR_SIFREDB_KEY' });
});

test('concurrent rotations of one keyring file from separate providers and processes: no version lost', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  await open(t, { keyId, keyring: path });
  // Each child waits for a common start time, rotates twice and reports each version with the key
  // its provider then serves for it (the one it would encrypt with).
  const script = join(dir, `rotate-${seq}.mjs`);
  await writeFile(
    script,
    `import { AwsKmsProvider } from ${JSON.stringify(DIST_INDEX)};
const [, , keyring, keyId, endpoint, start] = process.argv;
const provider = await AwsKmsProvider.open({
  keyId, keyring, region: ${JSON.stringify(TEST_REGION)},
  clientConfig: { endpoint, credentials: ${JSON.stringify(TEST_CREDENTIALS)} },
});
await new Promise((r) => setTimeout(r, Math.max(0, Number(start) - Date.now())));
const out = [];
for (let i = 0; i < 2; i++) {
  const version = await provider.rotate();
  out.push([version, Buffer.from(await provider.loadKey(version)).toString('hex')]);
}
provider.close();
console.log(JSON.stringify(out));`,
  );
  const instances = await Promise.all(Array.from({ length: 5 }, () => open(t, { keyId, keyring: path })));
  const start = Date.now() + 1500;
  const children = Array.from({ length: 3 }, () => runNode(script, [path, keyId, moto.endpoint, String(start)]));
  await new Promise((r) => setTimeout(r, start - Date.now()));
  const reported = await Promise.all(
    instances.map(async ({ provider }) => {
      const version = await provider.rotate();
      return [version, Buffer.from(await provider.loadKey(version)).toString('hex')];
    }),
  );
  for (const result of await Promise.all(children)) {
    t.is(result.code, 0, result.stderr);
    reported.push(...JSON.parse(result.stdout));
  }
  const total = 5 + 3 * 2;
  t.deepEqual(
    reported.map(([v]) => v).sort((a, b) => a - b),
    Array.from({ length: total }, (_, i) => i + 2),
    'every rotation got its own version',
  );
  const stored = JSON.parse(await readFile(path, 'utf8'));
  t.deepEqual(stored.versions.map((v) => v.version), Array.from({ length: total + 1 }, (_, i) => i + 1));
  t.is(stored.current, total + 1);
  // A fresh provider unwraps every version from the file: each is the key its rotator is using.
  const fresh = await open(t, { keyId, keyring: path });
  for (const [version, key] of reported) {
    t.is(Buffer.from(await fresh.provider.loadKey(version)).toString('hex'), key, `version ${version} loads back identically`);
  }
  t.false((await readdir(dir)).some((f) => f.endsWith('.lock') || f.endsWith('.tmp')), 'no lock or temp file left');
});

test('two processes creating the same keyring at once end up with one keyring', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  const [one, two] = await Promise.all([open(t, { keyId, keyring: path }), open(t, { keyId, keyring: path })]);
  const [k1, k2] = await Promise.all([one.provider.loadKey(1), two.provider.loadKey(1)]);
  t.true(Buffer.from(k1).equals(Buffer.from(k2)));
  t.is(JSON.parse(await readFile(path, 'utf8')).revision, 1);
});

test('errors never contain key bytes or credentials', async (t) => {
  const secrets = {
    accessKeyId: 'AKIASIFREDBTESTONLY1',
    secretAccessKey: 'sifredb-test-secret-access-key-do-not-print',
    sessionToken: 'sifredb-test-session-token-do-not-print',
  };
  const client = countingKmsClient(moto.endpoint, { credentials: { ...secrets } });
  t.teardown(() => client.destroy());
  const keyId = await createKey(client);
  const other = await createKey(client);
  const path = keyringPath();
  const provider = await AwsKmsProvider.open({ keyId, keyring: path, client });
  t.teardown(() => provider.close());
  await provider.rotate();
  const keys = await Promise.all([1, 2].map(async (v) => Buffer.from(await provider.loadKey(v))));

  const errors = [];
  const capture = async (promise) => errors.push(await t.throwsAsync(promise));
  const wrong = await AwsKmsProvider.open({ keyId: other, keyring: path, client });
  await capture(wrong.loadKey(2));
  await capture(Vault.open(wrong));
  await capture(wrong.rewrap('alias/sifredb-missing'));
  await admin.send(new DisableKeyCommand({ KeyId: keyId }));
  const disabled = await AwsKmsProvider.open({ keyId, keyring: path, client });
  await capture(disabled.loadKey(1));
  await capture(provider.rotate());
  const dead = countingKmsClient('http://127.0.0.1:9', { credentials: { ...secrets }, maxAttempts: 1 });
  t.teardown(() => dead.destroy());
  await capture(AwsKmsProvider.open({ keyId, keyring: path, client: dead, preload: true }));
  await capture(AwsKmsProvider.open({ keyId: 'alias/none', keyring: keyringPath(), client }));

  const forbidden = [
    ...Object.values(secrets),
    ...keys.flatMap((k) => [k.toString('base64'), k.toString('base64url'), k.toString('hex')]),
  ];
  for (const error of errors) {
    const rendered = [
      error.message,
      error.stack,
      inspect(error, { depth: Infinity, showHidden: true }),
      JSON.stringify(error),
      ...chain(error).map((e) => String(e.message)),
    ].join('\n');
    for (const secret of forbidden) t.false(rendered.includes(secret), `${error.message} leaks a secret`);
  }
  t.is(errors.length, 7);
});

test('without @aws-sdk/client-kms installed: a clear ERR_SIFREDB_INPUT naming the package', (t) => {
  // A child process whose module resolution cannot find the AWS SDK, as in an app that did not install it.
  const hook = `data:text/javascript,${encodeURIComponent(
    'export async function resolve(s, c, next) { if (s.startsWith("@aws-sdk/")) { const e = new Error("Cannot find package " + s); e.code = "ERR_MODULE_NOT_FOUND"; throw e; } return next(s, c); }',
  )}`;
  const script = `
    import { register } from 'node:module';
    register(${JSON.stringify(hook)});
    const sifredb = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
    try {
      await sifredb.AwsKmsProvider.open({ keyId: 'alias/x', keyring: 'unused.json' });
      console.log('no error');
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, message: error.message }));
    }
  `;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('.', import.meta.url)),
  });
  t.is(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout.trim().split('\n').pop());
  t.is(out.code, 'ERR_SIFREDB_INPUT');
  t.regex(out.message, /npm install @aws-sdk\/client-kms/);
});

test('backend round trip with the raw KeyProvider bytes matches the Vault', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  const { provider } = await open(t, { keyId, keyring: path });
  const vault = await Vault.open(provider);
  const stored = vault.encrypt('raw', EMAIL);
  const fresh = await open(t, { keyId, keyring: path });
  const root = getBackend().importRootKey(1, await fresh.provider.loadKey(1));
  const plain = root.randomizedCipher(1, EMAIL.bytes).decrypt(stored);
  t.is(plain.subarray(1).toString('utf8'), 'raw');
});

test('a KMS endpoint that accepts connections but never answers: "KMS unreachable (ETIMEDOUT)", no hang', async (t) => {
  const sockets = new Set();
  const silent = createNetServer((socket) => sockets.add(socket));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const error = await t.throwsAsync(
    AwsKmsProvider.open({
      keyId: 'alias/any',
      keyring: keyringPath(),
      region: 'us-east-1',
      clientConfig: {
        endpoint: `http://127.0.0.1:${silent.address().port}`,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        maxAttempts: 2,
        requestHandler: { connectionTimeout: 300, requestTimeout: 300, throwOnRequestTimeout: true },
      },
    }),
    { code: 'ERR_SIFREDB_KMS' },
  );
  t.regex(error.message, /KMS unreachable at http:\/\/127\.0\.0\.1:\d+ \(ETIMEDOUT\) after 2 attempts/);
  t.is(error.networkErrorCode, 'ETIMEDOUT');
});

test('the provider can make its own KMSClient from region and clientConfig', async (t) => {
  const keyId = await createKey();
  const path = keyringPath();
  const options = {
    keyId,
    keyring: path,
    region: 'us-east-1',
    clientConfig: { endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } },
  };
  const first = await AwsKmsProvider.open(options);
  first.close();
  const second = await AwsKmsProvider.open({ ...options, preload: true });
  t.is((await second.loadKey(1)).length, 32);
  second.close();
  await t.throwsAsync(second.loadKey(1), { code: 'ERR_SIFREDB_KEY', message: /closed/ });
  await t.throwsAsync(AwsKmsProvider.open({ ...options, client: admin }), {
    code: 'ERR_SIFREDB_INPUT',
    message: /only when no client is given/,
  });
});

/**
 * A pass-through proxy to the moto server that can be switched to answer every request with a KMS
 * error, as KMS does under throttling or an internal failure.
 */
async function kmsProxy(t) {
  const state = { fail: undefined, requests: 0 };
  const server = createServer((req, res) => {
    state.requests += 1;
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      if (state.fail) {
        res.writeHead(state.fail.status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: state.fail.type, message: state.fail.message }));
        return;
      }
      const upstream = await fetch(moto.endpoint + req.url, {
        method: req.method,
        headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'content-length')),
        body: Buffer.concat(chunks),
      });
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { endpoint: `http://127.0.0.1:${server.address().port}`, state };
}

test('throttling and KMS-side errors: typed, transient, after the SDK retries; cached keys stay in use', async (t) => {
  const proxy = await kmsProxy(t);
  const keyId = await createKey();
  const path = keyringPath();
  const client = countingKmsClient(proxy.endpoint, { maxAttempts: 3, retryMode: 'standard' });
  t.teardown(() => client.destroy());
  const provider = await AwsKmsProvider.open({ keyId, keyring: path, client, cache: { maxKeyAgeMs: 1 } });
  t.teardown(() => provider.close());
  const vault = await Vault.open(provider);
  const stored = vault.encryptToString('x@example.com', EMAIL);

  proxy.state.fail = { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' };
  const fresh = await AwsKmsProvider.open({ keyId, keyring: path, client });
  t.teardown(() => fresh.close());
  client.resetCounts();
  const throttled = await t.throwsAsync(fresh.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(throttled.awsErrorName, 'ThrottlingException');
  t.true(throttled.transient);
  t.is(throttled.attempts, 3);
  t.deepEqual(client.calls, { DecryptCommand: 1 });
  t.deepEqual(client.attempts, { DecryptCommand: 3 }, 'the SDK retried before giving up');
  t.regex(throttled.message, /throttled by KMS after 3 attempts/);

  // The first provider's key is past maxKeyAgeMs: the refresh asks KMS, is throttled, keeps the key.
  await new Promise((resolve) => setTimeout(resolve, 5));
  await vault.refresh();
  t.is(vault.decryptToString(stored, EMAIL), 'x@example.com');

  proxy.state.fail = { status: 500, type: 'KMSInternalException', message: 'internal' };
  const internal = await t.throwsAsync(fresh.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(internal.awsErrorName, 'KMSInternalException');
  t.is(internal.httpStatusCode, 500);
  t.true(internal.transient);

  proxy.state.fail = { status: 400, type: 'AccessDeniedException', message: 'User: arn:aws:iam::123456789012:user/app is not authorized to perform: kms:Decrypt' };
  const denied = await t.throwsAsync(fresh.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(denied.awsErrorName, 'AccessDeniedException');
  t.false(denied.transient);
  t.regex(denied.message, /not authorized to perform: kms:Decrypt/);
  // A refusal past maxKeyAgeMs (unlike an outage) drops the cached key.
  await new Promise((resolve) => setTimeout(resolve, 5));
  await t.throwsAsync(provider.loadKey(1), { code: 'ERR_SIFREDB_KMS' });

  proxy.state.fail = undefined;
  t.is((await fresh.loadKey(1)).length, 32);
});

test('autoRefresh: a running router drops a shredded tenant at the next refresh past maxKeyAgeMs', async (t) => {
  const [keyA, keyB] = await Promise.all([createKey(), createKey()]);
  const a = await open(t, { keyId: keyA, keyring: keyringPath('auto-a'), cache: { maxKeyAgeMs: 1 } });
  const b = await open(t, { keyId: keyB, keyring: keyringPath('auto-b'), cache: { maxKeyAgeMs: 1 } });
  const vault = await Vault.open(new TenantKeyRouter({ tenants: { a: a.provider, b: b.provider } }));
  const ctxA = EMAIL.withTenant('a');
  const ctxB = EMAIL.withTenant('b');
  const storedA = vault.encryptToString('a', ctxA);
  const storedB = vault.encryptToString('b', ctxB);
  const errors = [];
  const refresher = autoRefresh(vault, { intervalMs: 10, onError: (error) => errors.push(error) });
  t.teardown(() => refresher.stop());
  await refresher.next();
  t.is(vault.decryptToString(storedA, ctxA), 'a');

  await admin.send(new DisableKeyCommand({ KeyId: keyA }));
  await refresher.next();
  await refresher.next();
  t.throws(() => vault.decryptToString(storedA, ctxA), { code: 'ERR_SIFREDB_KEY' });
  t.is(vault.decryptToString(storedB, ctxB), 'b');
  t.deepEqual(errors, [], 'a router isolates the failed tenant, so the refresh itself succeeds');

  await admin.send(new EnableKeyCommand({ KeyId: keyA }));
  await refresher.next();
  await refresher.next();
  t.is(vault.decryptToString(storedA, ctxA), 'a', 're-enabling the key brings the tenant back');
  refresher.stop();
  t.throws(() => autoRefresh(vault, { intervalMs: 0 }), { code: 'ERR_SIFREDB_INPUT' });
});
