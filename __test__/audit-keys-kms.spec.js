// Audit keys wrapped under KMS (docs/AUDIT.md): the Ed25519 secret key stored wrapped by an envelope
// adapter — here Vault Transit, against the local Transit server of helpers/vault-transit.js — never
// in the file in clear; unwrapped only to sign, bound to its key id; rotation stays wrapped.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_DDL, AuditKeyFile, backend, ed25519, openDatabase, VaultTransitAdapter } from '../dist/index.js';
import { runCli } from './helpers/cli.js';
import { startVaultTransit } from './helpers/vault-transit.js';

const server = await startVaultTransit();
test.after.always(() => server.stop());
const dir = mkdtempSync(join(tmpdir(), 'sifredb-audit-kms-'));
let files = 0;
const adapterFor = (key) => new VaultTransitAdapter({ address: server.address, token: server.rootToken, key: `transit/keys/${key}` });

test(`audit keys wrapped under Vault Transit: no secret in the file, signatures verify, rotation stays wrapped [${backend}]`, async (t) => {
  server.createKey('audit-a');
  const kms = adapterFor('audit-a');
  const path = join(dir, `audit-${(files += 1)}.json`);
  const file = await AuditKeyFile.create(path, { kms });
  const stored = JSON.parse(readFileSync(path, 'utf8'));
  t.is(stored.keys[0].secretKey, undefined);
  t.like(stored.keys[0].wrappedSecretKey, { provider: 'vault-transit', keyId: 'transit/keys/audit-a' });
  const signer = await file.signer();
  const message = Buffer.from('record bytes');
  const [publicKey] = await file.publicKeys();
  t.true(ed25519.verify(publicKey.publicKey, message, signer.sign(message)));
  signer.close();
  t.true(server.count('decrypt', 'audit-a') >= 1, 'the secret came from the KMS');

  // Opened again with the adapter: signs; without it: a key error naming the wrap, no secret.
  const reopened = await AuditKeyFile.open(path, { kms });
  (await reopened.signer()).close();
  const error = await t.throwsAsync((await AuditKeyFile.open(path)).signer(), { code: 'ERR_SIFREDB_KEY', message: /wrapped under KMS \(vault-transit transit\/keys\/audit-a\): open the file with \{ kms \}/ });
  t.false(error.message.includes(stored.keys[0].wrappedSecretKey.wrappedKey));
  await t.throwsAsync((await AuditKeyFile.open(path)).rotate(), { code: 'ERR_SIFREDB_KEY', message: /wrapped under KMS/ });

  const rotated = await reopened.rotate();
  const after = JSON.parse(readFileSync(path, 'utf8'));
  t.is(after.keys.length, 2);
  t.true(after.keys.every((k) => k.secretKey === undefined && k.wrappedSecretKey !== undefined));
  const signer2 = await reopened.signer();
  t.deepEqual(Buffer.from(signer2.keyId), Buffer.from(rotated.keyId));
  t.true(ed25519.verify(rotated.publicKey, message, signer2.sign(message)));
  signer2.close();
});

test(`a wrapped audit key moved to another entry, or unwrapped under another key, is refused [${backend}]`, async (t) => {
  server.createKey('audit-b');
  server.createKey('audit-other');
  const kms = adapterFor('audit-b');
  const path = join(dir, `audit-${(files += 1)}.json`);
  const file = await AuditKeyFile.create(path, { kms });
  await file.rotate();
  const stored = JSON.parse(readFileSync(path, 'utf8'));
  // The current (second) entry given the first entry's wrap: bound to the first key id (and not the
  // secret of its public key), so it is refused, by the KMS binding or by the public-key check.
  const moved = structuredClone(stored);
  moved.keys[1].wrappedSecretKey = stored.keys[0].wrappedSecretKey;
  writeFileSync(path, JSON.stringify(moved), { mode: 0o600 });
  await t.throwsAsync((await AuditKeyFile.open(path, { kms })).signer(), { code: 'ERR_SIFREDB_KEY' });
  // The right wrap, but an adapter on another Transit key cannot open it.
  writeFileSync(path, JSON.stringify(stored), { mode: 0o600 });
  const other = await t.throwsAsync((await AuditKeyFile.open(path, { kms: adapterFor('audit-other') })).signer());
  t.true(['ERR_SIFREDB_KEY', 'ERR_SIFREDB_KMS'].includes(other.code), other.code);
  // A malformed entry is refused when the file is read.
  const broken = structuredClone(stored);
  broken.keys[0].secretKey = 'AAAA';
  writeFileSync(path, JSON.stringify(broken), { mode: 0o600 });
  await t.throwsAsync(AuditKeyFile.open(path, { kms }), { code: 'ERR_SIFREDB_KEY', message: /one of "secretKey" and "wrappedSecretKey"/ });
});

test(`sifredb audit keygen --kms vault:…; rotate and checkpoint reopen it under the key its wrap records [${backend}]`, async (t) => {
  server.createKey('audit-cli');
  const path = join(dir, `audit-${(files += 1)}.json`);
  const env = { SIFREDB_BACKEND: backend, VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
  let run = await runCli(['audit', 'keygen', '--audit-keys', path, '--kms', 'vault:transit/keys/audit-cli'], { env });
  t.is(run.code, 0, run.stderr);
  t.false(readFileSync(path, 'utf8').includes('"secretKey"'));
  run = await runCli(['audit', 'rotate', '--audit-keys', path], { env });
  t.is(run.code, 0, run.stderr);
  t.true(JSON.parse(readFileSync(path, 'utf8')).keys.every((k) => k.wrappedSecretKey?.keyId === 'transit/keys/audit-cli'));
  const db = join(dir, `db-${files}`);
  const database = await openDatabase(db);
  for (const statement of AUDIT_DDL) await database.query(statement);
  await database.close();
  const decrypts = server.count('decrypt', 'audit-cli');
  run = await runCli(['audit', 'checkpoint', '--db', db, '--table', 'users', '--audit-keys', path], { env });
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(run.stdout).count, '0');
  t.true(server.count('decrypt', 'audit-cli') > decrypts, 'signed with the secret unwrapped by Vault');
  run = await runCli(['audit', 'checkpoint', '--db', db, '--table', 'users', '--audit-keys', path], { env: { ...env, VAULT_TOKEN: '' } });
  // No token: exit 2 (fix the environment), as for the keystore's --kms; no secret anywhere.
  t.is(run.code, 2, run.stderr);
  t.regex(run.stderr, /no Vault token; pass token or appRole, or set VAULT_TOKEN/);
  t.false(run.stderr.includes(server.rootToken));
});
