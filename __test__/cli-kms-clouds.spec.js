// `sifredb keygen --kms gcp:… / azure:…` and `sifredb keys …` run as a user would (child processes of
// dist/cli/main.js) against the local Cloud KMS and Key Vault wire-protocol servers, with the
// providers' default credentials:
// - Google: Application Default Credentials from GOOGLE_APPLICATION_CREDENTIALS (a service-account
//   key file made here; the server verifies its signed JWTs), endpoint from SIFREDB_GCP_KMS_ENDPOINT;
// - Azure: DefaultAzureCredential, restricted by AZURE_TOKEN_CREDENTIALS to its Azure CLI source, with
//   a stand-in `az` on PATH that prints a token; the vault is reached under a *.vault.azure.net name
//   (helpers/vault-hosts.mjs resolves it to 127.0.0.1) over TLS trusted with NODE_EXTRA_CA_CERTS, so
//   the SDK's challenge-resource check runs as in production.
//
// Runs on both backends (SIFREDB_BACKEND=native / js).
import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { startAzureKeyVaultServer } from './helpers/azure-keyvault-server.js';
import { startGcpKmsServer } from './helpers/gcp-kms-server.js';

const EXIT = { ok: 0, usage: 2, key: 3 };
const SECRET = 'cli-cloud-secret-5813';
const ctxArgs = ['--table', 'users', '--column', 'email'];
const TOKEN = 'sifredb-cli-azure-token-do-not-print';
const VAULT_HOST = 'sifredb-test.vault.azure.net';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ACCOUNT = { email: 'cli@sifredb-test.iam.gserviceaccount.com', publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) };

let gcp;
let azure;
let dir;
let seq = 0;
let gcpEnv;
let azureEnv;

test.before(async () => {
  gcp = await startGcpKmsServer({ serviceAccounts: [ACCOUNT] });
  azure = await startAzureKeyVaultServer({ token: TOKEN, hostname: VAULT_HOST });
  dir = await mkdtemp(join(tmpdir(), 'sifredb-cli-clouds-'));

  const credentialsFile = join(dir, 'service-account.json');
  await writeFile(
    credentialsFile,
    JSON.stringify({
      type: 'service_account',
      project_id: 'sifredb-test',
      client_email: ACCOUNT.email,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    }),
    { mode: 0o600 },
  );
  gcpEnv = { GOOGLE_APPLICATION_CREDENTIALS: credentialsFile, SIFREDB_GCP_KMS_ENDPOINT: `http://127.0.0.1:${gcp.port}` };

  // A stand-in for the Azure CLI: `az account get-access-token --resource https://vault.azure.net` prints a token.
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(
    join(bin, 'az'),
    [
      '#!/bin/sh',
      'case "$*" in',
      `  "account get-access-token --output json --resource https://vault.azure.net"*) printf '%s' '{"accessToken":"${TOKEN}","expires_on":4102444800,"tokenType":"Bearer"}' ;;`,
      '  *) echo "unexpected az call: $*" >&2; exit 1 ;;',
      'esac',
    ].join('\n'),
  );
  await chmod(join(bin, 'az'), 0o755);
  const caFile = join(dir, 'vault-ca.pem');
  await writeFile(caFile, azure.ca);
  azureEnv = {
    AZURE_TOKEN_CREDENTIALS: 'AzureCliCredential',
    PATH: `${bin}${delimiter}${process.env.PATH}`,
    NODE_EXTRA_CA_CERTS: caFile,
    NODE_OPTIONS: `--import=${new URL('./helpers/vault-hosts.mjs', import.meta.url).href}`,
  };
});

test.after.always(async () => {
  await gcp?.close();
  await azure?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function keyringPath() {
  seq += 1;
  return join(dir, `keyring-${seq}.json`);
}

async function roundTrip(t, env) {
  t.is((await runCli(['keys', 'rotate'], { env })).code, EXIT.ok);
  const list = await runCli(['keys', 'list', '--json'], { env });
  t.is(list.code, EXIT.ok, list.stderr);
  t.is(JSON.parse(list.stdout).current, 2);
  const ct = await runCli(['encrypt', SECRET, ...ctxArgs], { env });
  t.is(ct.code, EXIT.ok, ct.stderr);
  const pt = await runCli(['decrypt', ct.stdout.trim(), ...ctxArgs], { env });
  t.is(pt.code, EXIT.ok, pt.stderr);
  t.is(pt.stdout, `${SECRET}\n`);
}

test.serial('keygen --kms gcp:… makes a Cloud KMS keyring that keys rotate/list and encrypt/decrypt use', async (t) => {
  const keyName = gcp.createKey('projects/sifredb-test/locations/europe-west1/keyRings/cli/cryptoKeys/app');
  const path = keyringPath();
  const env = { ...gcpEnv, SIFREDB_KEYS: path };
  const created = await runCli(['keygen', '--kms', `gcp:${keyName}`, '--json'], { env });
  t.is(created.code, EXIT.ok, created.stderr);
  t.like(JSON.parse(created.stdout), { type: 'kms', current: 1, wrappedBy: [`gcp-kms:${keyName}`] });
  t.deepEqual(JSON.parse(await readFile(path, 'utf8')).versions[0].wraps.map((w) => [w.provider, w.keyId]), [['gcp-kms', keyName]]);
  await roundTrip(t, env);
  t.true(gcp.count('decrypt', keyName) > 0, 'the commands reopened the keyring through Cloud KMS');

  const again = await runCli(['keygen', '--kms', `gcp:${keyName}`], { env });
  t.is(again.code, EXIT.key, 'an existing keyring is never replaced');
  const bad = await runCli(['keygen', '--kms', 'gcp:projects/p/keyRings/r'], { env: { ...env, SIFREDB_KEYS: keyringPath() } });
  t.is(bad.code, EXIT.usage);
  t.regex(bad.stderr, /keyName must be a CryptoKey name/);
  const insecure = await runCli(['keygen', '--kms', `gcp:${keyName}`], { env: { ...env, SIFREDB_KEYS: keyringPath(), SIFREDB_GCP_KMS_ENDPOINT: 'http://kms.example.com' } });
  t.is(insecure.code, EXIT.usage);
  t.regex(insecure.stderr, /http:\/\/ is allowed for 127\.0\.0\.1/);
});

test.serial('keygen --kms azure:… makes a Key Vault keyring with DefaultAzureCredential; keys and values commands use it', async (t) => {
  const keyUrl = azure.createKey('cli-app');
  t.is(keyUrl, `https://${VAULT_HOST}:${new URL(keyUrl).port}/keys/cli-app`);
  const path = keyringPath();
  const env = { ...azureEnv, SIFREDB_KEYS: path };
  const created = await runCli(['keygen', '--kms', `azure:${keyUrl}`, '--json'], { env });
  t.is(created.code, EXIT.ok, created.stderr);
  t.like(JSON.parse(created.stdout), { type: 'kms', current: 1, wrappedBy: [`azure-keyvault:${keyUrl}`] });
  await roundTrip(t, env);
  t.true(azure.count('unwrapkey', 'cli-app') > 0);
  t.true(azure.challenges > 0, 'each process went through the 401 challenge');

  // Without a credential source (no `az` on PATH), reading fails and says why.
  const ct = await runCli(['encrypt', SECRET, ...ctxArgs], { env });
  const noCredential = await runCli(['decrypt', ct.stdout.trim(), ...ctxArgs], { env: { ...env, PATH: '/nonexistent' } });
  t.not(noCredential.code, EXIT.ok);
  t.regex(noCredential.stderr, /no usable Azure credential/);
  t.log(noCredential.stderr.trim());
  t.false(`${noCredential.stdout}${noCredential.stderr}`.includes(TOKEN));
});

test.serial('keygen with --kms gcp:… --kms azure:… wraps every version under both; either service alone serves the keys commands', async (t) => {
  const keyName = gcp.createKey('projects/sifredb-test/locations/europe-west1/keyRings/cli/cryptoKeys/multi');
  const keyUrl = azure.createKey('cli-multi');
  const path = keyringPath();
  const env = { ...gcpEnv, ...azureEnv, SIFREDB_KEYS: path };
  const created = await runCli(['keygen', '--kms', `gcp:${keyName}`, '--kms', `azure:${keyUrl}`, '--json'], { env });
  t.is(created.code, EXIT.ok, created.stderr);
  t.deepEqual(JSON.parse(await readFile(path, 'utf8')).versions[0].wraps.map((w) => w.provider), ['gcp-kms', 'azure-keyvault']);
  const ct = await runCli(['encrypt', SECRET, ...ctxArgs], { env });
  t.is(ct.code, EXIT.ok, ct.stderr);

  // Cloud KMS unreachable (its endpoint points nowhere): Key Vault alone decrypts.
  const gcpDown = await runCli(['decrypt', ct.stdout.trim(), ...ctxArgs], { env: { ...env, SIFREDB_GCP_KMS_ENDPOINT: 'http://127.0.0.1:9' } });
  t.is(gcpDown.code, EXIT.ok, gcpDown.stderr);
  t.is(gcpDown.stdout, `${SECRET}\n`);
  // Key Vault without a credential: Cloud KMS alone decrypts.
  const azureDown = await runCli(['decrypt', ct.stdout.trim(), ...ctxArgs], { env: { ...env, PATH: '/nonexistent' } });
  t.is(azureDown.code, EXIT.ok, azureDown.stderr);
  t.is(azureDown.stdout, `${SECRET}\n`);
});

test.serial('keys add-kms azure:… on a Cloud KMS keyring, keys rewrap after the CryptoKey rotates, keys remove-kms gcp:…', async (t) => {
  const keyName = gcp.createKey('projects/sifredb-test/locations/europe-west1/keyRings/cli/cryptoKeys/moving');
  const keyUrl = azure.createKey('cli-moving');
  const path = keyringPath();
  const env = { ...gcpEnv, ...azureEnv, SIFREDB_KEYS: path };
  t.is((await runCli(['keygen', '--kms', `gcp:${keyName}`], { env })).code, EXIT.ok);
  t.is((await runCli(['keys', 'rotate'], { env })).code, EXIT.ok);
  const ct = (await runCli(['encrypt', SECRET, ...ctxArgs], { env })).stdout.trim();

  // Cloud KMS rotates the CryptoKey; `keys rewrap` moves both entries to the new primary version.
  gcp.rotateKey(keyName);
  const rewrapped = await runCli(['keys', 'rewrap', '--json'], { env });
  t.is(rewrapped.code, EXIT.ok, rewrapped.stderr);
  t.is(gcp.count('encrypt', keyName, 2), 2);
  gcp.setVersionState(keyName, 1, 'DISABLED');
  t.is((await runCli(['decrypt', ct, ...ctxArgs], { env })).stdout, `${SECRET}\n`);

  // A second cloud for disaster recovery, then the first one dropped.
  const added = await runCli(['keys', 'add-kms', `azure:${keyUrl}`, '--json'], { env });
  t.is(added.code, EXIT.ok, added.stderr);
  t.is(JSON.parse(added.stdout).wrapped, 2);
  t.is(azure.count('wrapkey', 'cli-moving'), 2);
  const removed = await runCli(['keys', 'remove-kms', `gcp:${keyName}`, '--json'], { env });
  t.is(removed.code, EXIT.ok, removed.stderr);
  const doc = JSON.parse(await readFile(path, 'utf8'));
  t.true(doc.versions.every((v) => v.wraps.length === 1 && v.wraps[0].provider === 'azure-keyvault'));
  gcp.setVersionState(keyName, 2, 'DESTROYED');
  const viaAzure = await runCli(['decrypt', ct, ...ctxArgs], { env });
  t.is(viaAzure.stdout, `${SECRET}\n`, viaAzure.stderr);
});
