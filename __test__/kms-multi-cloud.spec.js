// MultiKmsProvider over Google Cloud KMS and Azure Key Vault at once (the local wire-protocol servers
// of helpers/gcp-kms-server.js and helpers/azure-keyvault-server.js, with the official SDKs): every
// version is wrapped under both, and a process start reads the keyring through whichever answers —
// with Cloud KMS down, then with Key Vault down — while creating or rotating needs both.
//
// Runs on both backends (SIFREDB_BACKEND=native / js).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AzureKeyVaultAdapter, EncryptionContext, GcpKmsAdapter, MultiKmsProvider, SifreDBKmsError, Vault } from '../dist/index.js';
import { startAzureKeyVaultServer } from './helpers/azure-keyvault-server.js';
import { startGcpKmsServer } from './helpers/gcp-kms-server.js';

const EMAIL = new EncryptionContext({ table: 'users', column: 'email' });
const TOKEN = 'sifredb-multi-cloud-test-token';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ACCOUNT = { email: 'app@sifredb-test.iam.gserviceaccount.com', publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) };

let gcp;
let azure;
let dir;

test.before(async () => {
  gcp = await startGcpKmsServer({ serviceAccounts: [ACCOUNT] });
  azure = await startAzureKeyVaultServer({ token: TOKEN });
  dir = await mkdtemp(join(tmpdir(), 'sifredb-multi-cloud-'));
});

test.after.always(async () => {
  await gcp?.close();
  await azure?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const count = (server, field) => {
  const out = {};
  for (const c of server.calls) out[c[field]] = (out[c[field]] ?? 0) + 1;
  return out;
};

test.serial('wrapped under Cloud KMS and Key Vault: either one alone reads the keyring; creating and rotating need both', async (t) => {
  const keyName = gcp.createKey('projects/sifredb-test/locations/europe-west1/keyRings/app/cryptoKeys/multi');
  const keyUrl = azure.createKey('multi');
  const path = join(dir, 'keyring.json');
  const adapters = async () => [
    await GcpKmsAdapter.make({
      keyName,
      retry: { maxAttempts: 2, initialDelayMs: 5 },
      clientOptions: {
        protocol: 'http',
        apiEndpoint: '127.0.0.1',
        port: gcp.port,
        credentials: { client_email: ACCOUNT.email, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) },
      },
    }),
    await AzureKeyVaultAdapter.make({
      keyUrl,
      credential: { getToken: async () => ({ token: TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) },
      clientOptions: { tlsOptions: { ca: azure.ca }, disableChallengeResourceVerification: true, retryOptions: { maxRetries: 1, retryDelayInMs: 5 } },
    }),
  ];
  const open = async (options = {}) => {
    const provider = await MultiKmsProvider.open({ adapters: await adapters(), keyring: path, keyringId: 'multi-cloud', ...options });
    t.teardown(() => provider.close());
    return provider;
  };

  const writer = await open();
  t.deepEqual(count(gcp, 'method'), { encrypt: 1 });
  t.deepEqual(count(azure, 'operation'), { get: 1, wrapkey: 1 });
  t.is(await writer.rotate(), 2);
  const doc = JSON.parse(await readFile(path, 'utf8'));
  for (const version of doc.versions) t.deepEqual(version.wraps.map((w) => w.provider), ['gcp-kms', 'azure-keyvault']);
  const vault = await Vault.open(writer);
  const stored = [vault.encryptToString('v2@example.com', EMAIL)];

  // Cloud KMS down: a process start reads every version through Key Vault.
  await gcp.close();
  const unwrapsBefore = count(azure, 'operation').unwrapkey ?? 0;
  const viaAzure = await Vault.open(await open());
  t.is(viaAzure.decryptToString(stored[0], EMAIL), 'v2@example.com');
  t.is(count(azure, 'operation').unwrapkey - unwrapsBefore, 2, 'one unwrapKey per version at the second service');
  // A rotation needs every wrapping key: refused, nothing written.
  const rotateError = await t.throwsAsync(writer.rotate());
  t.true(rotateError instanceof SifreDBKmsError);
  t.is(rotateError.reason, 'unreachable');
  t.is(JSON.parse(await readFile(path, 'utf8')).versions.length, 2);

  // Cloud KMS back, Key Vault down: reads go through Cloud KMS.
  await gcp.restart();
  await azure.close();
  const decryptsBefore = count(gcp, 'method').decrypt ?? 0;
  const viaGcp = await Vault.open(await open());
  t.is(viaGcp.decryptToString(stored[0], EMAIL), 'v2@example.com');
  t.is(count(gcp, 'method').decrypt - decryptsBefore, 2);

  // Both down: a fresh start fails clearly, as a transient outage.
  await gcp.close();
  const both = await open();
  const error = await t.throwsAsync(both.loadKey(1));
  t.is(error.code, 'ERR_SIFREDB_KMS');
  t.true(error.transient);
  t.regex(error.message, /Google Cloud KMS unreachable/);
  t.regex(error.message, /Azure Key Vault unreachable/);
  // Already-open vaults keep working through it all.
  t.is(vault.decryptToString(vault.encryptToString('still@example.com', EMAIL), EMAIL), 'still@example.com');
  await gcp.restart();
  await azure.restart();
  t.is(await writer.rotate(), 3);
});

test.serial('an app bundled with sifredb but without the cloud SDKs or database drivers builds, and each then says which package to install', async (t) => {
  // A copy of the package (not a symlink: the bundler must not find this checkout's dev dependencies).
  const root = fileURLToPath(new URL('..', import.meta.url));
  const app = join(dir, 'bundled-app');
  const pkg = join(app, 'node_modules/sifredb');
  await mkdir(pkg, { recursive: true });
  for (const entry of ['dist', 'package.json', 'index.d.ts']) await cp(join(root, entry), join(pkg, entry), { recursive: true });
  await cp(join(root, 'node_modules/@noble'), join(app, 'node_modules/@noble'), { recursive: true });
  await writeFile(
    join(app, 'app.mjs'),
    `import { GcpKmsProvider, AzureKeyVaultProvider, openDatabase } from 'sifredb';
const out = {};
for (const [name, open] of Object.entries({
  gcp: () => GcpKmsProvider.open({ keyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k', keyring: '/nonexistent/k.json' }),
  azure: () => AzureKeyVaultProvider.open({ keyUrl: 'https://v.vault.azure.net/keys/k', keyring: '/nonexistent/k.json' }),
  pg: () => openDatabase('postgres://127.0.0.1:1/db'),
  pglite: () => openDatabase('memory://'),
})) {
  try { await open(); out[name] = 'opened'; } catch (error) { out[name] = error.code + ' ' + error.message; }
}
console.log(JSON.stringify(out));`,
  );
  const esbuild = createRequire(import.meta.url).resolve('esbuild/bin/esbuild');
  execFileSync(
    esbuild,
    ['app.mjs', '--bundle', '--platform=node', '--format=esm', '--outfile=out/app.mjs', '--log-level=error'],
    { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Deployed without node_modules (and so without the native addon): the pure-JS backend.
  const out = JSON.parse(
    execFileSync(process.execPath, [join(app, 'out/app.mjs')], { encoding: 'utf8', env: { ...process.env, SIFREDB_BACKEND: 'js' } }).trim(),
  );
  t.regex(out.gcp, /^ERR_SIFREDB_INPUT .*npm install @google-cloud\/kms/);
  t.regex(out.azure, /^ERR_SIFREDB_INPUT .*npm install @azure\/keyvault-keys/);
  t.regex(out.pg, /^ERR_SIFREDB_INPUT .*npm install pg/);
  t.regex(out.pglite, /^ERR_SIFREDB_INPUT .*npm install @electric-sql\/pglite/);
});
