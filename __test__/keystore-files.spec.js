// Keystore files are read exactly as KEYS.md ("The keystore file, byte for byte") specifies, no
// error quotes file content, and every write through a symlink replaces the real file atomically and
// keeps the link (library and CLI: create --overwrite / keygen --force, rotate, retire).
import test from 'ava';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FileKeyProvider } from '../dist/index.js';
import { runCli } from './helpers/cli.js';

const KEY_V1 = Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64');

async function scratch(t) {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'sifredb-keystore-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A valid keystore document as the writer lays it out, to be altered by each case. */
function keystore(entry = {}, top = {}) {
  return {
    format: 'sifredb-keystore',
    version: 1,
    current: 1,
    keys: [{ version: 1, createdAt: '2025-01-10T09:00:00.000Z', status: 'active', key: KEY_V1, ...entry }],
    ...top,
  };
}

async function writeText(path, text) {
  await fsp.writeFile(path, text, { mode: 0o600 });
  await fsp.chmod(path, 0o600);
}

test('the reference keystore opens, and the writer output is read back', async (t) => {
  const dir = await scratch(t);
  const path = join(dir, 'k.json');
  await writeText(path, `${JSON.stringify(keystore(), null, 2)}\n`);
  const provider = await FileKeyProvider.open(path);
  t.deepEqual(Buffer.from(await provider.loadKey(1)).toString('base64'), KEY_V1);
  // Whitespace and member order are not part of the rules: a reformatted file still opens.
  await writeText(path, JSON.stringify({ keys: keystore().keys, current: 1, version: 1, format: 'sifredb-keystore' }));
  await t.notThrowsAsync(FileKeyProvider.open(path));
  const created = await FileKeyProvider.create(join(dir, 'new.json'));
  await created.rotate();
  await t.notThrowsAsync(FileKeyProvider.open(created.path));
});

const MARK = 'Zm9vYmFyYmF6cXV4U0VDUkVUS0VZTUFURVJJQUwxMjM0'; // 44 characters, like key material

const refused = [
  ['key with surrounding whitespace', () => JSON.stringify(keystore({ key: ` ${KEY_V1}\n` }))],
  ['URL-safe key', () => JSON.stringify(keystore({ key: Buffer.from(KEY_V1, 'base64').toString('base64url') }))],
  ['key without padding', () => JSON.stringify(keystore({ key: KEY_V1.replace(/=$/, '') }))],
  ['key with two padding characters', () => JSON.stringify(keystore({ key: `${KEY_V1}=` }))],
  // The last data character of 32 bytes carries two unused bits: 'f' (…011111) sets them.
  ['key with stray bits', () => JSON.stringify(keystore({ key: `${KEY_V1.slice(0, 42)}f=` }))],
  ['key of 31 bytes', () => JSON.stringify(keystore({ key: Buffer.alloc(31, 7).toString('base64') }))],
  ['createdAt as a year', () => JSON.stringify(keystore({ createdAt: '2025' }))],
  ['createdAt without milliseconds', () => JSON.stringify(keystore({ createdAt: '2025-01-10T09:00:00Z' }))],
  ['createdAt on 30 February', () => JSON.stringify(keystore({ createdAt: '2025-02-30T09:00:00.000Z' }))],
  ['an unknown top-level member', () => JSON.stringify(keystore({}, { curent: 2 }))],
  ['an unknown entry member', () => JSON.stringify(keystore({ note: 'x' }))],
  ['a missing entry member', () => JSON.stringify({ ...keystore(), keys: [{ version: 1, status: 'active', key: KEY_V1 }] })],
  ['a duplicated member', () => JSON.stringify(keystore()).replace('"current":1', '"current":7,"current":1')],
  ['a duplicated entry member', () => JSON.stringify(keystore()).replace('"status":"active"', '"status":"retired","status":"active"')],
  ['key material as the version', () => JSON.stringify(keystore({}, { version: MARK }))],
  ['key material as a member name', () => JSON.stringify(keystore({}, { [MARK]: 1 }))],
  ['key material as the status', () => JSON.stringify(keystore({ status: MARK }))],
  ['key material as createdAt', () => JSON.stringify(keystore({ createdAt: MARK }))],
  ['key material as current', () => JSON.stringify(keystore({}, { current: MARK }))],
  ['key material as format', () => JSON.stringify(keystore({}, { format: MARK }))],
  ['key material as the key of another length', () => JSON.stringify(keystore({ key: `${MARK}AAAA` }))],
  ['not UTF-8', () => Buffer.concat([Buffer.from(JSON.stringify(keystore()).slice(0, -1)), Buffer.from([0xff]), Buffer.from('}')])],
  ['truncated JSON with key material', () => JSON.stringify(keystore({ key: MARK })).slice(0, 90)],
];

for (const [name, content] of refused) {
  test(`refused, untouched, and never quoted: ${name}`, async (t) => {
    const dir = await scratch(t);
    const path = join(dir, 'k.json');
    const data = content();
    await writeText(path, data);
    const before = await fsp.readFile(path);
    for (const attempt of [() => FileKeyProvider.open(path), async () => (await FileKeyProvider.open(path)).rotate()]) {
      const error = await t.throwsAsync(attempt);
      t.is(error.code, 'ERR_SIFREDB_KEY', error.message);
      for (const secret of [MARK, KEY_V1, KEY_V1.slice(0, 20), Buffer.from(KEY_V1, 'base64').toString('base64url').slice(0, 20)]) {
        t.false(error.message.includes(secret), error.message);
        t.false(String(error.cause?.message ?? '').includes(secret));
      }
    }
    const cli = await runCli(['keys', 'list', '--keys', path]);
    t.not(cli.code, 0);
    t.false(`${cli.stdout}${cli.stderr}`.includes(MARK));
    t.true((await fsp.readFile(path)).equals(before), 'a refused keystore is never rewritten');
  });
}

/** `dir/real/k.json` reached through `dir/links/a` → `../links/b` → `../real/k.json` (relative links). */
async function linkedKeystore(t) {
  const dir = await scratch(t);
  await fsp.mkdir(join(dir, 'real'));
  await fsp.mkdir(join(dir, 'links'));
  const real = join(dir, 'real', 'k.json');
  const b = join(dir, 'links', 'b');
  const a = join(dir, 'links', 'a');
  await fsp.symlink(relative(join(dir, 'links'), real), b);
  await fsp.symlink('b', a);
  return { dir, real, a, b };
}

async function assertLinksKept(t, { a, b, real }) {
  t.true((await fsp.lstat(a)).isSymbolicLink(), 'the first link is still a link');
  t.true((await fsp.lstat(b)).isSymbolicLink(), 'the second link is still a link');
  const stat = await fsp.stat(real);
  t.true(stat.isFile());
  t.is(stat.mode & 0o777, 0o600);
  const strays = (await fsp.readdir(join(real, '..'))).filter((n) => n.endsWith('.tmp') || n.endsWith('.lock'));
  t.deepEqual(strays, []);
}

test('library writes through a symlink chain replace the real file and keep the links', async (t) => {
  const paths = await linkedKeystore(t);
  const created = await FileKeyProvider.create(paths.a);
  await assertLinksKept(t, paths);
  t.is(await (await FileKeyProvider.open(paths.real)).currentVersion(), 1);

  t.is(await created.rotate(), 2);
  await assertLinksKept(t, paths);
  const direct = await FileKeyProvider.open(paths.real);
  t.is(await direct.currentVersion(), 2, 'the real keystore has the new version');

  await created.retire(1);
  await assertLinksKept(t, paths);
  t.deepEqual((await direct.listVersions()).map((v) => v.status), ['retired', 'active']);

  // create without overwrite refuses the existing real file behind the link; with it, replaces it.
  t.is((await t.throwsAsync(FileKeyProvider.create(paths.a))).code, 'ERR_SIFREDB_KEY');
  await FileKeyProvider.create(paths.a, { overwrite: true });
  await assertLinksKept(t, paths);
  t.is(await direct.currentVersion(), 1);
});

test('rotations through different links and the real path share one lock', async (t) => {
  const paths = await linkedKeystore(t);
  await FileKeyProvider.create(paths.real);
  const providers = await Promise.all([paths.a, paths.b, paths.real, paths.a].map((p) => FileKeyProvider.open(p)));
  const versions = await Promise.all(providers.map((p) => p.rotate()));
  t.deepEqual([...versions].sort(), [2, 3, 4, 5]);
  t.deepEqual((await providers[2].listVersions()).map((v) => v.version), [1, 2, 3, 4, 5]);
  await assertLinksKept(t, paths);
});

test('a dangling link to where the keystore should be: create writes the target', async (t) => {
  const paths = await linkedKeystore(t);
  await FileKeyProvider.create(paths.a);
  t.true((await fsp.lstat(paths.real)).isFile());
  await assertLinksKept(t, paths);
});

test('a symlink loop is an error, not a hang', async (t) => {
  const dir = await scratch(t);
  await fsp.symlink('y', join(dir, 'x'));
  await fsp.symlink('x', join(dir, 'y'));
  const error = await t.throwsAsync(FileKeyProvider.create(join(dir, 'x')));
  t.is(error.code, 'ERR_SIFREDB_KEY');
  t.regex(error.message, /ELOOP/);
});

test('CLI keygen --force, keys rotate and keys retire through a symlink keep the link', async (t) => {
  const paths = await linkedKeystore(t);
  const run = async (args) => {
    const r = await runCli(args);
    t.is(r.code, 0, r.stderr);
    return r;
  };
  await run(['keygen', '--keys', paths.a]);
  await assertLinksKept(t, paths);
  await run(['keys', 'rotate', '--keys', paths.a]);
  await assertLinksKept(t, paths);
  await run(['keys', 'retire', '1', '--keys', paths.b]);
  await assertLinksKept(t, paths);
  const direct = await FileKeyProvider.open(paths.real);
  t.deepEqual((await direct.listVersions()).map((v) => `${v.version}:${v.status}`), ['1:retired', '2:active']);
  t.not((await runCli(['keygen', '--keys', paths.a])).code, 0, 'keygen without --force refuses the existing real file');
  await run(['keygen', '--keys', paths.a, '--force']);
  await assertLinksKept(t, paths);
  t.deepEqual((await direct.listVersions()).map((v) => v.version), [1]);
});
