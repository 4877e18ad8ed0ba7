// The KMS keyring document formats and the binding of wrapped keys, frozen by
// test-vectors/kms-keyring.json: format 1 (AWS KMS only, what SifreDB wrote before format 2 and still
// writes for AWS-only keyrings) must stay readable and be written back byte for byte; format 2 (any
// providers, several wraps per version) likewise. No key service is called: opening an existing
// keyring and retiring a version are keyring-only operations.
//
// Runs on both backends (SIFREDB_BACKEND=native / js); nothing here depends on the backend.
import test from 'ava';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsKmsProvider, bindingAad, bindingContext, FileKeyringStore, validateKeyringDocument, VaultTransitProvider } from '../dist/index.js';
import { toFormat2, toStoredForm } from '../dist/keys/kms/keyring.js';

const vectors = JSON.parse(await readFile(new URL('../test-vectors/kms-keyring.json', import.meta.url), 'utf8'));

let dir;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sifredb-keyring-format-'));
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

let seq = 0;
async function file(text) {
  seq += 1;
  const path = join(dir, `keyring-${seq}.json`);
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

/** A KMS client that must not be used: these operations make no KMS call. */
const noKms = { send: async () => Promise.reject(new Error('no KMS call expected')) };

test('bindings: the AWS encryption context and the AAD bytes of every vector', (t) => {
  t.true(vectors.bindings.length >= 3);
  for (const { keyringId, version, context, aadUtf8, aadHex } of vectors.bindings) {
    t.deepEqual(bindingContext({ keyringId, version }), context);
    t.is(bindingAad({ keyringId, version }).toString('hex'), aadHex);
    t.is(bindingAad({ keyringId, version }).toString('utf8'), aadUtf8);
  }
});

test('documents: read from a file, converted to format 2 and back, written as the vector says', async (t) => {
  for (const vector of vectors.documents) {
    const path = await file(vector.fileText);
    const doc = await new FileKeyringStore(path).read();
    t.is(doc.formatVersion, JSON.parse(vector.fileText).formatVersion, vector.name);
    const stored = toStoredForm(toFormat2(doc));
    t.is(stored.formatVersion, vector.storedFormat, vector.name);
    t.is(`${JSON.stringify(stored, null, 2)}\n`, vector.storedText ?? vector.fileText, vector.name);
  }
});

test('a format-1 keyring written by earlier versions opens and is written back in format 1, byte for byte', async (t) => {
  const original = vectors.documents.find((d) => d.storedFormat === 1 && d.storedText === undefined).fileText;
  // Version 1 active, so that it can be retired (a keyring-only write).
  const active = original.replace('"status": "retired"', '"status": "active"');
  const path = await file(active);
  const provider = await AwsKmsProvider.open({ keyId: 'alias/billing', keyring: path, client: noKms, createIfMissing: false });
  t.teardown(() => provider.close());
  t.deepEqual((await provider.listVersions()).map((v) => [v.version, v.status]), [[1, 'active'], [2, 'active']]);
  t.deepEqual(provider.keyringDocument, JSON.parse(active));
  await provider.retire(1);
  t.is(await readFile(path, 'utf8'), original.replace('"revision": 3', '"revision": 4'));
});

test('a format-2 keyring is written back in format 2, byte for byte', async (t) => {
  const vector = vectors.documents.find((d) => d.name.includes('Vault Transit'));
  const path = await file(vector.fileText);
  const provider = await VaultTransitProvider.open({ address: 'http://127.0.0.1:9', token: 'unused', key: 'transit/keys/billing', keyring: path, createIfMissing: false });
  t.teardown(() => provider.close());
  await provider.retire(1);
  const expected = vector.fileText.replace('"revision": 2', '"revision": 3').replace('"status": "active"', '"status": "retired"');
  t.is(await readFile(path, 'utf8'), expected);
});

test('invalid documents: ERR_SIFREDB_KEY naming the problem', (t) => {
  for (const { name, json, error } of vectors.invalid) {
    const thrown = t.throws(() => validateKeyringDocument(json, 'test'), { code: 'ERR_SIFREDB_KEY' }, name);
    t.true(thrown.message.includes(error), `${name}: ${thrown.message}`);
  }
});

test('a keyring reached through a symlink is written through it: the link stays, the real file changes', async (t) => {
  if (process.platform === 'win32') return t.pass();
  const vector = vectors.documents.find((d) => d.name.includes('Vault Transit'));
  const realDir = join(dir, 'secret-volume');
  await mkdir(realDir, { recursive: true });
  const real = join(realDir, 'keyring.json');
  await writeFile(real, vector.fileText, { mode: 0o600 });
  const link = join(dir, 'keyring-link.json');
  await symlink(real, link);
  const provider = await VaultTransitProvider.open({ address: 'http://127.0.0.1:9', token: 'unused', key: 'transit/keys/billing', keyring: link, createIfMissing: false });
  t.teardown(() => provider.close());
  await provider.retire(1);
  t.true((await lstat(link)).isSymbolicLink(), 'the link is kept');
  t.is(JSON.parse(await readFile(real, 'utf8')).revision, 3, 'the real file got the write');
  t.is(((await lstat(real)).mode & 0o777), 0o600);
  t.deepEqual((await readdir(realDir)).sort(), ['keyring.json'], 'no temp or lock file left beside the real file');
});
