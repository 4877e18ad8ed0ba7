// GcpKmsProvider against a local server that speaks the Google Cloud KMS REST protocol
// (helpers/gcp-kms-server.js), started for this file on 127.0.0.1. The provider makes its own
// @google-cloud/kms KeyManagementServiceClient (REST transport), authenticated with a service-account
// key made here: google-auth-library signs a JWT that the server verifies. Nothing in the SDK is
// mocked. The server counts the requests it serves, which proves how many KMS calls each operation
// makes.
//
// Runs on both backends (SIFREDB_BACKEND=native / js). A live test against the real Cloud KMS runs
// when GOOGLE_APPLICATION_CREDENTIALS and SIFREDB_GCP_KMS_KEY are set, and is reported skipped
// otherwise.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { EncryptionContext, GcpKmsProvider, SifreDBError, SifreDBKmsError, TenantKeyRouter, Vault } from '../dist/index.js';
import { crc32c } from '../dist/keys/kms/gcp.js';
import { crc32c as serverCrc32c, startGcpKmsServer } from './helpers/gcp-kms-server.js';

const EMAIL = new EncryptionContext({ table: 'users', column: 'email' });
const PROJECT = 'sifredb-test';
const RING = `projects/${PROJECT}/locations/europe-west1/keyRings/app`;

function serviceAccount(name) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    email: `${name}@${PROJECT}.iam.gserviceaccount.com`,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
  };
}

const APP = serviceAccount('app');
const OTHER = serviceAccount('other');

let server;
let dir;
let seq = 0;

test.before(async () => {
  server = await startGcpKmsServer({ serviceAccounts: [APP, OTHER] });
  dir = await mkdtemp(join(tmpdir(), 'sifredb-gcp-kms-'));
});

test.after.always(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function keyringPath(name = 'keyring') {
  seq += 1;
  return join(dir, `${name}-${seq}.json`);
}

function newKey(target = server, options) {
  seq += 1;
  return target.createKey(`${RING}/cryptoKeys/key-${seq}`, options);
}

/** Client options for the local server, as the provider's own client takes them. */
function clientOptions(target = server, account = APP) {
  return {
    protocol: 'http',
    apiEndpoint: target.host,
    port: target.port,
    projectId: PROJECT,
    credentials: { client_email: account.email, private_key: account.privateKeyPem },
  };
}

/** Opens a provider on the local server (fast retries); closed at the end of the test. */
async function open(t, options, target = server, account = APP) {
  const provider = await GcpKmsProvider.open({ clientOptions: clientOptions(target, account), retry: { initialDelayMs: 5 }, ...options });
  t.teardown(() => provider.close());
  return provider;
}

/** Every error a chain holds (error, cause, cause's cause…), and the failures of a combined error. */
function chain(error) {
  const out = [];
  const visit = (e) => {
    if (!e || out.length > 20 || out.includes(e)) return;
    out.push(e);
    visit(e.cause);
    for (const f of e.failures ?? []) visit(f);
  };
  visit(error);
  return out;
}

const kmsCause = (error) => chain(error).find((e) => e instanceof SifreDBKmsError);

/** Requests the server served since `mark` (a count of server.calls), by method. */
function callsSince(mark) {
  const out = {};
  for (const c of server.calls.slice(mark)) out[c.method] = (out[c.method] ?? 0) + 1;
  return out;
}

test.serial('CRC32C: the provider and the server agree on the standard check value', (t) => {
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.is(serverCrc32c(Buffer.from('123456789')), 0xe3069283);
  t.is(crc32c(new Uint8Array(0)), 0);
  const random = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff));
  t.is(crc32c(random), serverCrc32c(random));
});

test.serial('first open: one Encrypt, bound to the keyring id and version as AAD; the file is 0600 and holds no key bytes', async (t) => {
  const keyName = newKey();
  const path = keyringPath();
  const mark = server.calls.length;
  const provider = await open(t, { keyName, keyring: path, keyringId: 'app-prod' });
  t.deepEqual(callsSince(mark), { encrypt: 1 });
  t.is(server.count('encrypt', keyName, 1), 1, 'under the primary version');

  t.is(await provider.currentVersion(), 1);
  const key = Buffer.from(await provider.loadKey(1));
  t.is(key.length, 32);
  t.deepEqual(callsSince(mark), { encrypt: 1 }, 'the new data key is cached: no Decrypt');

  const text = await readFile(path, 'utf8');
  const doc = JSON.parse(text);
  t.is(doc.type, 'sifredb-kms-keyring');
  t.is(doc.formatVersion, 2);
  t.is(doc.keyringId, 'app-prod');
  t.deepEqual(doc.versions[0].wraps.map((w) => [w.provider, w.keyId]), [['gcp-kms', keyName]]);
  for (const encoding of ['base64', 'base64url', 'hex']) t.false(text.includes(key.toString(encoding)));
  t.is((await stat(path)).mode & 0o777, 0o600);
  t.is(provider.keyName, keyName);
  t.is(provider.keyringId, 'app-prod');
  t.regex(provider.description, /^gcp-kms:projects\//);

  // The wrapped key is Cloud KMS ciphertext whose AAD is the documented binding, exactly.
  const admin = new KeyManagementServiceClient({ fallback: true, ...clientOptions() });
  t.teardown(() => admin.close());
  const ciphertext = Buffer.from(doc.versions[0].wraps[0].wrappedKey, 'base64');
  const aad = Buffer.from('{"sifredb:keyring":"app-prod","sifredb:version":"1"}');
  const [plain] = await admin.decrypt({ name: keyName, ciphertext, additionalAuthenticatedData: aad });
  t.true(Buffer.from(plain.plaintext).equals(key));
  const noAad = await t.throwsAsync(admin.decrypt({ name: keyName, ciphertext }));
  t.regex(noAad.message, /Decryption failed/);

  // A client of the application's own: used as given, and not closed with the provider.
  const withClient = await GcpKmsProvider.open({ keyName, keyring: path, client: admin });
  t.true(Buffer.from(await withClient.loadKey(1)).equals(key));
  withClient.close();
  t.is((await admin.decrypt({ name: keyName, ciphertext, additionalAuthenticatedData: aad }))[0].plaintext.length, 32);
  await t.throwsAsync(GcpKmsProvider.open({ keyName, keyring: path, client: admin, clientOptions: {} }), {
    code: 'ERR_SIFREDB_INPUT',
    message: /clientOptions apply only when no client is given/,
  });
});

test.serial('reopen: no call at open, one Decrypt per version (shared by concurrent loads), the same key bytes', async (t) => {
  const keyName = newKey();
  const path = keyringPath();
  const first = await open(t, { keyName, keyring: path });
  const original = Buffer.from(await first.loadKey(1));

  const mark = server.calls.length;
  const second = await open(t, { keyName, keyring: path });
  t.deepEqual(callsSince(mark), {}, 'opening an existing keyring calls no KMS API');
  const loaded = await Promise.all([1, 1, 1, 1].map((v) => second.loadKey(v)));
  for (const bytes of loaded) t.true(Buffer.from(bytes).equals(original));
  t.deepEqual(callsSince(mark), { decrypt: 1 }, 'concurrent loads share one Decrypt');
  await second.loadKey(1);
  await Vault.open(second);
  t.deepEqual(callsSince(mark), { decrypt: 1 }, 'cached afterwards');

  await t.throwsAsync(GcpKmsProvider.open({ keyName, keyring: keyringPath(), clientOptions: clientOptions(), createIfMissing: false }), {
    code: 'ERR_SIFREDB_KEY',
    message: /does not exist/,
  });
  await t.throwsAsync(GcpKmsProvider.create({ keyName, keyring: path, clientOptions: clientOptions() }), {
    code: 'ERR_SIFREDB_KEY',
    message: /already exists/,
  });
  await t.throwsAsync(GcpKmsProvider.open({ keyName, keyring: path, clientOptions: clientOptions(), keyringId: 'other' }), {
    code: 'ERR_SIFREDB_KEY',
    message: /keyringId/,
  });
  for (const bad of ['projects/p/locations/l/keyRings/r', `${keyName}/cryptoKeyVersions/1`, '', 42]) {
    await t.throwsAsync(GcpKmsProvider.open({ keyName: bad, keyring: path }), { code: 'ERR_SIFREDB_INPUT', message: /keyName/ });
  }
});

test.serial('rotate: one Encrypt each; old versions stay readable; a process start decrypts each version exactly once', async (t) => {
  const keyName = newKey();
  const path = keyringPath();
  const provider = await open(t, { keyName, keyring: path });
  const vault = await Vault.open(provider);
  const stored = { 1: vault.encryptToString('v1@example.com', EMAIL) };

  let mark = server.calls.length;
  t.is(await provider.rotate(), 2);
  t.deepEqual(callsSince(mark), { encrypt: 1 }, 'a rotation is one Encrypt');
  await vault.refresh();
  stored[2] = vault.encryptToString('v2@example.com', EMAIL);
  t.is(await provider.rotate(), 3);
  await vault.refresh();
  stored[3] = vault.encryptToString('v3@example.com', EMAIL);
  t.deepEqual(callsSince(mark), { encrypt: 2 });

  mark = server.calls.length;
  const fresh = await open(t, { keyName, keyring: path });
  const reader = await Vault.open(fresh);
  t.deepEqual(callsSince(mark), { decrypt: 3 }, 'process start = one Decrypt per version');
  for (const [version, text] of Object.entries(stored)) t.is(reader.decryptToString(text, EMAIL), `v${version}@example.com`);
  await reader.refresh();
  await Vault.open(fresh);
  t.deepEqual(callsSince(mark), { decrypt: 3 }, 'exactly one Decrypt per version per process');
  t.log(`Cloud KMS calls per process start with 3 versions: ${JSON.stringify(callsSince(mark))}; per rotation: Encrypt 1`);

  await provider.retire(1);
  t.deepEqual((await fresh.listVersions()).map((v) => v.status), ['retired', 'active', 'active']);
  await reader.refresh();
  t.is(reader.decryptToString(stored[1], EMAIL), 'v1@example.com');
});

test.serial('the CryptoKey rotates: rewrap() re-encrypts every entry under the new primary, then the old key version can be disabled', async (t) => {
  const keyName = newKey();
  const path = keyringPath();
  const provider = await open(t, { keyName, keyring: path });
  await provider.rotate();
  const vault = await Vault.open(provider);
  const stored = vault.encryptToString('kept@example.com', EMAIL);

  t.is(server.rotateKey(keyName), 2, 'Cloud KMS made key version 2 primary');
  const mark = server.calls.length;
  const result = await provider.rewrap();
  t.is(result.versions, 2);
  t.is(result.keyIds, keyName);
  t.deepEqual(callsSince(mark), { encrypt: 2 }, 'keys already loaded: no Decrypt, one Encrypt per version');
  t.is(server.count('encrypt', keyName, 2), 2, 'under the new primary version');

  // With key version 1 disabled, a fresh process still reads everything.
  server.setVersionState(keyName, 1, 'DISABLED');
  const fresh = await open(t, { keyName, keyring: path });
  const reader = await Vault.open(fresh);
  t.is(reader.decryptToString(stored, EMAIL), 'kept@example.com');
  // A rotation now wraps under version 2 too.
  await provider.rotate();
  t.is(server.count('encrypt', keyName, 1), 2, 'nothing more under version 1');

  // rewrap(newKeyName): to another CryptoKey; afterwards only that key is needed.
  const other = newKey();
  const moved = await provider.rewrap(other);
  t.is(moved.versions, 3);
  t.is(moved.keyIds, other);
  t.is(provider.keyName, other);
  server.setVersionState(keyName, 2, 'DISABLED');
  const movedReader = await Vault.open(await open(t, { keyName: other, keyring: path }));
  t.is(movedReader.decryptToString(stored, EMAIL), 'kept@example.com');
  t.is(await provider.rotate(), 4);
});

test.serial('wrong key, unknown key, no permission: typed ERR_SIFREDB_KMS errors naming the key', async (t) => {
  const keyA = newKey(server, { allowed: [APP.email] });
  const keyB = newKey();
  const path = keyringPath();
  await open(t, { keyName: keyA, keyring: path });

  // The keyring is wrapped under A; the configuration names B.
  const wrong = await open(t, { keyName: keyB, keyring: path });
  const error = await t.throwsAsync(wrong.loadKey(1));
  t.true(error instanceof SifreDBKmsError);
  t.is(error.code, 'ERR_SIFREDB_KMS');
  t.is(error.reason, 'wrong-key');
  t.is(error.provider, 'gcp-kms');
  t.is(error.operation, 'Decrypt');
  t.is(error.serviceErrorName, 'INVALID_ARGUMENT');
  t.false(error.transient);
  t.true(error.message.includes(keyA) && error.message.includes(keyB), error.message);
  const vaultError = await t.throwsAsync(Vault.open(wrong));
  t.is(kmsCause(vaultError)?.reason, 'wrong-key');
  await t.throwsAsync(wrong.rotate(), { code: 'ERR_SIFREDB_KEY', message: /rewrap/ });
  t.is(JSON.parse(await readFile(path, 'utf8')).versions.length, 1);

  const missing = `${RING}/cryptoKeys/does-not-exist`;
  const notFound = await t.throwsAsync(open(t, { keyName: missing, keyring: keyringPath() }));
  t.is(notFound.code, 'ERR_SIFREDB_KMS');
  t.is(notFound.reason, 'not-found');
  t.is(notFound.httpStatusCode, 404);
  t.is(notFound.operation, 'Encrypt');
  t.regex(notFound.message, /not found/);

  // Another service account without a role binding on the key.
  const denied = await t.throwsAsync(open(t, { keyName: keyA, keyring: path, preload: true }, server, OTHER));
  t.is(denied.reason, 'denied');
  t.is(denied.serviceErrorName, 'PERMISSION_DENIED');
  t.is(denied.httpStatusCode, 403);
  t.false(denied.transient);
  t.regex(denied.message, /roles\/cloudkms\.cryptoKeyEncrypterDecrypter/);
  t.regex(denied.message, /cloudkms\.cryptoKeyVersions\.useToDecrypt/);
});

test.serial('crypto-shredding: destroying tenant A\'s key version makes only A unreadable; a disabled version is an outage until enabled', async (t) => {
  const [keyA, keyB, keyDefault] = [newKey(), newKey(), newKey()];
  const paths = { a: keyringPath('tenant-a'), b: keyringPath('tenant-b'), default: keyringPath('default') };
  const router = async (cache) =>
    new TenantKeyRouter({
      tenants: {
        a: await open(t, { keyName: keyA, keyring: paths.a, keyringId: 'tenant-a', cache }),
        b: await open(t, { keyName: keyB, keyring: paths.b, keyringId: 'tenant-b', cache }),
      },
      default: await open(t, { keyName: keyDefault, keyring: paths.default, keyringId: 'default', cache }),
    });
  const ctxA = EMAIL.withTenant('a');
  const ctxB = EMAIL.withTenant('b');
  const ctxC = EMAIL.withTenant('c');

  const writer = await Vault.open(await router());
  const stored = {
    a: writer.encryptToString('alice@a.example', ctxA),
    b: writer.encryptToString('bob@b.example', ctxB),
    c: writer.encryptToString('carol@c.example', ctxC),
  };
  const longRunning = await Vault.open(await router({ maxKeyAgeMs: 1 }));

  server.setVersionState(keyA, 1, 'DESTROYED');
  const reader = await Vault.open(await router());
  const error = t.throws(() => reader.decryptToString(stored.a, ctxA), { code: 'ERR_SIFREDB_KEY' });
  t.regex(error.message, /tenant "a"/);
  const cause = kmsCause(error);
  t.is(cause?.reason, 'disabled');
  t.is(cause?.serviceErrorName, 'FAILED_PRECONDITION');
  t.regex(cause.message, /DESTROYED/);
  t.is(reader.decryptToString(stored.b, ctxB), 'bob@b.example');
  t.is(reader.decryptToString(stored.c, ctxC), 'carol@c.example');
  t.is(reader.decryptToString(reader.encryptToString('new@b.example', ctxB), ctxB), 'new@b.example');

  // The running process loses A at its next refresh past maxKeyAgeMs; B stays.
  t.is(longRunning.decryptToString(stored.a, ctxA), 'alice@a.example');
  await new Promise((resolve) => setTimeout(resolve, 5));
  await longRunning.refresh();
  t.throws(() => longRunning.decryptToString(stored.a, ctxA), { code: 'ERR_SIFREDB_KEY' });
  t.is(longRunning.decryptToString(stored.b, ctxB), 'bob@b.example');

  // Disabling B's key version: unreadable until it is enabled again.
  server.setVersionState(keyB, 1, 'DISABLED');
  const third = await Vault.open(await router());
  const errorB = t.throws(() => third.decryptToString(stored.b, ctxB), { code: 'ERR_SIFREDB_KEY' });
  t.regex(kmsCause(errorB)?.message ?? '', /DISABLED/);
  t.is(third.decryptToString(stored.c, ctxC), 'carol@c.example');
  server.setVersionState(keyB, 1, 'ENABLED');
  const fourth = await Vault.open(await router());
  t.is(fourth.decryptToString(stored.b, ctxB), 'bob@b.example');
});

test.serial('Cloud KMS stopped after load: loaded keys keep working; a fresh open fails clearly as unreachable', async (t) => {
  // A server of its own: stopping the file's shared server would break the other tests.
  const local = await startGcpKmsServer({ serviceAccounts: [APP] });
  t.teardown(() => local.close());
  const keyName = newKey(local);
  const path = keyringPath();
  const provider = await open(t, { keyName, keyring: path }, local);
  await provider.rotate();
  const vault = await Vault.open(provider);
  const before = vault.encryptToString('before@example.com', EMAIL);
  const shortLived = await open(t, { keyName, keyring: path, cache: { maxKeyAgeMs: 1 } }, local);
  const shortVault = await Vault.open(shortLived);

  await local.close();

  t.is(vault.decryptToString(before, EMAIL), 'before@example.com');
  const after = vault.encryptToString('after@example.com', EMAIL);
  await vault.refresh();
  t.is(vault.decryptToString(after, EMAIL), 'after@example.com');
  await new Promise((resolve) => setTimeout(resolve, 5));
  await shortVault.refresh(); // past maxKeyAgeMs: the outage is transient, the keys are kept
  t.is(shortVault.decryptToString(after, EMAIL), 'after@example.com');

  const fresh = await open(t, { keyName, keyring: path }, local);
  const error = await t.throwsAsync(fresh.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(error.reason, 'unreachable');
  t.true(error.transient);
  t.is(error.networkErrorCode, 'ECONNREFUSED');
  t.is(error.attempts, 4, 'retried before giving up');
  t.regex(error.message, /Google Cloud KMS unreachable at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\) after 4 attempts/);
  const vaultError = await t.throwsAsync(Vault.open(fresh));
  t.is(kmsCause(vaultError)?.reason, 'unreachable');
  await t.throwsAsync(open(t, { keyName, keyring: path, preload: true }, local), { code: 'ERR_SIFREDB_KMS', message: /unreachable/ });
  await t.throwsAsync(open(t, { keyName, keyring: keyringPath() }, local), { code: 'ERR_SIFREDB_KMS', message: /Encrypt failed .*unreachable/ });
});

test.serial('a Cloud KMS endpoint that accepts connections but never answers: ETIMEDOUT after timeoutMs, no hang', async (t) => {
  const silent = createServer(() => {});
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const started = Date.now();
  const error = await t.throwsAsync(
    GcpKmsProvider.open({
      keyName: `${RING}/cryptoKeys/silent`,
      keyring: keyringPath(),
      timeoutMs: 400,
      clientOptions: { ...clientOptions(), port: silent.address().port },
    }),
  );
  t.is(error.reason, 'unreachable');
  t.is(error.networkErrorCode, 'ETIMEDOUT');
  t.true(Date.now() - started < 5_000);
});

test.serial('corrupted keyring: ERR_SIFREDB_KEY, no Cloud KMS call for unreadable files, and the file is never overwritten', async (t) => {
  const keyName = newKey();
  const cases = {
    'not JSON': '{"type": "sifredb-kms-keyring", "formatVer',
    'empty file': '',
    'wrong type': JSON.stringify({ type: 'something-else' }),
  };
  const mark = server.calls.length;
  for (const [name, text] of Object.entries(cases)) {
    const path = keyringPath('corrupt');
    await writeFile(path, text, { mode: 0o600 });
    const error = await t.throwsAsync(GcpKmsProvider.open({ keyName, keyring: path, clientOptions: clientOptions() }), { code: 'ERR_SIFREDB_KEY' }, name);
    t.regex(error.message, /corrupted/, name);
    t.is(await readFile(path, 'utf8'), text, `${name}: file unchanged`);
  }
  t.deepEqual(callsSince(mark), {}, 'no Cloud KMS call for a corrupted keyring');

  // Valid JSON with a wrapped key altered, one moved to another version (the AAD binds it), one not base64.
  const path = keyringPath();
  const provider = await open(t, { keyName, keyring: path });
  await provider.rotate();
  await provider.rotate();
  const doc = JSON.parse(await readFile(path, 'utf8'));
  const blob = Buffer.from(doc.versions[0].wraps[0].wrappedKey, 'base64');
  blob[blob.length - 1] ^= 1;
  doc.versions[0].wraps[0].wrappedKey = blob.toString('base64');
  doc.versions[1].wraps[0].wrappedKey = JSON.parse(await readFile(path, 'utf8')).versions[2].wraps[0].wrappedKey;
  doc.versions[2].wraps[0].wrappedKey = 'not-base64!';
  const tampered = JSON.stringify(doc);
  await writeFile(path, tampered);
  const reader = await open(t, { keyName, keyring: path });
  for (const version of [1, 2, 3]) {
    const error = await t.throwsAsync(reader.loadKey(version), { code: 'ERR_SIFREDB_KEY' }, `version ${version}`);
    t.is(error.reason, 'invalid-ciphertext');
    t.regex(error.message, /altered/);
  }
  t.is(await readFile(path, 'utf8'), tampered);
});

test.serial('throttling and 5xx are retried; a persistent one is a transient error and cached keys stay in use', async (t) => {
  const keyName = newKey();
  const path = keyringPath();
  const provider = await open(t, { keyName, keyring: path, cache: { maxKeyAgeMs: 1 } });
  const vault = await Vault.open(provider);
  const stored = vault.encryptToString('x@example.com', EMAIL);

  // Two throttled answers, then success: three requests for one unwrap.
  let fresh = await open(t, { keyName, keyring: path });
  let mark = server.calls.length;
  server.fail('throttle', 2);
  t.is((await fresh.loadKey(1)).length, 32);
  t.deepEqual(callsSince(mark), { fault: 2, decrypt: 1 });

  for (const [kind, status, reason] of [
    ['throttle', 'RESOURCE_EXHAUSTED', 'throttled'],
    ['unavailable', 'UNAVAILABLE', 'service'],
    ['internal', 'INTERNAL', 'service'],
  ]) {
    fresh = await open(t, { keyName, keyring: path });
    mark = server.calls.length;
    server.fail(kind, 4);
    const error = await t.throwsAsync(fresh.loadKey(1), { code: 'ERR_SIFREDB_KMS' }, kind);
    t.is(error.serviceErrorName, status);
    t.is(error.reason, reason);
    t.true(error.transient);
    t.is(error.attempts, 4);
    t.deepEqual(callsSince(mark), { fault: 4 }, `${kind}: four attempts`);
  }

  // The first provider's key is past maxKeyAgeMs: the refresh is throttled and keeps the key.
  await new Promise((resolve) => setTimeout(resolve, 5));
  server.fail('throttle', 4);
  await vault.refresh();
  t.is(vault.decryptToString(stored, EMAIL), 'x@example.com');

  // An answer whose checksum does not match is dropped and the call retried.
  fresh = await open(t, { keyName, keyring: path });
  mark = server.calls.length;
  server.corruptNextAnswers(1);
  t.is((await fresh.loadKey(1)).length, 32);
  t.deepEqual(callsSince(mark), { decrypt: 2 });
  server.corruptNextAnswers(4);
  const corrupted = await t.throwsAsync(open(t, { keyName, keyring: keyringPath() }), { code: 'ERR_SIFREDB_KMS' });
  t.regex(corrupted.message, /CRC32C/);
  t.true(corrupted.transient);

  // A refusal (unlike an outage) past maxKeyAgeMs drops the cached key.
  server.revoke(keyName, APP.email);
  await new Promise((resolve) => setTimeout(resolve, 5));
  await t.throwsAsync(provider.loadKey(1), { code: 'ERR_SIFREDB_KMS', message: /access denied/ });
});

test.serial('errors never contain key bytes, wrapped keys, tokens or the service-account key', async (t) => {
  const local = await startGcpKmsServer({ serviceAccounts: [APP, OTHER] });
  t.teardown(() => local.close());
  const keyName = newKey(local, { allowed: [APP.email] });
  const other = newKey(local);
  const path = keyringPath();
  const provider = await open(t, { keyName, keyring: path }, local);
  await provider.rotate();
  const keys = await Promise.all([1, 2].map(async (v) => Buffer.from(await provider.loadKey(v))));
  const wrapped = JSON.parse(await readFile(path, 'utf8')).versions.map((v) => v.wraps[0].wrappedKey);

  const errors = [];
  const capture = async (promise) => errors.push(await t.throwsAsync(promise));
  const wrong = await open(t, { keyName: other, keyring: path }, local);
  await capture(wrong.loadKey(2));
  await capture(Vault.open(wrong));
  await capture(open(t, { keyName, keyring: path, preload: true }, local, OTHER));
  local.fail('throttle', 8); // two versions unwrapped in parallel, four attempts each
  await capture(open(t, { keyName, keyring: path, preload: true }, local));
  local.setVersionState(keyName, 1, 'DISABLED');
  await capture(open(t, { keyName, keyring: path, preload: true }, local));
  await capture(provider.rewrap(`${RING}/cryptoKeys/missing`));
  await local.close();
  await capture(open(t, { keyName, keyring: path, preload: true }, local));
  t.is(errors.length, 7);

  const forbidden = [
    ...keys.flatMap((k) => [k.toString('base64'), k.toString('base64url'), k.toString('hex')]),
    ...wrapped,
    ...[...local.bearerTokens].flatMap((token) => [token, ...token.split('.').filter((part) => part.length > 20)]),
    ...APP.privateKeyPem.split('\n').filter((line) => line.length > 40),
  ];
  t.true(local.bearerTokens.size > 0);
  for (const error of errors) {
    const rendered = [
      error.message,
      error.stack,
      inspect(error, { depth: Infinity, showHidden: true }),
      JSON.stringify(error),
      ...chain(error).map((e) => `${e.message}\n${inspect(e, { depth: Infinity, showHidden: true })}`),
    ].join('\n');
    for (const secret of forbidden) t.false(rendered.includes(secret), `${error.message} leaks a secret`);
  }
});

test.serial('missing credentials: a typed credentials error, no unhandled rejection, and the next call works once they exist', async (t) => {
  const keyName = newKey();
  const path = keyringPath();
  await open(t, { keyName, keyring: path });
  const keyFile = join(dir, `service-account-${seq}.json`);
  const { credentials, ...endpoint } = clientOptions();
  const provider = await GcpKmsProvider.open({ keyName, keyring: path, clientOptions: { ...endpoint, keyFilename: keyFile }, retry: { initialDelayMs: 5 } });
  t.teardown(() => provider.close());
  const error = await t.throwsAsync(provider.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
  t.is(error.reason, 'credentials');
  t.false(error.transient);
  t.regex(error.message, /no usable Google credentials \(credentials file: ENOENT\)/);
  // The SDK's client keeps a failed authentication for good: the provider replaced it.
  await writeFile(keyFile, JSON.stringify({ type: 'service_account', client_email: credentials.client_email, private_key: credentials.private_key }), { mode: 0o600 });
  t.is((await provider.loadKey(1)).length, 32);
  // ava fails a test file on an unhandled rejection: give the SDK's promises a turn to surface one.
  await new Promise((resolve) => setTimeout(resolve, 50));
});

test.serial('without @google-cloud/kms installed: a clear ERR_SIFREDB_INPUT naming the package', (t) => {
  const hook = `data:text/javascript,${encodeURIComponent(
    'export async function resolve(s, c, next) { if (s === "@google-cloud/kms") { const e = new Error("Cannot find package " + s); e.code = "ERR_MODULE_NOT_FOUND"; throw e; } return next(s, c); }',
  )}`;
  const register = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(hook)});`)}`;
  const script = `
    const { GcpKmsProvider } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
    try {
      await GcpKmsProvider.open({ keyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k', keyring: '/nonexistent/keyring.json' });
      console.log('no error');
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, message: error.message }));
    }`;
  const result = spawnSync(process.execPath, ['--import', register, '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout.trim());
  t.is(out.code, 'ERR_SIFREDB_INPUT');
  t.regex(out.message, /npm install @google-cloud\/kms/);
});

test.serial('the module does not import @google-cloud/kms until a provider is opened', (t) => {
  const script = `
    await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
    const { createRequire } = await import('node:module');
    const loaded = Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('@google-cloud'));
    console.log(loaded ? 'loaded' : 'not loaded');`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) });
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.trim(), 'not loaded');
});

// --- live: the real Cloud KMS, only with credentials ------------------------------------------

const LIVE_KEY = process.env.SIFREDB_GCP_KMS_KEY;
const live = Boolean(process.env.GOOGLE_APPLICATION_CREDENTIALS && LIVE_KEY);
if (!live) {
  console.warn(
    'kms-gcp.spec.js: SKIPPED the live Google Cloud KMS test: set GOOGLE_APPLICATION_CREDENTIALS and ' +
      'SIFREDB_GCP_KMS_KEY=projects/…/cryptoKeys/… (roles/cloudkms.cryptoKeyEncrypterDecrypter) to run it',
  );
}
(live ? test.serial : test.skip)('live Google Cloud KMS: create, rotate, reopen and read back with Application Default Credentials', async (t) => {
  const path = keyringPath('live');
  const provider = await GcpKmsProvider.create({ keyName: LIVE_KEY, keyring: path });
  t.teardown(() => provider.close());
  const vault = await Vault.open(provider);
  const first = vault.encryptToString('live-1@example.com', EMAIL);
  await provider.rotate();
  await vault.refresh();
  const second = vault.encryptToString('live-2@example.com', EMAIL);
  const fresh = await GcpKmsProvider.open({ keyName: LIVE_KEY, keyring: path, createIfMissing: false, preload: true });
  t.teardown(() => fresh.close());
  const reader = await Vault.open(fresh);
  t.is(reader.decryptToString(first, EMAIL), 'live-1@example.com');
  t.is(reader.decryptToString(second, EMAIL), 'live-2@example.com');
  t.is((await fresh.rewrap()).versions, 2);
  t.true(SifreDBError.prototype.isPrototypeOf(await t.throwsAsync(GcpKmsProvider.create({ keyName: LIVE_KEY, keyring: path }))));
});
