// Key providers and the keyring: StaticKeyProvider, FileKeyProvider (permissions, atomic writes,
// corruption, crash safety), TenantKeyRouter (per-tenant keys, crypto-shredding), Keyring loading.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BlindIndex,
  DeterministicVault,
  EncryptionContext,
  FileKeyProvider,
  Keyring,
  StaticKeyProvider,
  TenantKeyRouter,
  Vault,
} from '../dist/index.js';

const ctx = EncryptionContext.of('users', 'email');
const DIST_INDEX = pathToFileURL(path.resolve('dist/index.js')).href;

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-keys-'));
const mode = (file) => fs.statSync(file).mode & 0o777;
const keyCode = { code: 'ERR_SIFREDB_KEY' };

async function newKeystore() {
  const dir = tempDir();
  const file = path.join(dir, 'keys.json');
  const provider = await FileKeyProvider.create(file);
  return { dir, file, provider };
}

/** Every key in a keystore file, as base64 — for checking that errors never quote one. */
const keysIn = (file) => JSON.parse(fs.readFileSync(file, 'utf8')).keys.map((k) => k.key);

// --- StaticKeyProvider ------------------------------------------------------------------------------

test('StaticKeyProvider: bytes, base64 and base64url give the same key', async (t) => {
  const key = randomBytes(32);
  const [a, b, c] = await Promise.all(
    [key, key.toString('base64'), key.toString('base64url')].map((k) => Vault.open(new StaticKeyProvider(k))),
  );
  const ct = a.encrypt('x', ctx);
  t.is(b.decryptToString(ct, ctx), 'x');
  t.is(c.decryptToString(ct, ctx), 'x');
});

test('StaticKeyProvider: wrong sizes and encodings fail with KEY and do not quote the key', (t) => {
  for (const bad of [randomBytes(31), randomBytes(33), randomBytes(16).toString('base64'), 'not base64 at all!', '']) {
    const error = t.throws(() => new StaticKeyProvider(bad), keyCode);
    if (typeof bad === 'string' && bad.length > 4) t.false(error.message.includes(bad));
  }
  t.throws(() => new StaticKeyProvider(42), { code: 'ERR_SIFREDB_INPUT' });
  t.throws(() => new StaticKeyProvider({ keys: [] }), { code: 'ERR_SIFREDB_INPUT' });
  t.throws(() => new StaticKeyProvider({ keys: [{ version: 0, key: randomBytes(32) }] }), { code: 'ERR_SIFREDB_INPUT' });
  const key = randomBytes(32);
  t.throws(() => new StaticKeyProvider({ keys: [{ version: 1, key }, { version: 1, key }] }), { code: 'ERR_SIFREDB_INPUT' });
  t.throws(() => new StaticKeyProvider({ keys: [{ version: 1, key, status: 'retired' }] }), { code: 'ERR_SIFREDB_INPUT' });
});

test('StaticKeyProvider: several versions, current defaults to the highest active one; rotate and retire', async (t) => {
  const provider = new StaticKeyProvider({
    keys: [
      { version: 1, key: randomBytes(32) },
      { version: 2, key: randomBytes(32) },
      { version: 3, key: randomBytes(32), status: 'retired' },
    ],
  });
  t.is(await provider.currentVersion(), 2);
  t.deepEqual((await provider.listVersions()).map((v) => [v.version, v.status]), [
    [1, 'active'],
    [2, 'active'],
    [3, 'retired'],
  ]);
  t.is(await provider.rotate(), 4);
  t.is(await provider.currentVersion(), 4);
  await provider.retire(1);
  t.is((await provider.listVersions())[0].status, 'retired');
  await t.throwsAsync(() => provider.retire(4), keyCode);
  await t.throwsAsync(() => provider.loadKey(9), keyCode);
  const copy = await provider.loadKey(2);
  copy.fill(0);
  t.notDeepEqual(await provider.loadKey(2), copy, 'loadKey returns a copy');
});

test('StaticKeyProvider copies the caller’s key', async (t) => {
  const key = randomBytes(32);
  const provider = new StaticKeyProvider(key);
  const vault = await Vault.open(provider);
  const ct = vault.encrypt('x', ctx);
  key.fill(0);
  t.is((await Vault.open(provider)).decryptToString(ct, ctx), 'x');
});

// --- FileKeyProvider ----------------------------------------------------------------------------------

test('create writes a 0600 keystore with version 1', async (t) => {
  const { file, provider } = await newKeystore();
  t.is(mode(file), 0o600);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  t.is(json.format, 'sifredb-keystore');
  t.is(json.version, 1);
  t.is(json.current, 1);
  t.is(json.keys.length, 1);
  t.like(json.keys[0], { version: 1, status: 'active' });
  t.is(Buffer.from(json.keys[0].key, 'base64').length, 32);
  t.false(Number.isNaN(Date.parse(json.keys[0].createdAt)));
  t.is(provider.description, `file:${file}`);
  t.deepEqual(fs.readdirSync(path.dirname(file)), ['keys.json'], 'no temp file is left behind');
});

test('create refuses to overwrite an existing file unless asked', async (t) => {
  const { file } = await newKeystore();
  const before = fs.readFileSync(file);
  const error = await t.throwsAsync(() => FileKeyProvider.create(file), keyCode);
  t.regex(error.message, /refusing to overwrite/);
  t.deepEqual(fs.readFileSync(file), before);
  const other = path.join(path.dirname(file), 'notes.txt');
  fs.writeFileSync(other, 'not a keystore');
  await t.throwsAsync(() => FileKeyProvider.create(other), keyCode);
  t.is(fs.readFileSync(other, 'utf8'), 'not a keystore');
  await FileKeyProvider.create(file, { overwrite: true });
  t.notDeepEqual(fs.readFileSync(file), before);
  t.is(mode(file), 0o600);
  t.is(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp')).length, 0);
});

test('open refuses a file group or others can access, with an override', async (t) => {
  if (process.platform === 'win32') return t.pass('POSIX permissions only');
  const { file } = await newKeystore();
  for (const insecure of [0o640, 0o604, 0o620, 0o602, 0o644, 0o660]) {
    fs.chmodSync(file, insecure);
    const error = await t.throwsAsync(() => FileKeyProvider.open(file), keyCode);
    t.true(error.message.includes(`mode 0${insecure.toString(8)}`), error.message);
    t.regex(error.message, /allowInsecurePermissions/);
    const provider = await FileKeyProvider.open(file, { allowInsecurePermissions: true });
    t.is(await provider.currentVersion(), 1);
  }
  fs.chmodSync(file, 0o600);
  const provider = await FileKeyProvider.open(file);
  fs.chmodSync(file, 0o644);
  await t.throwsAsync(() => provider.loadKey(1), keyCode, 'checked on every read, not only at open');
  fs.chmodSync(file, 0o400);
  t.is(await (await FileKeyProvider.open(file)).currentVersion(), 1, 'read-only for the owner is fine');
});

test('corrupted, truncated or invalid keystores give KEY and are never rewritten', async (t) => {
  const { file } = await newKeystore();
  const good = fs.readFileSync(file, 'utf8');
  const json = JSON.parse(good);
  const key = json.keys[0].key;
  const variants = {
    truncated: good.slice(0, Math.floor(good.length / 2)),
    empty: '',
    garbage: '\u0000\u0001binary',
    notObject: '[]',
    wrongFormat: JSON.stringify({ ...json, format: 'other' }),
    futureVersion: JSON.stringify({ ...json, version: 2 }),
    noKeys: JSON.stringify({ ...json, keys: [] }),
    badCurrent: JSON.stringify({ ...json, current: 7 }),
    shortKey: JSON.stringify({ ...json, keys: [{ ...json.keys[0], key: key.slice(0, 20) }] }),
    badStatus: JSON.stringify({ ...json, keys: [{ ...json.keys[0], status: 'lost' }] }),
    badDate: JSON.stringify({ ...json, keys: [{ ...json.keys[0], createdAt: 'yesterday' }] }),
    duplicate: JSON.stringify({ ...json, keys: [json.keys[0], json.keys[0]] }),
    retiredCurrent: JSON.stringify({ ...json, keys: [{ ...json.keys[0], status: 'retired' }] }),
  };
  for (const [name, content] of Object.entries(variants)) {
    fs.writeFileSync(file, content, { mode: 0o600 });
    const error = await t.throwsAsync(() => FileKeyProvider.open(file), keyCode, name);
    t.false(error.message.includes(key.slice(0, 20)), `${name}: no key material in the message`);
    if (name === 'futureVersion') t.regex(error.message, /unsupported keystore version 2/);
    t.is(fs.readFileSync(file, 'utf8'), content, `${name}: file unchanged`);
  }
  // A provider opened while the file was good must not rewrite it once it is corrupted.
  fs.writeFileSync(file, good, { mode: 0o600 });
  const provider = await FileKeyProvider.open(file);
  fs.writeFileSync(file, variants.truncated, { mode: 0o600 });
  await t.throwsAsync(() => provider.rotate(), keyCode);
  await t.throwsAsync(() => provider.retire(1), keyCode);
  await t.throwsAsync(() => Vault.open(provider), keyCode);
  t.is(fs.readFileSync(file, 'utf8'), variants.truncated);
});

test('a missing keystore gives KEY', async (t) => {
  const error = await t.throwsAsync(() => FileKeyProvider.open(path.join(tempDir(), 'absent.json')), keyCode);
  t.regex(error.message, /ENOENT/);
});

test('rotate adds a version and makes it current; old keys are kept byte for byte', async (t) => {
  const { file, provider } = await newKeystore();
  const before = JSON.parse(fs.readFileSync(file, 'utf8'));
  t.is(await provider.rotate(), 2);
  t.is(await provider.rotate(), 3);
  const after = JSON.parse(fs.readFileSync(file, 'utf8'));
  t.is(after.current, 3);
  t.deepEqual(after.keys[0], before.keys[0]);
  t.deepEqual(after.keys.map((k) => k.version), [1, 2, 3]);
  t.is(new Set(after.keys.map((k) => k.key)).size, 3);
  t.is(mode(file), 0o600);
  // Concurrent rotations through one provider are serialized, none is lost.
  const versions = await Promise.all([provider.rotate(), provider.rotate(), provider.rotate()]);
  t.deepEqual(versions.sort(), [4, 5, 6]);
  t.is(JSON.parse(fs.readFileSync(file, 'utf8')).keys.length, 6);
  await provider.retire(1);
  t.is((await provider.listVersions())[0].status, 'retired');
  await t.throwsAsync(() => provider.retire(6), keyCode);
  await t.throwsAsync(() => provider.retire(60), keyCode);
});

test.serial('a failed rename leaves the old keystore intact and removes the temp file', async (t) => {
  const { dir, file, provider } = await newKeystore();
  const before = fs.readFileSync(file);
  const rename = fs.promises.rename;
  fs.promises.rename = async () => {
    throw Object.assign(new Error('simulated EIO'), { code: 'EIO' });
  };
  try {
    const error = await t.throwsAsync(() => provider.rotate(), keyCode);
    t.regex(error.message, /EIO/);
  } finally {
    fs.promises.rename = rename;
  }
  t.deepEqual(fs.readFileSync(file), before);
  t.deepEqual(fs.readdirSync(dir), ['keys.json']);
  t.is(await provider.rotate(), 2, 'the next rotation works');
});

test('a crash between the temp write and the rename leaves the old keystore intact', async (t) => {
  const { dir, file } = await newKeystore();
  const before = fs.readFileSync(file);
  // A child process rotates and is SIGKILLed at the rename: the temp file is fully written, the
  // keystore not yet replaced.
  const script = path.join(dir, 'crash.mjs');
  fs.writeFileSync(
    script,
    `import fs from 'node:fs';
import { FileKeyProvider } from ${JSON.stringify(DIST_INDEX)};
const provider = await FileKeyProvider.open(process.argv[2]);
fs.promises.rename = async () => { process.kill(process.pid, 'SIGKILL'); await new Promise(() => {}); };
await provider.rotate();`,
  );
  const result = spawnSync(process.execPath, [script, file], { encoding: 'utf8' });
  t.is(result.signal, 'SIGKILL', result.stderr);
  t.deepEqual(fs.readFileSync(file), before);
  const leftovers = fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));
  t.is(leftovers.length, 1, 'the crash left its temp file');
  t.is(JSON.parse(fs.readFileSync(path.join(dir, leftovers[0]), 'utf8')).current, 2, 'the temp file was complete');
  const provider = await FileKeyProvider.open(file);
  t.is(await provider.currentVersion(), 1);
  t.is(await provider.rotate(), 2);
  t.is(await (await FileKeyProvider.open(file)).currentVersion(), 2);
});

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

test('concurrent rotations from separate instances and processes each get their own version', async (t) => {
  const { dir, file } = await newKeystore();
  const script = path.join(dir, 'rotate.mjs');
  // Each child waits for a common start time, rotates twice and reports each version with the key
  // it then loads for it.
  fs.writeFileSync(
    script,
    `import { FileKeyProvider } from ${JSON.stringify(DIST_INDEX)};
const provider = await FileKeyProvider.open(process.argv[2]);
await new Promise((r) => setTimeout(r, Math.max(0, Number(process.argv[3]) - Date.now())));
const out = [];
for (let i = 0; i < 2; i++) {
  const version = await provider.rotate();
  out.push([version, Buffer.from(await provider.loadKey(version)).toString('base64')]);
}
console.log(JSON.stringify(out));`,
  );
  const instances = await Promise.all(Array.from({ length: 6 }, () => FileKeyProvider.open(file)));
  const start = String(Date.now() + 700);
  const children = Array.from({ length: 4 }, () => runNode(script, [file, start]));
  await new Promise((r) => setTimeout(r, Number(start) - Date.now()));
  const local = await Promise.all(
    instances.map(async (p) => {
      const version = await p.rotate();
      return [version, Buffer.from(await p.loadKey(version)).toString('base64')];
    }),
  );
  const reported = [...local];
  for (const result of await Promise.all(children)) {
    t.is(result.code, 0, result.stderr);
    reported.push(...JSON.parse(result.stdout));
  }
  const total = 6 + 4 * 2;
  const versions = reported.map(([v]) => v).sort((a, b) => a - b);
  t.deepEqual(versions, Array.from({ length: total }, (_, i) => i + 2), 'every rotation got its own version');
  const stored = JSON.parse(fs.readFileSync(file, 'utf8'));
  t.deepEqual(stored.keys.map((k) => k.version), Array.from({ length: total + 1 }, (_, i) => i + 1));
  t.is(stored.current, total + 1);
  for (const [version, key] of reported) {
    t.is(stored.keys.find((k) => k.version === version).key, key, `version ${version} loads back the rotated key`);
  }
  t.is(new Set(stored.keys.map((k) => k.key)).size, total + 1);
  t.deepEqual(fs.readdirSync(dir).sort(), ['keys.json', 'rotate.mjs'], 'no lock or temp file left behind');
});

test('keystore lock: a lock left by a dead process is broken; a live holder makes rotate fail with KEY', async (t) => {
  const { file, provider } = await newKeystore();
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  fs.writeFileSync(`${file}.lock`, JSON.stringify({ pid: dead, hostname: os.hostname(), createdAt: new Date().toISOString() }));
  t.is(await provider.rotate(), 2, 'the dead holder’s lock was broken');
  t.false(fs.existsSync(`${file}.lock`));

  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.teardown(() => holder.kill());
  fs.writeFileSync(`${file}.lock`, JSON.stringify({ pid: holder.pid, hostname: os.hostname(), createdAt: new Date().toISOString() }));
  const before = fs.readFileSync(file);
  const error = await t.throwsAsync(() => provider.rotate(), keyCode);
  t.regex(error.message, /locked by another process/);
  t.deepEqual(fs.readFileSync(file), before, 'nothing was written');
  t.true(fs.existsSync(`${file}.lock`), 'a live holder’s lock is left alone');
  holder.kill();
  fs.unlinkSync(`${file}.lock`);
  t.is(await provider.rotate(), 3);
});

test('a FileKeyProvider vault reads values after re-opening the file', async (t) => {
  const { file, provider } = await newKeystore();
  const ct = (await Vault.open(provider)).encryptToString('persisted', ctx);
  const reopened = await Vault.open(await FileKeyProvider.open(file));
  t.is(reopened.decryptToString(ct, ctx), 'persisted');
});

// --- TenantKeyRouter ------------------------------------------------------------------------------------

test('router: each tenant uses its own provider; the default serves the rest', async (t) => {
  const a = new StaticKeyProvider(randomBytes(32));
  const b = new StaticKeyProvider(randomBytes(32));
  const fallback = new StaticKeyProvider(randomBytes(32));
  const router = new TenantKeyRouter({ tenants: { a, b }, default: fallback });
  const vault = await Vault.open(router);
  const ctxA = ctx.withTenant('a');
  const ctxC = ctx.withTenant('c');
  const ct = vault.encrypt('tenant a data', ctxA);
  t.is((await Vault.open(a)).decryptToString(ct, ctxA), 'tenant a data', "encrypted under tenant a's own key");
  const tryDecrypt = async (p, c, value) => {
    try {
      (await Vault.open(p)).decrypt(value, c);
      return 'ok';
    } catch (error) {
      return error.code;
    }
  };
  t.is(await tryDecrypt(b, ctxA, ct), 'ERR_SIFREDB_AUTH');
  t.is((await Vault.open(fallback)).decryptToString(vault.encrypt('c data', ctxC), ctxC), 'c data');
  t.is((await Vault.open(fallback)).decryptToString(vault.encrypt('no tenant', ctx), ctx), 'no tenant');
  t.is(vault.currentVersionFor(ctxA), 1);
  t.is(vault.currentVersion, 1, 'the default provider’s version');
});

test('router: a tenant without a provider and no default fails with KEY', async (t) => {
  const router = new TenantKeyRouter({ tenants: new Map([['a', new StaticKeyProvider(randomBytes(32))]]) });
  const vault = await Vault.open(router);
  t.truthy(vault.encrypt('x', ctx.withTenant('a')));
  t.regex(t.throws(() => vault.encrypt('x', ctx.withTenant('zz')), keyCode).message, /no key provider for tenant "zz"/);
  t.throws(() => vault.encrypt('x', ctx), keyCode);
  t.throws(() => vault.currentVersion, keyCode);
  t.throws(() => new TenantKeyRouter({ tenants: { '': new StaticKeyProvider(randomBytes(32)) } }), { code: 'ERR_SIFREDB_INPUT' });
  t.throws(() => new TenantKeyRouter({ tenants: { a: {} } }), { code: 'ERR_SIFREDB_INPUT' });
});

test('router: a tenant whose keys are gone (crypto-shredded) fails alone, with the cause kept', async (t) => {
  const shredded = await newKeystore();
  const kept = await newKeystore();
  const victim = ctx.withTenant('shredded');
  const survivor = ctx.withTenant('kept');
  const router = new TenantKeyRouter({ tenants: { shredded: shredded.provider, kept: kept.provider } });
  const before = await Vault.open(router);
  const old = before.encrypt('gone forever', victim);
  fs.rmSync(shredded.file);
  const vault = await Vault.open(router);
  const error = t.throws(() => vault.decrypt(old, victim), keyCode);
  t.regex(error.message, /tenant "shredded"/);
  t.is(error.cause?.code, 'ERR_SIFREDB_KEY');
  t.regex(error.cause.message, /ENOENT/);
  t.throws(() => vault.encrypt('x', victim), keyCode);
  t.is(vault.decryptToString(vault.encrypt('still here', survivor), survivor), 'still here');
  // refresh() also isolates the failure; the already open vault loses the tenant after it.
  await before.refresh();
  t.throws(() => before.decrypt(old, victim), keyCode);
  const index = await BlindIndex.open(router, { name: 'email' });
  t.throws(() => index.compute('x', victim), keyCode);
  t.truthy(index.compute('x', survivor));
});

test('router: a default provider that cannot load fails open()', async (t) => {
  const gone = await newKeystore();
  fs.rmSync(gone.file);
  await t.throwsAsync(() => Vault.open(new TenantKeyRouter({ tenants: {}, default: gone.provider })), keyCode);
});

test('router: tenants added later are picked up by refresh()', async (t) => {
  const router = new TenantKeyRouter({ tenants: {} });
  const vault = await Vault.open(router);
  const newTenant = ctx.withTenant('new');
  t.throws(() => vault.encrypt('x', newTenant), keyCode);
  router.set('new', new StaticKeyProvider(randomBytes(32)));
  await vault.refresh();
  t.is(vault.decryptToString(vault.encrypt('x', newTenant), newTenant), 'x');
  t.true(router.delete('new'));
  await vault.refresh();
  t.throws(() => vault.encrypt('x', newTenant), keyCode);
});

// --- Keyring -----------------------------------------------------------------------------------------------

/** A provider that counts calls and checks that key loads overlap (are issued in parallel). */
class CountingProvider {
  description = 'counting';
  loads = 0;
  inFlight = 0;
  maxInFlight = 0;
  returned = [];
  #inner;
  constructor(inner) {
    this.#inner = inner;
  }
  listVersions() {
    return this.#inner.listVersions();
  }
  currentVersion() {
    return this.#inner.currentVersion();
  }
  rotate() {
    return this.#inner.rotate();
  }
  async loadKey(version) {
    this.loads++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((resolve) => setTimeout(resolve, 10));
    this.inFlight--;
    const key = await this.#inner.loadKey(version);
    this.returned.push(key);
    return key;
  }
}

test('keyring: loads every version once, in parallel, and zeroes the returned key buffers', async (t) => {
  const inner = new StaticKeyProvider({ keys: [1, 2, 3, 4].map((version) => ({ version, key: randomBytes(32) })) });
  const provider = new CountingProvider(inner);
  const keyring = await Keyring.open(provider);
  t.is(provider.loads, 4);
  t.is(provider.maxInFlight, 4, 'loadKey calls overlap');
  t.true(provider.returned.every((key) => key.every((byte) => byte === 0)), 'JS copies are zeroed');
  t.deepEqual(keyring.versions, [1, 2, 3, 4]);
  t.is(keyring.currentVersion, 4);
  const vault = await Vault.open(keyring);
  const dvault = await DeterministicVault.open(keyring);
  const index = await BlindIndex.open(keyring, { name: 'email' });
  for (let i = 0; i < 50; i++) {
    vault.decrypt(vault.encrypt(`v${i}`, ctx), ctx);
    dvault.queryTerms(`v${i}`, ctx);
    index.queryTerms(`v${i}`, ctx);
  }
  t.is(provider.loads, 4, 'operations never go back to the provider');
  await vault.refresh();
  t.is(provider.loads, 8, 'refresh reloads');
});

test('keyring: a provider failure rejects open with KEY and keeps the cause', async (t) => {
  const provider = new CountingProvider(new StaticKeyProvider(randomBytes(32)));
  provider.loadKey = async () => {
    throw new Error('KMS unreachable');
  };
  const error = await t.throwsAsync(() => Keyring.open(provider), keyCode);
  t.is(error.cause.message, 'KMS unreachable');
  const badKey = new CountingProvider(new StaticKeyProvider(randomBytes(32)));
  badKey.loadKey = async () => new Uint8Array(16);
  await t.throwsAsync(() => Keyring.open(badKey), keyCode);
});

test('keyring: a failed refresh keeps the old keys working', async (t) => {
  const { file, provider } = await newKeystore();
  const vault = await Vault.open(provider);
  const ct = vault.encrypt('x', ctx);
  const good = fs.readFileSync(file);
  fs.writeFileSync(file, '{', { mode: 0o600 });
  await t.throwsAsync(() => vault.refresh(), keyCode);
  t.is(vault.decryptToString(ct, ctx), 'x');
  fs.writeFileSync(file, good, { mode: 0o600 });
});

test('keyring: a small cache still serves many contexts correctly', async (t) => {
  const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)), { cacheSize: 2 });
  const vault = await Vault.open(keyring);
  const contexts = Array.from({ length: 20 }, (_, i) => EncryptionContext.of('t', `c${i}`));
  const cts = contexts.map((c, i) => vault.encrypt(`value ${i}`, c));
  contexts.forEach((c, i) => t.is(vault.decryptToString(cts[i], c), `value ${i}`));
  await t.throwsAsync(() => Keyring.open(new StaticKeyProvider(randomBytes(32)), { cacheSize: 1.5 }), { code: 'ERR_SIFREDB_INPUT' });
});

test('key-provider errors never contain key material', async (t) => {
  const { file, provider } = await newKeystore();
  await provider.rotate();
  const keys = keysIn(file);
  const failures = [
    () => provider.loadKey(99),
    () => provider.retire(2),
    () => FileKeyProvider.create(file),
    async () => {
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"version": 1', '"version": 0'), { mode: 0o600 });
      return FileKeyProvider.open(file);
    },
  ];
  for (const fail of failures) {
    const error = await t.throwsAsync(fail);
    const text = `${error.message} ${error.cause?.message ?? ''}`;
    for (const key of keys) t.false(text.includes(key.slice(0, 16)));
  }
});
