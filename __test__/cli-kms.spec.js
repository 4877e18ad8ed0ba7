// `sifredb keygen --kms …` / `sifredb keys …` with Vault Transit and multi-service keyrings, run as a
// user would (child processes of dist/cli/main.js), against local Vault Transit servers
// (helpers/vault-transit.js). The AWS path (`--kms-key`, `--kms aws:`) is covered with moto in
// cli.spec.js.
//
// Runs on both backends (SIFREDB_BACKEND=native / js).
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { startVaultTransit } from './helpers/vault-transit.js';

const EXIT = { ok: 0, usage: 2, key: 3 };
const SECRET = 'cli-kms-secret-4471';
const ctxArgs = ['--table', 'users', '--column', 'email'];

let east;
let west;
let dir;
let seq = 0;

test.before(async () => {
  [east, west] = await Promise.all([startVaultTransit(), startVaultTransit()]);
  dir = await mkdtemp(join(tmpdir(), 'sifredb-cli-kms-'));
});

test.after.always(async () => {
  await Promise.all([east?.stop(), west?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function setup(server = east) {
  seq += 1;
  const key = `cli-${seq}`;
  server.createKey(key);
  const path = join(dir, `keyring-${seq}.json`);
  return { key, path, env: { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken, SIFREDB_KEYS: path } };
}

test('keygen --kms vault:… makes a Vault keyring that keys list/rotate and encrypt/decrypt then use', async (t) => {
  const { key, path, env } = setup();
  const created = await runCli(['keygen', '--kms', `vault:transit/keys/${key}`, '--json'], { env });
  t.is(created.code, EXIT.ok, created.stderr);
  t.like(JSON.parse(created.stdout), { type: 'kms', current: 1, wrappedBy: [`vault-transit:${east.address} transit/keys/${key}`] });
  const doc = JSON.parse(await readFile(path, 'utf8'));
  t.is(doc.versions[0].wraps[0].provider, 'vault-transit');

  t.is((await runCli(['keys', 'rotate'], { env })).code, EXIT.ok);
  const list = await runCli(['keys', 'list', '--json'], { env });
  t.is(list.code, EXIT.ok, list.stderr);
  t.is(JSON.parse(list.stdout).current, 2);
  const ct = await runCli(['encrypt', SECRET, ...ctxArgs], { env });
  t.is(ct.code, EXIT.ok, ct.stderr);
  const pt = await runCli(['decrypt', ct.stdout.trim(), ...ctxArgs], { env });
  t.is(pt.stdout, `${SECRET}\n`);

  const again = await runCli(['keygen', '--kms', `vault:transit/keys/${key}`], { env });
  t.is(again.code, EXIT.key, 'an existing keyring is never replaced');

  // No token: a clear key error, no secret anywhere.
  const noToken = await runCli(['keys', 'list'], { env: { ...env, VAULT_TOKEN: '' } });
  t.is(noToken.code, EXIT.usage, noToken.stderr);
  t.regex(noToken.stderr, /no Vault token; pass token or appRole, or set VAULT_TOKEN/);
  // A token without rights on the key: exit 3 naming the path, never the token.
  const weak = east.addToken([]);
  const denied = await runCli(['decrypt', ct.stdout.trim(), ...ctxArgs], { env: { ...env, VAULT_TOKEN: weak } });
  t.is(denied.code, EXIT.key);
  t.regex(denied.stderr, new RegExp(`permission denied on transit/decrypt/${key}`));
  t.false(denied.stderr.includes(weak));
  t.false((denied.stderr + noToken.stderr + list.stderr).includes(east.rootToken));
});

test('AppRole from VAULT_ROLE_ID/VAULT_SECRET_ID; VAULT_NAMESPACE', async (t) => {
  seq += 1;
  const key = `cli-ns-${seq}`;
  east.createKey(key, { namespace: 'team-a' });
  const role = east.addAppRole(['*']);
  const path = join(dir, `keyring-ns-${seq}.json`);
  const env = { VAULT_ADDR: east.address, VAULT_TOKEN: '', VAULT_ROLE_ID: role.roleId, VAULT_SECRET_ID: role.secretId, VAULT_NAMESPACE: 'team-a', SIFREDB_KEYS: path };
  const logins = east.count('login', 'approle');
  const created = await runCli(['keygen', '--kms', `vault:transit/keys/${key}`], { env });
  t.is(created.code, EXIT.ok, created.stderr);
  t.is(east.count('login', 'approle'), logins + 1);
  t.is(JSON.parse(await readFile(path, 'utf8')).versions[0].wraps[0].keyId, `team-a/transit/keys/${key}`);
  // Reopened from its records (keyId team-a/transit/keys/…): with VAULT_NAMESPACE in the header, and
  // without it as a path prefix, which Vault accepts too.
  const ct = await runCli(['encrypt', SECRET, ...ctxArgs], { env });
  t.is(ct.code, EXIT.ok, ct.stderr);
  const viaPath = await runCli(['decrypt', ct.stdout.trim(), ...ctxArgs], { env: { ...env, VAULT_NAMESPACE: '' } });
  t.is(viaPath.stdout, `${SECRET}\n`, viaPath.stderr);
  const wrongSecret = await runCli(['decrypt', ct.stdout.trim(), ...ctxArgs], { env: { ...env, VAULT_SECRET_ID: 'nope' } });
  t.is(wrongSecret.code, EXIT.key);
  t.regex(wrongSecret.stderr, /login/);
  t.false(wrongSecret.stderr.includes(role.secretId));
});

test('several --kms: a multi-service keyring; with one Vault down the other opens it', async (t) => {
  const a = setup(east);
  seq += 1;
  const westKey = `cli-west-${seq}`;
  west.createKey(westKey);
  const specs = ['--kms', `vault:${east.address}/transit/keys/${a.key}`, '--kms', `vault:${west.address}/v1/transit/keys/${westKey}`];
  // VAULT_TOKEN is east's root token, which west does not know: creation needs every key, so nothing is written.
  const created = await runCli(['keygen', ...specs, '--json'], { env: { SIFREDB_KEYS: a.path, VAULT_TOKEN: east.rootToken } });
  t.is(created.code, EXIT.key, created.stderr);
  t.regex(created.stderr, /permission denied/);
  await t.throwsAsync(readFile(a.path), { code: 'ENOENT' });

  // Servers that share a token (as clusters with the same auth backend would).
  const shared = await Promise.all([startVaultTransit({ rootToken: 'hvs.shared-test-token-0001' }), startVaultTransit({ rootToken: 'hvs.shared-test-token-0001' })]);
  t.teardown(() => Promise.all(shared.map((s) => s.stop())));
  shared[0].createKey('k-one');
  shared[1].createKey('k-two');
  const multiSpecs = ['--kms', `vault:${shared[0].address}/transit/keys/k-one`, '--kms', `vault:${shared[1].address}/transit/keys/k-two`];
  const multiEnv = { SIFREDB_KEYS: join(dir, 'multi.json'), VAULT_TOKEN: 'hvs.shared-test-token-0001' };
  const made = await runCli(['keygen', ...multiSpecs, '--json'], { env: multiEnv });
  t.is(made.code, EXIT.ok, made.stderr);
  t.is(JSON.parse(made.stdout).wrappedBy.length, 2);
  t.is((await runCli(['keys', 'rotate', ...multiSpecs], { env: multiEnv })).code, EXIT.ok);
  const ct = (await runCli(['encrypt', SECRET, ...ctxArgs, ...multiSpecs], { env: multiEnv })).stdout.trim();
  const doc = JSON.parse(await readFile(multiEnv.SIFREDB_KEYS, 'utf8'));
  t.true(doc.versions.every((v) => v.wraps.length === 2));

  await shared[0].stop();
  const viaTwo = await runCli(['decrypt', ct, ...ctxArgs, ...multiSpecs], { env: multiEnv });
  t.is(viaTwo.stdout, `${SECRET}\n`, viaTwo.stderr);
  await shared[0].start();
  await shared[1].stop();
  const viaOne = await runCli(['decrypt', ct, ...ctxArgs, ...multiSpecs], { env: multiEnv });
  t.is(viaOne.stdout, `${SECRET}\n`, viaOne.stderr);
  const rotateDown = await runCli(['keys', 'rotate', ...multiSpecs], { env: multiEnv });
  t.is(rotateDown.code, EXIT.key, 'rotation needs every wrapping key');
  t.regex(rotateDown.stderr, /unreachable/);
});

test('--kms usage errors: unknown scheme, empty key, --kms with --kms-key', async (t) => {
  const { env } = setup();
  for (const spec of ['gpc:projects/x', 'vault:', 'transit/keys/x']) {
    const r = await runCli(['keygen', '--kms', spec], { env });
    t.is(r.code, EXIT.usage, spec);
    t.regex(r.stderr, /expected <scheme>:<key>, one of aws:.*; vault:/, spec);
  }
  const both = await runCli(['keygen', '--kms', 'vault:transit/keys/x', '--kms-key', 'alias/x'], { env });
  t.is(both.code, EXIT.usage);
  t.regex(both.stderr, /not both/);
});

test('keys add-kms / remove-kms / rewrap: a Vault keyring gains a second Vault, loses the first, follows a key rotation', async (t) => {
  const token = 'hvs.shared-test-token-0002';
  const [one, two] = await Promise.all([startVaultTransit({ rootToken: token }), startVaultTransit({ rootToken: token })]);
  t.teardown(() => Promise.all([one.stop(), two.stop()]));
  one.createKey('first');
  two.createKey('second');
  const first = `vault:${one.address}/transit/keys/first`;
  const second = `vault:${two.address}/transit/keys/second`;
  const path = join(dir, 'add-remove.json');
  const env = { SIFREDB_KEYS: path, VAULT_TOKEN: token };
  t.is((await runCli(['keygen', '--kms', first], { env })).code, EXIT.ok);
  t.is((await runCli(['keys', 'rotate', '--kms', first], { env })).code, EXIT.ok);
  const ct = (await runCli(['encrypt', SECRET, ...ctxArgs, '--kms', first], { env })).stdout.trim();

  const added = await runCli(['keys', 'add-kms', second, '--kms', first, '--json'], { env });
  t.is(added.code, EXIT.ok, added.stderr);
  t.is(JSON.parse(added.stdout).wrapped, 2);
  t.is(two.count('encrypt', 'second'), 2);
  await one.stop();
  const viaSecond = await runCli(['decrypt', ct, ...ctxArgs, '--kms', first, '--kms', second], { env });
  t.is(viaSecond.stdout, `${SECRET}\n`, viaSecond.stderr);
  await one.start();

  const removed = await runCli(['keys', 'remove-kms', first, '--kms', first, '--kms', second, '--json'], { env });
  t.is(removed.code, EXIT.ok, removed.stderr);
  t.is(JSON.parse(removed.stdout).removed, 2);
  let doc = JSON.parse(await readFile(path, 'utf8'));
  t.true(doc.versions.every((v) => v.wraps.length === 1 && v.wraps[0].keyId === 'transit/keys/second'));
  const last = await runCli(['keys', 'remove-kms', second, '--kms', second], { env });
  t.is(last.code, EXIT.usage, 'the only wrapping key cannot be removed');

  await fetch(`${two.address}/v1/transit/keys/second/rotate`, { method: 'POST', headers: { 'x-vault-token': token } });
  const rewrapped = await runCli(['keys', 'rewrap', '--kms', second, '--json'], { env });
  t.is(rewrapped.code, EXIT.ok, rewrapped.stderr);
  t.is(two.count('rewrap', 'second'), 2);
  doc = JSON.parse(await readFile(path, 'utf8'));
  t.true(doc.versions.every((v) => v.wraps[0].wrappedKey.startsWith('vault:v2:')));
  const after = await runCli(['decrypt', ct, ...ctxArgs, '--kms', second], { env });
  t.is(after.stdout, `${SECRET}\n`, after.stderr);

  const fileStore = join(dir, 'file-keys.json');
  t.is((await runCli(['keygen', '--keys', fileStore])).code, EXIT.ok);
  const notKms = await runCli(['keys', 'rewrap', '--keys', fileStore]);
  t.is(notKms.code, EXIT.usage);
  t.regex(notKms.stderr, /not a KMS keyring/);
});
