// AzureKeyVaultProvider against local HTTPS servers that speak the Azure Key Vault keys REST protocol
// (helpers/azure-keyvault-server.js), started for this file on 127.0.0.1: one behaves as a Key Vault
// (RSA keys, RSA-OAEP-256), one as a Managed HSM (oct-HSM keys, A256KW). The provider makes its own
// @azure/keyvault-keys clients; they go through Key Vault's challenge authentication (401 +
// WWW-Authenticate, then a token from the TokenCredential given here) over TLS with the server's
// self-signed certificate as CA. Nothing in the SDK is mocked. The servers count the requests they
// serve, which proves how many Key Vault calls each operation makes.
//
// Runs on both backends (SIFREDB_BACKEND=native / js). A live test against a real vault runs when
// AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET (or another DefaultAzureCredential source
// named by AZURE_*) and SIFREDB_AZURE_KEY are set, and is reported skipped otherwise.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { CryptographyClient } from '@azure/keyvault-keys';
import { AzureKeyVaultProvider, EncryptionContext, SifreDBError, SifreDBKmsError, TenantKeyRouter, Vault } from '../dist/index.js';
import { startAzureKeyVaultServer } from './helpers/azure-keyvault-server.js';

const EMAIL = new EncryptionContext({ table: 'users', column: 'email' });
const TOKEN = 'sifredb-test-azure-access-token-do-not-print';

/** A TokenCredential that hands out the servers' token and counts how often it was asked. */
function testCredential() {
  const credential = {
    requests: [],
    async getToken(scopes, options) {
      credential.requests.push({ scopes: [scopes].flat(), tenantId: options?.tenantId });
      return { token: TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
  return credential;
}

const FLAVORS = [
  { name: 'Key Vault (RSA-OAEP-256)', managedHsm: false, algorithm: 'RSA-OAEP-256', scope: 'https://vault.azure.net/.default' },
  { name: 'Managed HSM (A256KW)', managedHsm: true, algorithm: 'A256KW', scope: 'https://managedhsm.azure.net/.default' },
];

let dir;
let seq = 0;
const servers = new Map();

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sifredb-azure-kv-'));
  for (const flavor of FLAVORS) servers.set(flavor.name, await startAzureKeyVaultServer({ token: TOKEN, managedHsm: flavor.managedHsm }));
});

test.after.always(async () => {
  for (const server of servers.values()) await server.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function keyringPath(name = 'keyring') {
  seq += 1;
  return join(dir, `${name}-${seq}.json`);
}

function newKey(server) {
  seq += 1;
  return server.createKey(`key-${seq}`);
}

const keyName = (url) => new URL(url).pathname.split('/')[2];

/** SDK options for a local server: its CA, its 127.0.0.1 host for the challenge, fast retries. */
function clientOptions(server) {
  return {
    tlsOptions: { ca: server.ca },
    disableChallengeResourceVerification: true,
    retryOptions: { retryDelayInMs: 5, maxRetryDelayInMs: 20 },
  };
}

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

function callsSince(server, mark) {
  const out = {};
  for (const c of server.calls.slice(mark)) out[c.operation] = (out[c.operation] ?? 0) + 1;
  return out;
}

for (const flavor of FLAVORS) {
  const server = () => servers.get(flavor.name);
  const options = (extra, target = server(), credential = testCredential()) => ({
    credential,
    clientOptions: clientOptions(target),
    algorithm: flavor.algorithm,
    ...extra,
  });
  const open = async (t, extra, target, credential) => {
    const provider = await AzureKeyVaultProvider.open(options(extra, target, credential));
    t.teardown(() => provider.close());
    return provider;
  };

  test.serial(`${flavor.name}: first open wraps once after the challenge; the entry is bound to the keyring id and version`, async (t) => {
    const srv = server();
    const keyUrl = newKey(srv);
    const path = keyringPath();
    const credential = testCredential();
    const mark = srv.calls.length;
    const challenges = srv.challenges;
    const provider = await open(t, { keyUrl, keyring: path, keyringId: 'app-prod' }, srv, credential);
    t.deepEqual(callsSince(srv, mark), { get: 1, wrapkey: 1 }, 'one get of the current key version, one wrapKey');
    t.true(srv.challenges > challenges, 'the first request of a client is answered with a 401 challenge');
    t.true(credential.requests.length >= 1);
    for (const request of credential.requests) t.deepEqual(request.scopes, [flavor.scope]);

    const key = Buffer.from(await provider.loadKey(1));
    t.deepEqual(callsSince(srv, mark), { get: 1, wrapkey: 1 }, 'the new data key is cached: no unwrapKey');
    const text = await readFile(path, 'utf8');
    const doc = JSON.parse(text);
    t.is(doc.formatVersion, 2);
    const [wrap] = doc.versions[0].wraps;
    t.is(wrap.provider, 'azure-keyvault');
    t.is(wrap.keyId, keyUrl);
    const match = /^(RSA-OAEP-256|A256KW):([0-9a-f]{32}):([A-Za-z0-9+/=]+)$/.exec(wrap.wrappedKey);
    t.truthy(match, wrap.wrappedKey.slice(0, 40));
    t.is(match[1], flavor.algorithm);
    t.is(match[2], srv.latestVersion(keyName(keyUrl)));
    for (const encoding of ['base64', 'base64url', 'hex']) t.false(text.includes(key.toString(encoding)));
    t.is((await stat(path)).mode & 0o777, 0o600);
    t.is(provider.keyUrl, keyUrl);
    t.regex(provider.description, /^azure-keyvault:https:\/\/127\.0\.0\.1:\d+\/keys\//);

    // What Key Vault wrapped: the data key, then SHA-256 of the binding JSON.
    const sdk = new CryptographyClient(`${keyUrl}/${match[2]}`, testCredential(), clientOptions(srv));
    const { result } = await sdk.unwrapKey(flavor.algorithm, Buffer.from(match[3], 'base64'));
    t.is(result.length, 64);
    t.true(Buffer.from(result.subarray(0, 32)).equals(key));
    const binding = createHash('sha256').update('{"sifredb:keyring":"app-prod","sifredb:version":"1"}').digest();
    t.true(Buffer.from(result.subarray(32)).equals(binding));
  });

  test.serial(`${flavor.name}: reopen calls nothing; a process start reads the key once and unwraps each version once`, async (t) => {
    const srv = server();
    const keyUrl = newKey(srv);
    const path = keyringPath();
    const provider = await open(t, { keyUrl, keyring: path });
    const vault = await Vault.open(provider);
    const stored = { 1: vault.encryptToString('v1@example.com', EMAIL) };
    let mark = srv.calls.length;
    t.is(await provider.rotate(), 2);
    t.deepEqual(callsSince(srv, mark), { get: 1, wrapkey: 1 }, 'a rotation is one get and one wrapKey');
    await vault.refresh();
    stored[2] = vault.encryptToString('v2@example.com', EMAIL);
    t.is(await provider.rotate(), 3);
    await vault.refresh();
    stored[3] = vault.encryptToString('v3@example.com', EMAIL);

    mark = srv.calls.length;
    const challenges = srv.challenges;
    const credential = testCredential();
    const fresh = await open(t, { keyUrl, keyring: path }, srv, credential);
    t.deepEqual(callsSince(srv, mark), {}, 'opening an existing keyring calls no Key Vault API');
    const loaded = await Promise.all([1, 1, 1].map((v) => fresh.loadKey(v)));
    t.true(Buffer.from(loaded[0]).equals(Buffer.from(loaded[2])));
    t.deepEqual(callsSince(srv, mark), { get: 1, unwrapkey: 1 }, 'concurrent loads share one unwrapKey');
    const reader = await Vault.open(fresh);
    await reader.refresh();
    await Vault.open(fresh);
    t.deepEqual(callsSince(srv, mark), { get: 1, unwrapkey: 3 }, 'exactly one unwrapKey per version per process');
    t.is(srv.challenges - challenges, 1, 'one 401 challenge per process and key version');
    t.is(credential.requests.length, 1, 'one token request');
    for (const [version, text] of Object.entries(stored)) t.is(reader.decryptToString(text, EMAIL), `v${version}@example.com`);
    t.log(`Key Vault calls per process start with 3 versions: ${JSON.stringify(callsSince(srv, mark))}`);

    await t.throwsAsync(AzureKeyVaultProvider.open(options({ keyUrl, keyring: keyringPath(), createIfMissing: false })), {
      code: 'ERR_SIFREDB_KEY',
      message: /does not exist/,
    });
    await t.throwsAsync(AzureKeyVaultProvider.create(options({ keyUrl, keyring: path })), { code: 'ERR_SIFREDB_KEY', message: /already exists/ });
    for (const bad of ['http://vault.example/keys/k', 'https://vault.example/secrets/k', 'https://u:p@vault.example/keys/k', `${keyUrl}?x=1`, 42]) {
      await t.throwsAsync(AzureKeyVaultProvider.open(options({ keyUrl: bad, keyring: path })), { code: 'ERR_SIFREDB_INPUT', message: /keyUrl/ });
    }
  });

  test.serial(`${flavor.name}: the Key Vault key rotates: new versions wrap under its new version, rewrap() moves the old ones, then the old key version can be disabled`, async (t) => {
    const srv = server();
    const keyUrl = newKey(srv);
    const name = keyName(keyUrl);
    const path = keyringPath();
    const provider = await open(t, { keyUrl, keyring: path });
    const vault = await Vault.open(provider);
    const stored = vault.encryptToString('kept@example.com', EMAIL);
    const oldVersion = srv.latestVersion(name);

    const newVersion = srv.rotateKey(name);
    await provider.rotate();
    const versionsOf = async () => JSON.parse(await readFile(path, 'utf8')).versions.map((v) => v.wraps[0].wrappedKey.split(':')[1]);
    t.deepEqual(await versionsOf(), [oldVersion, newVersion]);

    const mark = srv.calls.length;
    const result = await provider.rewrap();
    t.is(result.versions, 2);
    t.is(result.keyIds, keyUrl);
    t.deepEqual(callsSince(srv, mark), { get: 2, wrapkey: 2 }, 'keys already loaded: no unwrapKey; one get and one wrapKey per version');
    t.deepEqual(await versionsOf(), [newVersion, newVersion]);

    srv.setEnabled(name, false, oldVersion);
    const reader = await Vault.open(await open(t, { keyUrl, keyring: path }));
    t.is(reader.decryptToString(stored, EMAIL), 'kept@example.com');

    // To another key; afterwards only that one is needed.
    const other = newKey(srv);
    const moved = await provider.rewrap(other);
    t.is(moved.keyIds, other);
    t.is(provider.keyUrl, other);
    srv.setEnabled(name, false);
    const movedReader = await Vault.open(await open(t, { keyUrl: other, keyring: path }));
    t.is(movedReader.decryptToString(stored, EMAIL), 'kept@example.com');
    t.is(await provider.rotate(), 3);
  });

  test.serial(`${flavor.name}: wrong key, unknown key, no access: typed ERR_SIFREDB_KMS errors`, async (t) => {
    const srv = server();
    const keyA = newKey(srv);
    const keyB = newKey(srv);
    const path = keyringPath();
    await open(t, { keyUrl: keyA, keyring: path });

    const wrong = await open(t, { keyUrl: keyB, keyring: path });
    const error = await t.throwsAsync(wrong.loadKey(1));
    t.true(error instanceof SifreDBKmsError);
    t.is(error.provider, 'azure-keyvault');
    t.is(error.operation, 'unwrapKey');
    t.false(error.transient);
    // Another key's version id is unknown to key B: Key Vault says KeyNotFound; an RSA key of the same
    // version would fail to decrypt (wrong-key). Either way the message names both keys or the missing one.
    t.true(['not-found', 'wrong-key'].includes(error.reason), error.reason);
    t.true(error.message.includes(keyB), error.message);
    await t.throwsAsync(wrong.rotate(), { code: 'ERR_SIFREDB_KEY', message: /rewrap/ });

    const missing = `${srv.vaultUrl}/keys/does-not-exist`;
    const notFound = await t.throwsAsync(open(t, { keyUrl: missing, keyring: keyringPath() }));
    t.is(notFound.reason, 'not-found');
    t.is(notFound.httpStatusCode, 404);
    t.is(notFound.serviceErrorName, 'KeyNotFound');
    t.regex(notFound.message, /not found/);

    srv.setDenied(keyName(keyA), true);
    t.teardown(() => srv.setDenied(keyName(keyA), false));
    const denied = await t.throwsAsync(open(t, { keyUrl: keyA, keyring: path, preload: true }));
    t.is(denied.reason, 'denied');
    t.is(denied.httpStatusCode, 403);
    t.is(denied.serviceErrorName, 'Forbidden');
    t.false(denied.transient);
    t.regex(denied.message, /Key Vault Crypto Service Encryption User/);
  });

  test.serial(`${flavor.name}: crypto-shredding: purging tenant A's key makes only A unreadable; a disabled key is an outage until enabled`, async (t) => {
    const srv = server();
    const [keyA, keyB, keyDefault] = [newKey(srv), newKey(srv), newKey(srv)];
    const paths = { a: keyringPath('tenant-a'), b: keyringPath('tenant-b'), default: keyringPath('default') };
    const router = async (cache) =>
      new TenantKeyRouter({
        tenants: {
          a: await open(t, { keyUrl: keyA, keyring: paths.a, keyringId: 'tenant-a', cache }),
          b: await open(t, { keyUrl: keyB, keyring: paths.b, keyringId: 'tenant-b', cache }),
        },
        default: await open(t, { keyUrl: keyDefault, keyring: paths.default, keyringId: 'default', cache }),
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

    srv.purgeKey(keyName(keyA));
    const reader = await Vault.open(await router());
    const error = t.throws(() => reader.decryptToString(stored.a, ctxA), { code: 'ERR_SIFREDB_KEY' });
    t.regex(error.message, /tenant "a"/);
    t.is(kmsCause(error)?.reason, 'not-found');
    t.is(reader.decryptToString(stored.b, ctxB), 'bob@b.example');
    t.is(reader.decryptToString(stored.c, ctxC), 'carol@c.example');
    t.is(reader.decryptToString(reader.encryptToString('new@b.example', ctxB), ctxB), 'new@b.example');

    t.is(longRunning.decryptToString(stored.a, ctxA), 'alice@a.example');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await longRunning.refresh();
    t.throws(() => longRunning.decryptToString(stored.a, ctxA), { code: 'ERR_SIFREDB_KEY' });
    t.is(longRunning.decryptToString(stored.b, ctxB), 'bob@b.example');

    srv.setEnabled(keyName(keyB), false);
    const third = await Vault.open(await router());
    const errorB = t.throws(() => third.decryptToString(stored.b, ctxB), { code: 'ERR_SIFREDB_KEY' });
    const causeB = kmsCause(errorB);
    t.is(causeB?.reason, 'disabled');
    t.regex(causeB.message, /disabled/);
    t.is(third.decryptToString(stored.c, ctxC), 'carol@c.example');
    srv.setEnabled(keyName(keyB), true);
    const fourth = await Vault.open(await router());
    t.is(fourth.decryptToString(stored.b, ctxB), 'bob@b.example');
  });

  test.serial(`${flavor.name}: Key Vault stopped after load: loaded keys keep working; a fresh open fails clearly as unreachable`, async (t) => {
    const local = await startAzureKeyVaultServer({ token: TOKEN, managedHsm: flavor.managedHsm });
    t.teardown(() => local.close());
    const keyUrl = newKey(local);
    const path = keyringPath();
    const provider = await open(t, { keyUrl, keyring: path }, local);
    await provider.rotate();
    const vault = await Vault.open(provider);
    const before = vault.encryptToString('before@example.com', EMAIL);
    const shortVault = await Vault.open(await open(t, { keyUrl, keyring: path, cache: { maxKeyAgeMs: 1 } }, local));

    await local.close();

    t.is(vault.decryptToString(before, EMAIL), 'before@example.com');
    const after = vault.encryptToString('after@example.com', EMAIL);
    await vault.refresh();
    t.is(vault.decryptToString(after, EMAIL), 'after@example.com');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await shortVault.refresh();
    t.is(shortVault.decryptToString(after, EMAIL), 'after@example.com');

    const fresh = await open(t, { keyUrl, keyring: path }, local);
    const error = await t.throwsAsync(fresh.loadKey(1), { code: 'ERR_SIFREDB_KMS' });
    t.is(error.reason, 'unreachable');
    t.true(error.transient);
    t.is(error.networkErrorCode, 'ECONNREFUSED');
    t.regex(error.message, /Azure Key Vault unreachable at https:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    t.is(kmsCause(await t.throwsAsync(Vault.open(fresh)))?.reason, 'unreachable');
    await t.throwsAsync(open(t, { keyUrl, keyring: keyringPath() }, local), { code: 'ERR_SIFREDB_KMS', message: /unreachable/ });
  });

  test.serial(`${flavor.name}: corrupted keyring entries: ERR_SIFREDB_KEY, and the file is never overwritten`, async (t) => {
    const srv = server();
    const keyUrl = newKey(srv);
    const path = keyringPath();
    const provider = await open(t, { keyUrl, keyring: path });
    await provider.rotate();
    await provider.rotate();
    const original = JSON.parse(await readFile(path, 'utf8'));
    const doc = structuredClone(original);
    const [alg, version, data] = doc.versions[0].wraps[0].wrappedKey.split(':');
    const blob = Buffer.from(data, 'base64');
    blob[blob.length - 1] ^= 1;
    doc.versions[0].wraps[0].wrappedKey = `${alg}:${version}:${blob.toString('base64')}`;
    // Version 3's entry moved to version 2: Key Vault unwraps it, the binding suffix refuses it.
    doc.versions[1].wraps[0].wrappedKey = original.versions[2].wraps[0].wrappedKey;
    doc.versions[2].wraps[0].wrappedKey = 'RSA-OAEP-256:nothex!:AAAA';
    const tampered = JSON.stringify(doc);
    await writeFile(path, tampered);
    const reader = await open(t, { keyUrl, keyring: path });
    for (const [v, pattern] of [[1, /altered/], [2, /not bound to keyring .* version 2/], [3, /altered/]]) {
      const error = await t.throwsAsync(reader.loadKey(v), { code: 'ERR_SIFREDB_KEY' }, `version ${v}`);
      t.is(error.reason, 'invalid-ciphertext');
      t.regex(error.message, pattern);
    }
    t.is(await readFile(path, 'utf8'), tampered);
  });

  test.serial(`${flavor.name}: throttling and 5xx are retried by the SDK; a persistent one is a transient error and cached keys stay in use`, async (t) => {
    const srv = server();
    const keyUrl = newKey(srv);
    const path = keyringPath();
    const provider = await open(t, { keyUrl, keyring: path, cache: { maxKeyAgeMs: 1 } });
    const vault = await Vault.open(provider);
    const stored = vault.encryptToString('x@example.com', EMAIL);

    let fresh = await open(t, { keyUrl, keyring: path });
    await fresh.preload();
    fresh.forget();
    let mark = srv.calls.length;
    srv.fail('throttle', 2);
    t.is((await fresh.loadKey(1)).length, 32);
    t.deepEqual(callsSince(srv, mark), { fault: 2, unwrapkey: 1 }, '429 with Retry-After, retried');

    for (const [kind, status, reason] of [
      ['throttle', 429, 'throttled'],
      ['unavailable', 503, 'service'],
      ['internal', 500, 'service'],
    ]) {
      fresh.forget();
      mark = srv.calls.length;
      srv.fail(kind, 4);
      const error = await t.throwsAsync(fresh.loadKey(1), { code: 'ERR_SIFREDB_KMS' }, kind);
      t.is(error.httpStatusCode, status);
      t.is(error.reason, reason);
      t.true(error.transient);
      t.deepEqual(callsSince(srv, mark), { fault: 4 }, `${kind}: the request and three retries`);
    }

    await new Promise((resolve) => setTimeout(resolve, 5));
    srv.fail('throttle', 4);
    await vault.refresh();
    t.is(vault.decryptToString(stored, EMAIL), 'x@example.com');

    // A refusal (unlike an outage) past maxKeyAgeMs drops the cached key.
    srv.setDenied(keyName(keyUrl), true);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await t.throwsAsync(provider.loadKey(1), { code: 'ERR_SIFREDB_KMS', message: /access denied/ });
    srv.setDenied(keyName(keyUrl), false);
  });

  test.serial(`${flavor.name}: errors never contain key bytes, wrapped keys or the access token`, async (t) => {
    const local = await startAzureKeyVaultServer({ token: TOKEN, managedHsm: flavor.managedHsm });
    t.teardown(() => local.close());
    const keyUrl = newKey(local);
    const other = newKey(local);
    const path = keyringPath();
    const provider = await open(t, { keyUrl, keyring: path }, local);
    await provider.rotate();
    const keys = await Promise.all([1, 2].map(async (v) => Buffer.from(await provider.loadKey(v))));
    const wrapped = JSON.parse(await readFile(path, 'utf8')).versions.map((v) => v.wraps[0].wrappedKey);

    const errors = [];
    const capture = async (promise) => errors.push(await t.throwsAsync(promise));
    const wrong = await open(t, { keyUrl: other, keyring: path }, local);
    await capture(wrong.loadKey(2));
    await capture(Vault.open(wrong));
    local.fail('internal', 8);
    await capture(open(t, { keyUrl, keyring: path, preload: true }, local));
    local.setEnabled(keyName(keyUrl), false);
    await capture(open(t, { keyUrl, keyring: path, preload: true }, local));
    await capture(provider.rewrap(`${local.vaultUrl}/keys/missing`));
    // A credential that fails: its error text must not come through either.
    const failing = { async getToken() { throw Object.assign(new Error(`token endpoint said: ${TOKEN}`), { name: 'AuthenticationError' }); } };
    await capture(open(t, { keyUrl, keyring: keyringPath() }, local, failing));
    await local.close();
    await capture(open(t, { keyUrl, keyring: path, preload: true }, local));
    t.is(errors.length, 7);

    const forbidden = [TOKEN, ...keys.flatMap((k) => [k.toString('base64'), k.toString('base64url'), k.toString('hex')]), ...wrapped, ...wrapped.map((w) => w.split(':')[2])];
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
    t.is(errors[5].reason, 'credentials');
  });
}

test.serial('a credential that gives no token: a typed credentials error', async (t) => {
  const srv = servers.get(FLAVORS[0].name);
  const error = await t.throwsAsync(
    AzureKeyVaultProvider.open({
      keyUrl: newKey(srv),
      keyring: keyringPath(),
      credential: { getToken: async () => null },
      clientOptions: clientOptions(srv),
    }),
  );
  t.is(error.reason, 'credentials');
  t.false(error.transient);
  t.regex(error.message, /no usable Azure credential/);
});

test.serial('an endpoint that accepts connections but never answers: ETIMEDOUT after timeoutMs, no hang', async (t) => {
  const silent = createNetServer(() => {});
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const started = Date.now();
  const error = await t.throwsAsync(
    AzureKeyVaultProvider.open({
      keyUrl: `https://127.0.0.1:${silent.address().port}/keys/silent`,
      keyring: keyringPath(),
      credential: testCredential(),
      timeoutMs: 400,
    }),
  );
  t.is(error.reason, 'unreachable');
  t.is(error.networkErrorCode, 'ETIMEDOUT');
  t.true(Date.now() - started < 5_000);
});

test.serial('without @azure/keyvault-keys, or without @azure/identity and no credential: ERR_SIFREDB_INPUT naming the package', (t) => {
  for (const [blocked, withCredential] of [
    ['@azure/keyvault-keys', true],
    ['@azure/identity', false],
  ]) {
    const hook = `data:text/javascript,${encodeURIComponent(
      `export async function resolve(s, c, next) { if (s === ${JSON.stringify(blocked)}) { const e = new Error("Cannot find package " + s); e.code = "ERR_MODULE_NOT_FOUND"; throw e; } return next(s, c); }`,
    )}`;
    const register = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(hook)});`)}`;
    const script = `
      const { AzureKeyVaultProvider } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
      try {
        await AzureKeyVaultProvider.open({
          keyUrl: 'https://example.vault.azure.net/keys/k',
          keyring: '/nonexistent/keyring.json',
          ${withCredential ? 'credential: { async getToken() { return null; } },' : ''}
        });
        console.log('no error');
      } catch (error) {
        console.log(JSON.stringify({ code: error.code, message: error.message }));
      }`;
    const result = spawnSync(process.execPath, ['--import', register, '--input-type=module', '-e', script], { encoding: 'utf8' });
    t.is(result.status, 0, result.stderr);
    const out = JSON.parse(result.stdout.trim());
    t.is(out.code, 'ERR_SIFREDB_INPUT', blocked);
    t.true(out.message.includes(`npm install ${blocked}`), out.message);
  }
});

// --- live: a real Key Vault, only with credentials --------------------------------------------

const LIVE_KEY = process.env.SIFREDB_AZURE_KEY;
const live = Boolean(LIVE_KEY && Object.keys(process.env).some((name) => name.startsWith('AZURE_')));
if (!live) {
  console.warn(
    'kms-azure.spec.js: SKIPPED the live Azure Key Vault test: set SIFREDB_AZURE_KEY=https://<vault>.vault.azure.net/keys/<name> ' +
      'and DefaultAzureCredential settings (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET…; role "Key Vault Crypto User") to run it',
  );
}
(live ? test.serial : test.skip)('live Azure Key Vault: create, rotate, reopen and read back with DefaultAzureCredential', async (t) => {
  const path = keyringPath('live');
  const provider = await AzureKeyVaultProvider.create({ keyUrl: LIVE_KEY, keyring: path });
  t.teardown(() => provider.close());
  const vault = await Vault.open(provider);
  const first = vault.encryptToString('live-1@example.com', EMAIL);
  await provider.rotate();
  await vault.refresh();
  const second = vault.encryptToString('live-2@example.com', EMAIL);
  const fresh = await AzureKeyVaultProvider.open({ keyUrl: LIVE_KEY, keyring: path, createIfMissing: false, preload: true });
  t.teardown(() => fresh.close());
  const reader = await Vault.open(fresh);
  t.is(reader.decryptToString(first, EMAIL), 'live-1@example.com');
  t.is(reader.decryptToString(second, EMAIL), 'live-2@example.com');
  t.is((await fresh.rewrap()).versions, 2);
  t.true(SifreDBError.prototype.isPrototypeOf(await t.throwsAsync(AzureKeyVaultProvider.create({ keyUrl: LIVE_KEY, keyring: path }))));
});
