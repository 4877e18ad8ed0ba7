// Audit keys (lib/keys/audit-keys.ts): their own 0600 file, written atomically onto the real file
// behind a symlink, rotation, and a public key file that holds no secret.
import test from 'ava';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditKeyFile, backend, ed25519, parsePublicKeys } from '../dist/index.js';

const dir = () => mkdtempSync(join(tmpdir(), 'sifredb-audit-keys-'));

test(`create: a 0600 file, one current key whose signatures verify [${backend}]`, async (t) => {
  const path = join(dir(), 'audit.json');
  const file = await AuditKeyFile.create(path);
  t.is(statSync(path).mode & 0o777, 0o600);
  const signer = await file.signer();
  const [key] = await file.publicKeys();
  t.deepEqual(Buffer.from(signer.keyId), Buffer.from(key.keyId));
  const signature = signer.sign(Buffer.from('record'));
  t.true(ed25519.verify(key.publicKey, Buffer.from('record'), signature));
  signer.close();
  t.is(t.throws(() => signer.sign(Buffer.from('x'))).code, 'ERR_SIFREDB_KEY');
  t.is((await t.throwsAsync(AuditKeyFile.create(path))).code, 'ERR_SIFREDB_KEY', 'no overwrite by default');
});

test(`rotate: a new current key, older keys kept; the public key file has no secret [${backend}]`, async (t) => {
  const path = join(dir(), 'audit.json');
  const file = await AuditKeyFile.create(path);
  const first = await file.signer();
  const added = await file.rotate();
  const second = await file.signer();
  t.deepEqual(Buffer.from(second.keyId), Buffer.from(added.keyId));
  t.notDeepEqual(Buffer.from(first.keyId), Buffer.from(second.keyId));
  const text = await file.exportPublicKeys();
  t.false(text.includes('secretKey'));
  const stored = JSON.parse(readFileSync(path, 'utf8'));
  for (const k of stored.keys) t.false(text.includes(k.secretKey));
  const keys = parsePublicKeys(text);
  t.is(keys.length, 2);
  t.true(ed25519.verify(keys[0].publicKey, Buffer.from('m'), first.sign(Buffer.from('m'))));
  t.is(statSync(path).mode & 0o777, 0o600);
});

test(`writes go through a symlink to the real file, which stays 0600; the link stays a link [${backend}]`, async (t) => {
  const d = dir();
  const real = join(d, 'real-audit.json');
  const link = join(d, 'audit.json');
  symlinkSync('real-audit.json', link);
  const file = await AuditKeyFile.create(link);
  t.true(lstatSync(link).isSymbolicLink());
  t.is(readlinkSync(link), 'real-audit.json');
  t.is(statSync(real).mode & 0o777, 0o600);
  await file.rotate();
  t.true(lstatSync(link).isSymbolicLink());
  t.is(JSON.parse(readFileSync(real, 'utf8')).keys.length, 2);
});

test(`open refuses a group-readable, corrupted or mismatched file [${backend}]`, async (t) => {
  const path = join(dir(), 'audit.json');
  await AuditKeyFile.create(path);
  chmodSync(path, 0o640);
  t.is((await t.throwsAsync(AuditKeyFile.open(path))).code, 'ERR_SIFREDB_KEY');
  chmodSync(path, 0o600);
  const stored = JSON.parse(readFileSync(path, 'utf8'));
  const other = await AuditKeyFile.create(join(dir(), 'other.json'));
  stored.keys[0].publicKey = Buffer.from((await other.publicKeys())[0].publicKey).toString('base64');
  writeFileSync(path, JSON.stringify(stored), { mode: 0o600 });
  const error = await t.throwsAsync(AuditKeyFile.open(path));
  t.is(error.code, 'ERR_SIFREDB_KEY');
  t.false(error.message.includes(stored.keys[0].secretKey));
  writeFileSync(path, '{"format": "sifredb-audit-keys", "version": 1, "keys": [', { mode: 0o600 });
  t.regex((await t.throwsAsync(AuditKeyFile.open(path))).message, /not valid JSON/);
});
