// MultiKmsProvider: one keyring, each data key wrapped under several KMS keys. Two local Vault
// Transit servers (helpers/vault-transit.js) stand for two regions or providers, and one test mixes
// AWS KMS (moto's server, helpers/moto.js) with Vault. Servers are stopped and restarted to show that
// reading needs any one of them, and writing all of them. Request counts come from the servers.
//
// Runs on both backends (SIFREDB_BACKEND=native / js). Serial: the tests stop and start shared servers.
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import {
  AwsKmsAdapter,
  AwsKmsProvider,
  EncryptionContext,
  MultiKmsProvider,
  SifreDBKmsError,
  Vault,
  VaultTransitAdapter,
} from '../dist/index.js';
import { countingKmsClient, startMoto } from './helpers/moto.js';
import { startVaultTransit } from './helpers/vault-transit.js';

const EMAIL = new EncryptionContext({ table: 'users', column: 'email' });

let east;
let west;
let dir;
let seq = 0;

test.before(async () => {
  [east, west] = await Promise.all([startVaultTransit(), startVaultTransit()]);
  dir = await mkdtemp(join(tmpdir(), 'sifredb-multi-'));
});

test.after.always(async () => {
  await Promise.all([east?.stop(), west?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.afterEach.always(async () => {
  await Promise.all([east.start(), west.start()]);
});

function keyringPath() {
  seq += 1;
  return join(dir, `keyring-${seq}.json`);
}

/** A derived key named `name-<n>` on the server; returns an adapter factory for it. */
function vaultKey(server, name) {
  seq += 1;
  const key = `${name}-${seq}`;
  server.createKey(key);
  return { name: key, adapter: (extra = {}) => new VaultTransitAdapter({ address: server.address, token: server.rootToken, key: `transit/keys/${key}`, maxAttempts: 1, ...extra }) };
}

async function open(t, adapters, options) {
  const provider = await MultiKmsProvider.open({ adapters, ...options });
  t.teardown(() => provider.close());
  return provider;
}

function kmsCause(error) {
  for (let e = error; e; e = e.cause) if (e instanceof SifreDBKmsError) return e;
  return undefined;
}

test.serial('create wraps each version under every key; open succeeds with whichever answers: east down, then west down', async (t) => {
  const a = vaultKey(east, 'east');
  const b = vaultKey(west, 'west');
  const path = keyringPath();
  east.resetCounts();
  west.resetCounts();
  const writer = await open(t, [a.adapter(), b.adapter()], { keyring: path, keyringId: 'billing' });
  t.is(east.count('datakey', a.name), 1, 'the first key makes the data key');
  t.is(west.count('encrypt', b.name), 1, 'the second wraps it');
  await writer.rotate();
  t.is(east.count('datakey', a.name), 2);
  t.is(west.count('encrypt', b.name), 2, 'rotation wraps under all');
  const doc = JSON.parse(await readFile(path, 'utf8'));
  t.is(doc.formatVersion, 2);
  t.deepEqual(doc.versions.map((v) => v.wraps.map((w) => w.keyId)), [
    [`transit/keys/${a.name}`, `transit/keys/${b.name}`],
    [`transit/keys/${a.name}`, `transit/keys/${b.name}`],
  ]);
  t.regex(writer.description, /^multi-kms\(vault-transit:.* transit\/keys\/east-\d+, vault-transit:.* transit\/keys\/west-\d+\) keyring file:/);
  const vault = await Vault.open(writer);
  const stored = [vault.encryptToString('one', EMAIL)];
  await writer.rotate();
  await vault.refresh();
  stored.push(vault.encryptToString('three', EMAIL));

  // Both up: the first key answers, one decrypt per version; the second is not called.
  east.resetCounts();
  west.resetCounts();
  const both = await Vault.open(await open(t, [a.adapter(), b.adapter()], { keyring: path }));
  t.is(east.count('decrypt', a.name), 3);
  t.is(west.count('decrypt'), 0);
  t.is(both.decryptToString(stored[1], EMAIL), 'three');

  // East down: a fresh process reads through west.
  await east.stop();
  west.resetCounts();
  const viaWest = await Vault.open(await open(t, [a.adapter(), b.adapter()], { keyring: path }));
  t.is(west.count('decrypt', b.name), 3, 'one decrypt per version at the second key');
  t.is(viaWest.decryptToString(stored[0], EMAIL), 'one');
  t.is(viaWest.decryptToString(stored[1], EMAIL), 'three');
  // Rotation needs every key: refused while east is down, nothing written.
  const before = await readFile(path, 'utf8');
  const rotateError = await t.throwsAsync(writer.rotate(), { code: 'ERR_SIFREDB_KMS' });
  t.is(rotateError.reason, 'unreachable');
  t.is(await readFile(path, 'utf8'), before);

  // East back, west down: reads through east.
  await east.start();
  await west.stop();
  const viaEast = await Vault.open(await open(t, [a.adapter(), b.adapter()], { keyring: path }));
  t.is(viaEast.decryptToString(stored[0], EMAIL), 'one');

  // Both down: a fresh open fails with one transient error listing both.
  await east.stop();
  const none = await open(t, [a.adapter(), b.adapter()], { keyring: path });
  const error = await t.throwsAsync(Vault.open(none), { code: 'ERR_SIFREDB_KEY' });
  const cause = kmsCause(error);
  t.is(cause.provider, 'multi');
  t.true(cause.transient);
  t.is(cause.failures.length, 2);
  t.true(cause.failures.every((f) => f.reason === 'unreachable'));
  t.regex(cause.message, /every wrapping key failed: \[1\] Vault decrypt failed .*\[2\] Vault decrypt failed/);
  // …while a process that loaded before keeps working.
  t.is(viaWest.decryptToString(stored[1], EMAIL), 'three');
});

test.serial('a shredded key (deleted) falls back to the other; shredding needs every wrapping key gone', async (t) => {
  const a = vaultKey(east, 'east');
  const b = vaultKey(west, 'west');
  const path = keyringPath();
  const writer = await open(t, [a.adapter(), b.adapter()], { keyring: path });
  const stored = (await Vault.open(writer)).encryptToString('tenant data', EMAIL);
  const admin = (server, method, keyPath, body) =>
    fetch(`${server.address}/v1/${keyPath}`, { method, headers: { 'x-vault-token': server.rootToken }, ...(body ? { body: JSON.stringify(body) } : {}) });
  await admin(east, 'POST', `transit/keys/${a.name}/config`, { deletion_allowed: true });
  await admin(east, 'DELETE', `transit/keys/${a.name}`);
  west.resetCounts();
  const reader = await Vault.open(await open(t, [a.adapter(), b.adapter()], { keyring: path }));
  t.is(reader.decryptToString(stored, EMAIL), 'tenant data');
  t.is(west.count('decrypt', b.name), 1);
  await admin(west, 'POST', `transit/keys/${b.name}/config`, { deletion_allowed: true });
  await admin(west, 'DELETE', `transit/keys/${b.name}`);
  const error = await t.throwsAsync(Vault.open(await open(t, [a.adapter(), b.adapter()], { keyring: path })), { code: 'ERR_SIFREDB_KEY' });
  const cause = kmsCause(error);
  t.false(cause.transient, 'both refused: not an outage');
  t.deepEqual(cause.failures.map((f) => f.reason), ['not-found', 'not-found']);
});

test.serial('adding a wrapping key wraps every version under it; removing one drops its wraps', async (t) => {
  const a = vaultKey(east, 'east');
  const b = vaultKey(west, 'west');
  const c = vaultKey(west, 'backup');
  const path = keyringPath();
  const provider = await open(t, [a.adapter(), b.adapter()], { keyring: path });
  await provider.rotate();
  await provider.rotate();
  const stored = (await Vault.open(provider)).encryptToString('kept', EMAIL);

  // A fresh instance (nothing loaded): adding unwraps each version once, then wraps under the new key.
  const fresh = await open(t, [a.adapter(), b.adapter()], { keyring: path });
  east.resetCounts();
  west.resetCounts();
  t.is(await fresh.addWrappingKey(c.adapter()), 3);
  t.is(east.count('decrypt', a.name), 3);
  t.is(west.count('encrypt', c.name), 3);
  t.is(fresh.wrappingKeys.length, 3);
  let doc = JSON.parse(await readFile(path, 'utf8'));
  t.true(doc.versions.every((v) => v.wraps.length === 3));
  await t.throwsAsync(fresh.addWrappingKey(c.adapter()), { code: 'ERR_SIFREDB_INPUT', message: /already wraps/ });

  // Remove east's key: no service call; its wraps are gone; reading needs west only.
  east.resetCounts();
  west.resetCounts();
  t.is(await fresh.removeWrappingKey(`transit/keys/${a.name}`), 3);
  t.is(east.log.length + west.log.length, 0);
  doc = JSON.parse(await readFile(path, 'utf8'));
  t.true(doc.versions.every((v) => v.wraps.every((w) => w.keyId !== `transit/keys/${a.name}`)));
  t.is(await fresh.rotate(), 4, 'rotation wraps under the remaining keys');
  await east.stop();
  const reader = await Vault.open(await open(t, [b.adapter(), c.adapter()], { keyring: path }));
  t.is(reader.decryptToString(stored, EMAIL), 'kept');
  // A provider still configured with the removed key cannot rotate (it would wrap under a key the
  // others do not have), and the last key of a version cannot be removed.
  await east.start();
  await t.throwsAsync(provider.rotate(), { code: 'ERR_SIFREDB_KEY', message: /add or remove wrapping keys/ });
  const only = await open(t, [c.adapter(), b.adapter()], { keyring: path });
  await only.removeWrappingKey(`transit/keys/${b.name}`);
  await t.throwsAsync(only.removeWrappingKey(`transit/keys/${c.name}`), { code: 'ERR_SIFREDB_INPUT', message: /only wrapping key/ });
});

test.serial('AWS KMS (moto) + Vault: an AWS keyring gains a Vault wrap (format 1 → 2); either service alone reads it', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const client = countingKmsClient(moto.endpoint);
  t.teardown(() => client.destroy());
  const { KeyMetadata } = await client.send(new CreateKeyCommand({}));
  const path = keyringPath();

  // An existing AWS-only keyring (format 1) …
  const aws = await AwsKmsProvider.open({ keyId: KeyMetadata.KeyId, keyring: path, client });
  t.teardown(() => aws.close());
  await aws.rotate();
  const stored = (await Vault.open(aws)).encryptToString('from aws days', EMAIL);
  t.is(JSON.parse(await readFile(path, 'utf8')).formatVersion, 1);

  // … opened as a multi keyring and given a Vault wrap.
  const v = vaultKey(west, 'dr');
  const awsKey = () => AwsKmsAdapter.make({ keyId: KeyMetadata.KeyId, client });
  const multi = await open(t, [await awsKey()], { keyring: path });
  west.resetCounts();
  client.resetCounts();
  t.is(await multi.addWrappingKey(v.adapter()), 2);
  t.deepEqual(client.calls, { DecryptCommand: 2 }, 'each version unwrapped once to be wrapped again');
  t.is(west.count('encrypt', v.name), 2);
  const doc = JSON.parse(await readFile(path, 'utf8'));
  t.is(doc.formatVersion, 2);
  t.deepEqual(doc.versions[0].wraps.map((w) => w.provider), ['aws-kms', 'vault-transit']);
  await t.throwsAsync(AwsKmsProvider.open({ keyId: KeyMetadata.KeyId, keyring: path, client }).then((p) => p.rotate()), {
    code: 'ERR_SIFREDB_KEY',
    message: /add or remove wrapping keys/,
  }, 'an AWS-only provider no longer rotates a keyring that Vault also wraps');

  // Vault down: AWS alone reads.
  await west.stop();
  client.resetCounts();
  const viaAws = await Vault.open(await open(t, [await awsKey(), v.adapter()], { keyring: path }));
  t.is(viaAws.decryptToString(stored, EMAIL), 'from aws days');
  t.deepEqual(client.calls, { DecryptCommand: 2 });

  // AWS down (moto stopped), Vault back: Vault alone reads.
  await west.start();
  await moto.stop();
  west.resetCounts();
  const viaVault = await Vault.open(await open(t, [await awsKey(), v.adapter()], { keyring: path }));
  t.is(viaVault.decryptToString(stored, EMAIL), 'from aws days');
  t.is(west.count('decrypt', v.name), 2);
});
