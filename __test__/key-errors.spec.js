// An attacker's view of the key files and key services: no error — its message, its `cause` chain,
// the failures of a multi-key keyring, or the CLI's output (text or --json) — quotes file content or
// key bytes; the KMS keyring reader is as strict as docs/KMS.md ("The keyring file, byte for byte")
// and leaves a refused file untouched; every KMS keyring write through a symlink chain keeps the
// links, writes the real file and takes the real file's lock.
//
// Markers shaped like key material are planted in every field position of a keyring (format 1 and
// 2), as member names, as wrong JSON types, in Vault error bodies and AWS SDK errors, and in a proxy
// that echoes the request (an Encrypt request carries the data key).
//
// Runs on both backends (SIFREDB_BACKEND=native / js); the Vault Transit test server is started here.
import test from 'ava';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  AwsKmsAdapter,
  AwsKmsProvider,
  FileKeyringStore,
  MultiKmsProvider,
  SifreDBError,
  StaticKeyProvider,
  Vault,
  VaultTransitAdapter,
  VaultTransitProvider,
} from '../dist/index.js';
import { runCli } from './helpers/cli.js';
import { countingKmsClient, startMoto } from './helpers/moto.js';
import { startVaultTransit } from './helpers/vault-transit.js';

const vectors = JSON.parse(await fsp.readFile(new URL('../test-vectors/kms-keyring.json', import.meta.url), 'utf8'));

/** 44 base64 characters (33 bytes, no padding), the shape of key material. */
const MARK44 = Buffer.from('sifredb key-errors marker, 44 chr').toString('base64');
/** 64 hex characters: 32 bytes as hex. */
const HEX64 = createHash('sha256').update('sifredb key-errors hex marker').digest('hex');
/** The padded standard base64 of 32 bytes, as a keystore or a Vault answer holds a key. */
const B64_32 = createHash('sha256').update('sifredb key-errors base64 marker').digest('base64');
const MARKERS = [MARK44, HEX64, B64_32];

/** What must never appear: each marker, a 20-character piece of it (a cut quote), and B64_32's bytes in other encodings. */
function forbiddenFor(extra = []) {
  const bytes = Buffer.from(B64_32, 'base64');
  return [...MARKERS, ...MARKERS.map((m) => m.slice(12, 32)), bytes.toString('hex'), bytes.toString('base64url').slice(0, 40), ...extra];
}

/** Every message an error carries: its own, its `cause` chain's, its failures' (multi-key keyrings). */
function messages(error, seen = new Set()) {
  if (error === null || typeof error !== 'object' || seen.has(error)) return [];
  seen.add(error);
  const out = [String(error.message), String(error.stack ?? '')];
  out.push(...messages(error.cause, seen));
  for (const failure of error.failures ?? []) out.push(...messages(failure, seen));
  return out;
}

function assertQuotesNothing(t, error, label, extra = []) {
  t.true(error instanceof SifreDBError, `${label}: ${error?.message}`);
  const text = messages(error).join('\n');
  for (const secret of forbiddenFor(extra)) {
    if (text.includes(secret)) t.fail(`${label}: the error quotes content: ${error.message}`);
  }
  t.pass();
}

let vault;
let dir;
let seq = 0;
test.before(async () => {
  vault = await startVaultTransit();
  dir = await fsp.mkdtemp(join(tmpdir(), 'sifredb-key-errors-'));
});
test.after.always(async () => {
  await vault?.stop();
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

function newPath(name = 'keyring.json') {
  seq += 1;
  return join(dir, `${seq}-${name}`);
}

async function writeFile(path, data) {
  await fsp.writeFile(path, data, { mode: 0o600 });
  await fsp.chmod(path, 0o600);
}

function newVaultKey() {
  seq += 1;
  const name = `app-${seq}`;
  vault.createKey(name);
  return name;
}

const vaultOptions = (name, extra = {}) => ({ address: vault.address, token: vault.rootToken, key: `transit/keys/${name}`, ...extra });

// --- the keyring reader: every field position --------------------------------------------------

const FORMAT1 = JSON.parse(vectors.documents.find((d) => d.storedFormat === 1 && d.storedText === undefined).fileText);
const FORMAT2 = JSON.parse(vectors.documents.find((d) => d.name.includes('Vault Transit')).fileText);

/** The values planted in a field: markers, wrong JSON types, a huge string. */
const PLANTED = [
  ['MARK44', MARK44],
  ['HEX64', HEX64],
  ['B64_32', B64_32],
  ['MARK44 with a space', `${MARK44} x`],
  ['a fraction', 1.5],
  ['an unsafe integer', 2 ** 53 + 2],
  ['a negative number', -1],
  ['zero', 0],
  ['null', null],
  ['true', true],
  ['an array holding a marker', [MARK44, HEX64]],
  ['an object holding markers', { [MARK44]: B64_32, x: HEX64 }],
  ['a huge string of markers', `${MARK44}/`.repeat(2000)],
];

/** Field paths of a document, every level (the document itself excluded). */
function fieldPaths(value, prefix = []) {
  if (value === null || typeof value !== 'object') return [];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...fieldPaths(v, [...prefix, k])]);
}

function setAt(doc, path, value) {
  const copy = structuredClone(doc);
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k];
  node[path[path.length - 1]] = value;
  return copy;
}

/**
 * Identifiers that a valid keyring may hold and errors name (docs/KMS.md: they are not secret; they
 * appear in KMS audit logs and policies): keyringId, a wrap's keyId, format 1's kmsKeyArn. A marker
 * that fits their syntax makes a valid keyring, which opens.
 */
const IDENTIFIER = /^(keyringId|kmsKeyArn|keyId)$/;

/** `[label, document or text, whether a valid document]`, for both formats. */
function plantedKeyrings() {
  const cases = [];
  for (const [format, base] of [['format 1', FORMAT1], ['format 2', FORMAT2]]) {
    for (const path of fieldPaths(base)) {
      for (const [what, value] of PLANTED) {
        cases.push([`${format} ${path.join('.')} = ${what}`, setAt(base, path, value), String(path[path.length - 1])]);
      }
    }
    // A marker as a member name at every object level, and a repeated member hiding a marker.
    for (const path of [[], ...fieldPaths(base)].filter((p) => {
      let node = base;
      for (const k of p) node = node[k];
      return node !== null && typeof node === 'object' && !Array.isArray(node);
    })) {
      const withMember = structuredClone(base);
      let node = withMember;
      for (const k of path) node = node[k];
      node[MARK44] = B64_32;
      cases.push([`${format} ${path.join('.') || 'top'} has a member named MARK44`, withMember, 'member name']);
      for (const name of Object.keys(node).filter((n) => n !== MARK44)) {
        // The text with `"name": "<marker>",` inserted before the real member: JSON.parse keeps the last.
        const text = JSON.stringify(base, null, 2);
        const depthIndent = ' '.repeat(2 * (path.length + 1));
        const needle = `\n${depthIndent}"${name}":`;
        const at = nthObjectOffset(text, base, path, needle);
        if (at < 0) continue;
        cases.push([
          `${format} ${path.join('.') || 'top'} repeats "${name}", first holding MARK44`,
          `${text.slice(0, at)}\n${depthIndent}"${name}": "${MARK44}",${text.slice(at)}`,
          'repeated member',
        ]);
      }
    }
  }
  const valid = JSON.stringify(FORMAT2, null, 2);
  cases.push(['not UTF-8, holding a marker', Buffer.concat([Buffer.from(valid.replace('vault:v1:', `vault:v1:${MARK44}`).slice(0, -3)), Buffer.from([0xc3, 0x28]), Buffer.from('}\n')]), 'bytes']);
  cases.push(['a UTF-8 byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(valid)]), 'bytes']);
  cases.push(['truncated after a marker', valid.replace('vault:v1:', `vault:v1:${MARK44}`).slice(0, valid.indexOf('vault:v1:') + 30), 'bytes']);
  cases.push(['the whole file is a marker', B64_32, 'bytes']);
  cases.push(['a JSON string holding a marker', JSON.stringify(HEX64), 'bytes']);
  cases.push(['trailing text after the document', `${valid}${MARK44}`, 'bytes']);
  cases.push(['a keystore file with key material', JSON.stringify({ format: 'sifredb-keystore', version: 1, current: 1, keys: [{ version: 1, createdAt: '2025-01-10T09:00:00.000Z', status: 'active', key: B64_32 }] }), 'keystore']);
  return cases;
}

/** Offset of `needle` inside the object at `path` of the pretty-printed `text` (the first one after its start). */
function nthObjectOffset(text, base, path, needle) {
  // Find the object's own first line: walk the path through the pretty-printed text.
  let from = 0;
  let node = base;
  for (const k of path) {
    if (Array.isArray(node)) {
      // Skip to the k-th element's opening line at this depth.
      for (let i = 0; i <= k; i++) from = text.indexOf('{', from + 1);
    } else {
      from = text.indexOf(`"${k}":`, from);
    }
    node = node[k];
  }
  return text.indexOf(needle, from);
}

const CASES = plantedKeyrings();

test('the planted-keyring corpus covers every field of both formats', (t) => {
  const fields = new Set(CASES.map(([label]) => label.split(' = ')[0]));
  for (const [format, base] of [['format 1', FORMAT1], ['format 2', FORMAT2]]) {
    for (const path of fieldPaths(base)) t.true(fields.has(`${format} ${path.join('.')}`), path.join('.'));
  }
  t.true(CASES.filter(([, , kind]) => kind === 'repeated member').length >= 15);
});

test('every planted keyring: refused with ERR_SIFREDB_KEY quoting nothing and left untouched, or a valid keyring', async (t) => {
  let refused = 0;
  let accepted = 0;
  for (const [label, content, field] of CASES) {
    const path = newPath();
    const data = typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content, null, 2);
    await writeFile(path, data);
    const before = await fsp.readFile(path);
    let doc;
    try {
      doc = await new FileKeyringStore(path).read();
    } catch (error) {
      t.is(error.code, 'ERR_SIFREDB_KEY', label);
      assertQuotesNothing(t, error, label);
      refused += 1;
      // A write on top of a refused keyring is refused too, and never rewrites it.
      const write = await t.throwsAsync(VaultTransitProvider.open({ ...vaultOptions('unused'), keyring: path, createIfMissing: false }), undefined, label);
      t.is(write.code, 'ERR_SIFREDB_KEY', label);
      assertQuotesNothing(t, write, `${label} (provider)`);
      t.true((await fsp.readFile(path)).equals(before), `${label}: a refused keyring is never rewritten`);
      continue;
    }
    accepted += 1;
    // Accepted on purpose: a marker that fits an identifier's syntax (named in errors, not secret),
    // or a wrapped key (opaque service ciphertext). Nothing else may be accepted.
    t.true(IDENTIFIER.test(field) || field === 'wrappedKey', `${label} was accepted`);
    t.truthy(doc);
  }
  t.true(refused > 300, `${refused} refused`);
  t.true(accepted > 0 && accepted < 60, `${accepted} accepted`);
});

test('a strict reader: each rule of docs/KMS.md refused with ERR_SIFREDB_KEY', async (t) => {
  const arn = FORMAT1.versions[0].kmsKeyArn;
  const rules = [
    ['a stray bit in a format-1 wrappedKey', setAt(FORMAT1, ['versions', 0, 'wrappedKey'], 'AQIDAHhVeXNpZnJlZGItdGVzdC12ZWN0b3ItMR==')],
    ['an unpadded format-1 wrappedKey', setAt(FORMAT1, ['versions', 0, 'wrappedKey'], 'AQIDAHhVeXNpZnJlZGItdGVzdC12ZWN0b3ItMQ')],
    ['URL-safe base64 in an AWS wrap of format 2', setAt(FORMAT2, ['versions', 0, 'wraps', 0], { provider: 'aws-kms', keyId: arn, wrappedKey: '-_-_' })],
    ['a kmsKeyArn with a newline', setAt(FORMAT1, ['versions', 0, 'kmsKeyArn'], `${arn}\n`)],
    ['an empty kmsKeyArn', setAt(FORMAT1, ['versions', 0, 'kmsKeyArn'], '')],
    ['createdAt without milliseconds', setAt(FORMAT2, ['versions', 0, 'createdAt'], '2026-01-05T10:00:00Z')],
    ['createdAt as a date only', setAt(FORMAT2, ['versions', 0, 'createdAt'], '2026-01-05')],
    ['createdAt on 30 February', setAt(FORMAT2, ['versions', 0, 'createdAt'], '2026-02-30T10:00:00.000Z')],
    ['version 0', setAt(FORMAT2, ['versions', 0, 'version'], 0)],
    ['version 2^32', setAt(setAt(FORMAT2, ['versions', 1, 'version'], 2 ** 32), ['current'], 2 ** 32)],
    ['versions out of order', setAt(FORMAT2, ['versions'], [FORMAT2.versions[1], FORMAT2.versions[0]])],
    ['revision 0', setAt(FORMAT2, ['revision'], 0)],
    ['revision 1.5', setAt(FORMAT2, ['revision'], 1.5)],
    ['revision beyond 2^53-1', setAt(FORMAT2, ['revision'], 2 ** 53)],
    ['revision as a string', setAt(FORMAT2, ['revision'], '2')],
    ['current as a string', setAt(FORMAT2, ['current'], '2')],
    ['current names no version', setAt(FORMAT2, ['current'], 3)],
    ['keyringId starting with a symbol', setAt(FORMAT2, ['keyringId'], '-billing')],
    ['keyringId of 129 characters', setAt(FORMAT2, ['keyringId'], 'a'.repeat(129))],
    ['an unknown top-level member', { ...FORMAT2, note: 'x' }],
    ['an unknown version member', setAt(FORMAT2, ['versions', 0, 'note'], 'x')],
    ['an unknown wrap member', setAt(FORMAT2, ['versions', 0, 'wraps', 0, 'note'], 'x')],
    ['a format-2 member in format 1', setAt(FORMAT1, ['versions', 0, 'wraps'], [])],
    ['a format-1 member in format 2', setAt(FORMAT2, ['versions', 0, 'kmsKeyArn'], 'arn')],
    ['a missing wrap member', setAt(FORMAT2, ['versions', 0, 'wraps', 0], { provider: 'vault-transit', keyId: 'transit/keys/billing' })],
    ['17 wraps', setAt(FORMAT2, ['versions', 0, 'wraps'], Array.from({ length: 17 }, (_, i) => ({ provider: 'vault-transit', keyId: `transit/keys/k${i}`, wrappedKey: 'vault:v1:AA==' })))],
  ];
  for (const [label, doc] of rules) {
    const path = newPath();
    await writeFile(path, JSON.stringify(doc, null, 2));
    const error = await t.throwsAsync(new FileKeyringStore(path).read(), undefined, label);
    t.is(error?.code, 'ERR_SIFREDB_KEY', `${label}: ${error?.message}`);
  }
  // What is free: member order, whitespace, string escapes, numbers by value.
  const path = newPath();
  const reordered = { versions: FORMAT2.versions, current: 2.0, revision: 2, keyringId: 'billing-prod', formatVersion: 2, type: 'sifredb-kms-keyring' };
  await writeFile(path, JSON.stringify(reordered).replace('"active"', '"\\u0061ctive"'));
  t.deepEqual(await new FileKeyringStore(path).read(), FORMAT2);
});

test('the CLI (text and --json) quotes nothing from a refused keyring and exits 3', async (t) => {
  // One planted value per field (the CLI is a process per run), plus the whole-file cases.
  const picked = CASES.filter(([label, , field]) => label.endsWith('= MARK44') || ['bytes', 'member name', 'keystore'].includes(field) || label.includes('repeats "wrappedKey"'));
  t.true(picked.length > 30);
  const commands = [(path) => ['keys', 'list', '--keys', path], (path) => ['keys', 'list', '--json', '--keys', path], (path) => ['keys', 'rotate', '--keys', path, '--json']];
  let turn = 0;
  const env = { VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken };
  const queue = [...picked];
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [label, content, field] = next;
      const path = newPath();
      const data = typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content, null, 2);
      await writeFile(path, data);
      let valid = true;
      await new FileKeyringStore(path).read().catch(() => (valid = false));
      if (valid) continue;
      // One command per case, in turn (a process each): together they cover text, --json and a write.
      for (const args of [commands[turn++ % commands.length](path)]) {
        const run = await runCli(args, { env });
        // A valid keystore holding key material is listed and rotated; it never prints the key.
        t.is(run.code, field === 'keystore' ? 0 : 3, `${label}: ${args.join(' ')}: ${run.stderr}`);
        const output = `${run.stdout}${run.stderr}`;
        for (const secret of forbiddenFor()) t.false(output.includes(secret), `${label}: ${output}`);
      }
    }
  };
  // A few CLI processes at a time: the machine is shared.
  await Promise.all([worker(), worker(), worker()]);
});

// --- valid keyrings holding markers where the format allows them --------------------------------

test('a Vault wrappedKey holding a marker: the unwrap error quotes nothing', async (t) => {
  const name = newVaultKey();
  for (const marker of MARKERS) {
    const path = newPath();
    await writeFile(path, JSON.stringify(setAt(FORMAT2, ['versions', 0, 'wraps', 0], { provider: 'vault-transit', keyId: `transit/keys/${name}`, wrappedKey: `vault:v1:${marker}` }), null, 2));
    const provider = await VaultTransitProvider.open({ ...vaultOptions(name), keyring: path, createIfMissing: false });
    t.teardown(() => provider.close());
    const error = await t.throwsAsync(provider.loadKey(1));
    assertQuotesNothing(t, error, `wrappedKey vault:v1:${marker.slice(0, 6)}…`);
    const run = await runCli(['keys', 'list', '--keys', path, '--json'], { env: { VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken } });
    t.is(run.code, 0, run.stderr);
    for (const secret of forbiddenFor()) t.false(`${run.stdout}${run.stderr}`.includes(secret), 'keys list shows no wrapped key');
  }
});

// --- service error bodies ----------------------------------------------------------------------

test.serial('Vault error bodies holding markers are not quoted (every status class)', async (t) => {
  const name = newVaultKey();
  const path = newPath();
  const provider = await VaultTransitProvider.create({ ...vaultOptions(name, { maxAttempts: 1 }), keyring: path });
  t.teardown(() => provider.close());
  const said = [`invalid ciphertext ${MARK44}`, `near ${HEX64}: ${B64_32}`, `key=${B64_32.slice(0, 43)}`];
  for (const status of [400, 403, 404, 429, 500, 503]) {
    vault.inject(status, said, 1, (op) => op === 'decrypt');
    const fresh = await VaultTransitProvider.open({ ...vaultOptions(name, { maxAttempts: 1 }), keyring: path, createIfMissing: false });
    const error = await t.throwsAsync(fresh.loadKey(1));
    fresh.close();
    assertQuotesNothing(t, error, `Vault HTTP ${status}`);
    t.regex(error.message, /\[redacted\]/, `HTTP ${status}: the service's words are kept, the token-shaped runs redacted`);
  }
  // Key names are kept: they tell which key to fix, and they are not secret.
  const names = ['projects/app-prod/locations/europe-west1/keyRings/sifredb/cryptoKeys/billing', 'key/1234abcd-12ab-34cd-56ef-1234567890ab', 'keys/app/0123456789abcdef0123456789abcdef'];
  vault.inject(400, [`permission denied on ${names.join(', ')} near ${B64_32}`], 1, (op) => op === 'decrypt');
  const fresh = await VaultTransitProvider.open({ ...vaultOptions(name, { maxAttempts: 1 }), keyring: path, createIfMissing: false });
  const error = await t.throwsAsync(fresh.loadKey(1));
  fresh.close();
  assertQuotesNothing(t, error, 'key names and a marker');
  for (const kept of names) t.true(error.message.includes(kept), `${kept} in ${error.message}`);
});

test.serial('a proxy that echoes the request (the data key of an encrypt) into its error: the key is not quoted', async (t) => {
  const first = newVaultKey();
  const second = newVaultKey();
  const path = newPath();
  const provider = await MultiKmsProvider.create({ adapters: [new VaultTransitAdapter(vaultOptions(first))], keyring: path });
  t.teardown(() => provider.close());
  const key = Buffer.from(await provider.loadKey(1));
  const sent = [];
  const echoing = async (url, init) => {
    if (String(url).includes('/encrypt/')) {
      sent.push(String(init.body));
      // A WAF or proxy page that quotes the request body, in Vault's error shape and as plain text.
      return new Response(JSON.stringify({ errors: [`request rejected: ${init.body}`] }), { status: 400, headers: { 'content-type': 'application/json' } });
    }
    return fetch(url, init);
  };
  const error = await t.throwsAsync(provider.addWrappingKey(new VaultTransitAdapter(vaultOptions(second, { fetch: echoing, maxAttempts: 1 }))));
  t.true(sent.length > 0 && sent[0].includes(key.toString('base64')), 'the proxy did see the data key');
  assertQuotesNothing(t, error, 'echoing proxy', [key.toString('base64'), key.toString('base64').slice(10, 30), key.toString('hex')]);
  t.is(JSON.parse(await fsp.readFile(path, 'utf8')).versions[0].wraps.length, 1, 'nothing was written');
});

test('AWS KMS (moto): wrapped keys holding markers, unwrapped and re-wrapped, give errors that quote nothing', async (t) => {
  const moto = await startMoto();
  const client = countingKmsClient(moto.endpoint);
  t.teardown(async () => {
    client.destroy();
    await moto.stop();
  });
  const { CreateKeyCommand } = await import('@aws-sdk/client-kms');
  const [keyId, otherKeyId] = await Promise.all([0, 1].map(async () => (await client.send(new CreateKeyCommand({ Description: 'key-errors' }))).KeyMetadata.KeyId));
  const made = await AwsKmsProvider.create({ keyId, client, keyring: newPath() });
  const doc = made.keyringDocument;
  made.close();
  // A real blob of another keyring (bound to another keyring id) and the markers, all valid base64.
  const other = await AwsKmsProvider.create({ keyId, client, keyring: newPath() });
  const foreign = other.keyringDocument.versions[0].wrappedKey;
  other.close();
  for (const wrappedKey of [...MARKERS, foreign]) {
    const path = newPath();
    await writeFile(path, JSON.stringify(setAt(doc, ['versions', 0, 'wrappedKey'], wrappedKey), null, 2));
    const provider = await AwsKmsProvider.open({ keyId, client, keyring: path, createIfMissing: false });
    const unwrap = await t.throwsAsync(provider.loadKey(1));
    assertQuotesNothing(t, unwrap, 'moto Decrypt', [foreign, foreign.slice(20, 60)]);
    const rewrap = await t.throwsAsync(provider.rewrap(otherKeyId));
    assertQuotesNothing(t, rewrap, 'moto ReEncrypt', [foreign, foreign.slice(20, 60)]);
    provider.close();
    t.is(JSON.parse(await fsp.readFile(path, 'utf8')).versions[0].wrappedKey, wrappedKey, 'a failed rewrap writes nothing');
  }
});

/** An AWS SDK-shaped KMS client: GenerateDataKey / Encrypt / Decrypt over an in-memory map, with failures to order. */
function fakeKms(fail) {
  const blobs = new Map();
  return {
    config: { region: 'us-east-1' },
    async send(command) {
      const name = command.constructor.name;
      const failure = fail?.(name, command.input);
      if (failure) throw failure;
      if (name === 'GenerateDataKeyCommand' || name === 'EncryptCommand') {
        const plaintext = name === 'EncryptCommand' ? Buffer.from(command.input.Plaintext) : createHash('sha256').update(String(blobs.size)).digest();
        const blob = createHash('sha256').update(plaintext).update('blob').digest();
        blobs.set(blob.toString('hex'), plaintext);
        return { Plaintext: Uint8Array.from(plaintext), CiphertextBlob: blob, KeyId: `arn:aws:kms:us-east-1:111122223333:key/${command.input.KeyId}` };
      }
      if (name === 'DecryptCommand') {
        const plaintext = blobs.get(Buffer.from(command.input.CiphertextBlob).toString('hex'));
        if (!plaintext) throw awsError('InvalidCiphertextException', 400, 'bad blob');
        return { Plaintext: Uint8Array.from(plaintext) };
      }
      throw new Error(`unexpected ${name}`);
    },
  };
}

function awsError(name, status, message, requestId = 'req-1') {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status, requestId, attempts: 1 } });
}

test('AWS SDK errors holding markers (message, error name, an echoed Encrypt request) are not quoted', async (t) => {
  const keyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
  const ordered = [
    ['AccessDeniedException', 400, `User: arn:aws:iam::111122223333:user/app is not authorized; context ${MARK44}`],
    ['NotFoundException', 400, `Key 'arn:aws:kms:us-east-1:111122223333:key/${HEX64}' does not exist`],
    ['DisabledException', 400, `${B64_32} is disabled.`],
    ['ThrottlingException', 400, `Rate exceeded ${MARK44}`],
    ['KMSInternalException', 500, `internal ${HEX64}`],
    [MARK44, 400, 'an error code that is key material'],
    ['ValidationException', 400, `1 validation error detected: Value '${B64_32}' at 'plaintext'`],
  ];
  for (const [name, status, message] of ordered) {
    let armed = false;
    const client = fakeKms((command) => (armed && command === 'DecryptCommand' ? awsError(name, status, message, HEX64) : undefined));
    const keyring = newPath();
    const provider = await AwsKmsProvider.create({ keyId, client, keyring });
    armed = true;
    const fresh = await AwsKmsProvider.open({ keyId, client, keyring, createIfMissing: false });
    const error = await t.throwsAsync(fresh.loadKey(1));
    provider.close();
    fresh.close();
    assertQuotesNothing(t, error, `AWS ${name.slice(0, 20)}`);
  }
  // The data key in an echoed Encrypt request (adding a second AWS key to a keyring).
  const client = fakeKms();
  const provider = await MultiKmsProvider.create({ adapters: [await AwsKmsAdapter.make({ keyId, client })], keyring: newPath() });
  t.teardown(() => provider.close());
  const key = Buffer.from(await provider.loadKey(1));
  const echoing = fakeKms((command, input) =>
    command === 'EncryptCommand' ? awsError('ValidationException', 400, `bad request ${JSON.stringify({ ...input, Plaintext: Buffer.from(input.Plaintext).toString('base64') })}`) : undefined,
  );
  const error = await t.throwsAsync(provider.addWrappingKey(await AwsKmsAdapter.make({ keyId: 'other-key', client: echoing })));
  assertQuotesNothing(t, error, 'echoed Encrypt', [key.toString('base64'), key.toString('base64').slice(10, 30), key.toString('hex')]);
});

test('a key provider that reports key material as its current version or as a key: not quoted', async (t) => {
  const provider = (current, key = new Uint8Array(32)) => ({
    description: 'custom',
    listVersions: async () => [{ version: 1, createdAt: new Date(0), status: 'active' }],
    currentVersion: async () => current,
    loadKey: async () => key,
  });
  for (const current of [B64_32, HEX64, [MARK44]]) {
    const error = await t.throwsAsync(Vault.open(provider(current)));
    t.is(error.code, 'ERR_SIFREDB_KEY');
    assertQuotesNothing(t, error, 'current version');
  }
  const error = await t.throwsAsync(Vault.open(provider(1, Buffer.from(MARK44))));
  assertQuotesNothing(t, error, 'key of the wrong length');
  for (const key of [MARK44, `${B64_32}AAAA`, HEX64, `${B64_32.slice(0, 43)}`.replace(/.$/, '!')]) {
    assertQuotesNothing(t, t.throws(() => new StaticKeyProvider(key)), 'static key material');
  }
});

// --- symlinks ----------------------------------------------------------------------------------

/** `dir/real/keyring.json` reached through `dir/links/a` → `b` → `../real/keyring.json` (relative links). */
async function linkedKeyring() {
  seq += 1;
  const base = join(dir, `linked-${seq}`);
  await fsp.mkdir(join(base, 'real'), { recursive: true });
  await fsp.mkdir(join(base, 'links'));
  const real = join(base, 'real', 'keyring.json');
  const a = join(base, 'links', 'a');
  const b = join(base, 'links', 'b');
  await fsp.symlink(relative(join(base, 'links'), real), b);
  await fsp.symlink('b', a);
  return { base, real, a, b };
}

async function assertLinksKept(t, { base, real, a, b }, revision) {
  t.true((await fsp.lstat(a)).isSymbolicLink(), 'the first link is still a link');
  t.true((await fsp.lstat(b)).isSymbolicLink(), 'the second link is still a link');
  t.is(await fsp.readlink(a), 'b');
  const stat = await fsp.lstat(real);
  t.true(stat.isFile());
  t.is(stat.mode & 0o777, 0o600);
  t.deepEqual((await fsp.readdir(join(base, 'real'))).sort(), ['keyring.json'], 'no temp or lock file beside the real file');
  t.deepEqual((await fsp.readdir(join(base, 'links'))).sort(), ['a', 'b'], 'nothing written beside the links');
  if (revision !== undefined) t.is(JSON.parse(await fsp.readFile(real, 'utf8')).revision, revision, 'the real file got the write');
}

test.serial('KMS keyring writes through a 2-link relative chain: create, rotate, retire, rewrap, add and remove a wrapping key', async (t) => {
  const paths = await linkedKeyring();
  const name = newVaultKey();
  const provider = await VaultTransitProvider.create({ ...vaultOptions(name), keyring: paths.a });
  t.teardown(() => provider.close());
  await assertLinksKept(t, paths, 1);
  t.is(await provider.rotate(), 2);
  await assertLinksKept(t, paths, 2);
  await provider.retire(1);
  await assertLinksKept(t, paths, 3);
  await fetch(`${vault.address}/v1/transit/keys/${name}/rotate`, { method: 'POST', headers: { 'x-vault-token': vault.rootToken } });
  await provider.rewrap();
  await assertLinksKept(t, paths, 4);
  t.true(JSON.parse(await fsp.readFile(paths.real, 'utf8')).versions.every((v) => v.wraps[0].wrappedKey.startsWith('vault:v2:')));

  const second = newVaultKey();
  const multi = await MultiKmsProvider.open({ adapters: [new VaultTransitAdapter(vaultOptions(name))], keyring: paths.b, createIfMissing: false });
  t.teardown(() => multi.close());
  t.is(await multi.addWrappingKey(new VaultTransitAdapter(vaultOptions(second))), 2);
  await assertLinksKept(t, paths, 5);
  t.is(await multi.removeWrappingKey(`transit/keys/${name}`), 2);
  await assertLinksKept(t, paths, 6);
  const direct = await MultiKmsProvider.open({ adapters: [new VaultTransitAdapter(vaultOptions(second))], keyring: paths.real, createIfMissing: false });
  t.teardown(() => direct.close());
  t.deepEqual((await direct.listVersions()).map((v) => `${v.version}:${v.status}`), ['1:retired', '2:active']);
  t.is((await direct.loadKey(2)).length, 32);
});

test.serial('a KMS keyring write through a link takes the real file’s lock', async (t) => {
  const paths = await linkedKeyring();
  const name = newVaultKey();
  const provider = await VaultTransitProvider.create({ ...vaultOptions(name), keyring: paths.real });
  t.teardown(() => provider.close());
  const viaLink = await VaultTransitProvider.open({ ...vaultOptions(name), keyring: paths.a, createIfMissing: false });
  t.teardown(() => viaLink.close());
  // Hold the real file's lock as a live process on this host would.
  const lock = `${paths.real}.lock`;
  await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, hostname: hostname(), createdAt: new Date().toISOString() }), { mode: 0o600 });
  let settled = false;
  const rotation = viaLink.rotate().finally(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.false(settled, 'the rotation through the link waits for the real file’s lock');
  t.deepEqual((await fsp.readdir(join(paths.base, 'links'))).sort(), ['a', 'b'], 'no lock beside the link');
  await fsp.unlink(lock);
  t.is(await rotation, 2);
  await assertLinksKept(t, paths, 2);
  // Rotations through both links and the real path at once each get their own version.
  const others = await Promise.all([paths.a, paths.b, paths.real].map((keyring) => VaultTransitProvider.open({ ...vaultOptions(name), keyring, createIfMissing: false })));
  t.teardown(() => others.forEach((p) => p.close()));
  t.deepEqual((await Promise.all(others.map((p) => p.rotate()))).sort(), [3, 4, 5]);
  await assertLinksKept(t, paths, 5);
});

test.serial('CLI keygen --kms, keys rotate / retire / add-kms / remove-kms / rewrap through a link keep the links', async (t) => {
  const paths = await linkedKeyring();
  const [first, second] = [newVaultKey(), newVaultKey()];
  const env = { VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken };
  const run = async (args) => {
    const result = await runCli(args, { env });
    t.is(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
  };
  await run(['keygen', '--keys', paths.a, '--kms', `vault:transit/keys/${first}`]);
  await assertLinksKept(t, paths, 1);
  await run(['keys', 'rotate', '--keys', paths.a]);
  await assertLinksKept(t, paths, 2);
  await run(['keys', 'retire', '1', '--keys', paths.b]);
  await assertLinksKept(t, paths, 3);
  await run(['keys', 'add-kms', `vault:transit/keys/${second}`, '--keys', paths.a]);
  await assertLinksKept(t, paths, 4);
  await run(['keys', 'remove-kms', `vault:transit/keys/${first}`, '--keys', paths.a]);
  await assertLinksKept(t, paths, 5);
  await run(['keys', 'rewrap', '--keys', paths.a]);
  await assertLinksKept(t, paths, 6);
  const refused = await runCli(['keygen', '--keys', paths.a, '--kms', `vault:transit/keys/${second}`], { env });
  t.is(refused.code, 3, 'keygen --kms refuses the existing real keyring behind the link');
  await assertLinksKept(t, paths, 6);
});
