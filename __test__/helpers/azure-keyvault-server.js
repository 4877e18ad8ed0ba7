// Test harness: a local HTTPS server that speaks the Azure Key Vault keys REST protocol for the calls
// AzureKeyVaultProvider makes, so that the real @azure/keyvault-keys CryptographyClient is tested end
// to end on 127.0.0.1: the challenge-based bearer authentication (401 + WWW-Authenticate, then a
// token from the test's TokenCredential), api-version, JSON Web Keys, base64url values, the wrap
// algorithms done for real with node:crypto (RSA-OAEP-256 for Key Vault RSA keys, AES key wrap
// `A256KW` for Managed HSM oct-HSM keys), and errors as KeyVaultError JSON.
//
// TLS uses a self-signed certificate made here with the `openssl` command (Debian's openssl
// package); the client is given it as its CA (`tlsOptions.ca`). When openssl is missing the server
// does not start and the test fails.
//
// The server counts every request per (operation, key, version), and can be told to fail the next
// N requests (429 with Retry-After, 5xx) or to stop answering altogether.
import { execFileSync } from 'node:child_process';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** RFC 3394's default initial value, the IV of `id-aes256-wrap`. */
const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

function selfSignedCertificate(hostname) {
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-azure-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
        '-subj', `/CN=${hostname ?? '127.0.0.1'}`, '-addext', `subjectAltName=IP:127.0.0.1${hostname ? `,DNS:${hostname}` : ''}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } catch (error) {
    throw new Error(`the Azure Key Vault test server needs the openssl command for its TLS certificate (${error.code ?? error.message})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

class KeyVaultError extends Error {
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const newVersionId = () => randomBytes(16).toString('hex');

/**
 * Starts the server. `token`: the only bearer token accepted; `tenantId`: put in the challenge;
 * `hostname`: the vault's host name in its URLs and certificate (default 127.0.0.1);
 * `managedHsm`: behave like a Managed HSM (challenge resource https://managedhsm.azure.net, oct-HSM
 * keys, A256KW) instead of a Key Vault (https://vault.azure.net, RSA keys, RSA-OAEP-256).
 */
export async function startAzureKeyVaultServer({ token, tenantId = '72f988bf-0000-4000-8000-000000000000', managedHsm = false, hostname }) {
  const tls = selfSignedCertificate(hostname);
  const resource = managedHsm ? 'https://managedhsm.azure.net' : 'https://vault.azure.net';
  /** name → { versions: Map<id, { enabled, created, rsa?: {publicKey, privateKey}, aes?: Buffer }>, latest: id, denied: boolean } */
  const keys = new Map();
  const calls = [];
  const faults = [];
  const sockets = new Set();
  let challenges = 0;
  let vaultUrl;

  function makeVersion() {
    const created = Math.floor(Date.now() / 1000);
    if (managedHsm) return { enabled: true, created, aes: randomBytes(32) };
    return { enabled: true, created, rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }) };
  }

  function lookup(name, version, operation) {
    const key = keys.get(name);
    const id = version === '' || version === undefined ? key?.latest : version;
    const entry = key?.versions.get(id);
    if (!key || !entry) {
      throw new KeyVaultError(404, 'KeyNotFound', `A key with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault.`);
    }
    if (key.denied) {
      throw new KeyVaultError(
        403,
        'Forbidden',
        `Caller is not authorized to perform action on resource. Action: 'Microsoft.KeyVault/vaults/keys/${operation}/action'`,
      );
    }
    if (!entry.enabled) {
      throw new KeyVaultError(403, 'Forbidden', `Operation ${operation} is not allowed on a disabled key.`);
    }
    return { key, id, entry };
  }

  function keyBundle(name, id, entry) {
    const kid = `${vaultUrl}/keys/${name}/${id}`;
    const attributes = { enabled: entry.enabled, created: entry.created, updated: entry.created, recoveryLevel: 'Recoverable+Purgeable' };
    if (managedHsm) {
      // Symmetric HSM keys never leave the HSM: no key material in the bundle.
      return { key: { kid, kty: 'oct-HSM', key_ops: ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt'] }, attributes };
    }
    const jwk = entry.rsa.publicKey.export({ format: 'jwk' });
    return {
      key: { kid, kty: 'RSA', key_ops: ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt', 'sign', 'verify'], n: jwk.n, e: jwk.e },
      attributes,
    };
  }

  function value(body) {
    if (typeof body?.value !== 'string' || !/^[A-Za-z0-9_-]*$/.test(body.value)) {
      throw new KeyVaultError(400, 'BadParameter', 'Property value is required and must be base64url.');
    }
    return Buffer.from(body.value, 'base64url');
  }

  function checkAlgorithm(body) {
    const expected = managedHsm ? ['A256KW', 'A128KW', 'A192KW'] : ['RSA-OAEP-256', 'RSA-OAEP', 'RSA1_5'];
    if (!expected.includes(body?.alg)) {
      throw new KeyVaultError(400, 'BadParameter', `Algorithm ${String(body?.alg).slice(0, 20)} is not supported for this key type.`);
    }
    if (body.alg !== (managedHsm ? 'A256KW' : 'RSA-OAEP-256')) {
      throw new KeyVaultError(400, 'BadParameter', `This test server implements ${managedHsm ? 'A256KW' : 'RSA-OAEP-256'} only.`);
    }
  }

  // https://learn.microsoft.com/rest/api/keyvault/keys/wrap-key/wrap-key
  function wrapKey(name, version, body) {
    const { id, entry } = lookup(name, version, 'wrapKey');
    calls.push({ operation: 'wrapkey', key: name, version: id });
    checkAlgorithm(body);
    const plaintext = value(body);
    let result;
    if (managedHsm) {
      if (plaintext.length < 16 || plaintext.length % 8 !== 0) throw new KeyVaultError(400, 'BadParameter', 'The key to wrap must be a multiple of 8 bytes.');
      const cipher = createCipheriv('id-aes256-wrap', entry.aes, AES_KW_IV);
      result = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    } else {
      result = publicEncrypt({ key: entry.rsa.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, plaintext);
    }
    return { kid: `${vaultUrl}/keys/${name}/${id}`, value: b64url(result) };
  }

  // https://learn.microsoft.com/rest/api/keyvault/keys/unwrap-key/unwrap-key
  function unwrapKey(name, version, body) {
    const { id, entry } = lookup(name, version, 'unwrapKey');
    calls.push({ operation: 'unwrapkey', key: name, version: id });
    checkAlgorithm(body);
    const wrapped = value(body);
    let result;
    try {
      if (managedHsm) {
        const decipher = createDecipheriv('id-aes256-wrap', entry.aes, AES_KW_IV);
        result = Buffer.concat([decipher.update(wrapped), decipher.final()]);
      } else {
        result = privateDecrypt({ key: entry.rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrapped);
      }
    } catch {
      throw new KeyVaultError(400, 'BadParameter', 'The parameter is incorrect: the wrapped key could not be unwrapped with this key.');
    }
    return { kid: `${vaultUrl}/keys/${name}/${id}`, value: b64url(result) };
  }

  // https://learn.microsoft.com/rest/api/keyvault/keys/get-key/get-key
  function getKey(name, version) {
    const { id, entry } = lookup(name, version, 'get');
    calls.push({ operation: 'get', key: name, version: id });
    return keyBundle(name, id, entry);
  }

  function route(method, path, body) {
    const match = /^\/keys\/([A-Za-z0-9-]{1,127})(?:\/([0-9a-f]{32})?)?(?:\/(wrapkey|unwrapkey))?\/?$/.exec(path);
    if (match) {
      const [, name, version = '', operation] = match;
      if (method === 'POST' && operation === 'wrapkey') return wrapKey(name, version, body);
      if (method === 'POST' && operation === 'unwrapkey') return unwrapKey(name, version, body);
      if (method === 'GET' && operation === undefined) return getKey(name, version);
    }
    throw new KeyVaultError(404, 'NotFound', `The requested resource ${path.slice(0, 100)} was not found.`);
  }

  async function readBody(req) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text === '') return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new KeyVaultError(400, 'BadParameter', 'The request body is not valid JSON.');
    }
  }

  const server = createServer({ key: tls.key, cert: tls.cert }, async (req, res) => {
    const send = (status, json, headers = {}) => {
      const text = JSON.stringify(json);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    try {
      const url = new URL(req.url, vaultUrl);
      const body = await readBody(req);
      // https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses#authentication
      if (req.headers.authorization !== `Bearer ${token}`) {
        challenges++;
        throw new KeyVaultError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.', {
          'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="${resource}"`,
        });
      }
      if (!url.searchParams.get('api-version')) {
        throw new KeyVaultError(400, 'BadParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
      }
      const fault = faults.shift();
      if (fault) {
        calls.push({ operation: 'fault', status: fault.status });
        throw new KeyVaultError(fault.status, fault.code, fault.message, fault.headers);
      }
      send(200, route(req.method, url.pathname, body));
    } catch (error) {
      if (error instanceof KeyVaultError) {
        // https://learn.microsoft.com/rest/api/keyvault/keys/wrap-key/wrap-key#keyvaulterror
        send(error.status, { error: { code: error.code, message: error.message } }, error.headers);
      } else {
        send(500, { error: { code: 'InternalServerError', message: 'An unexpected error occurred.' } });
      }
    }
  });
  server.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  // With `hostname` (e.g. sifredb-test.vault.azure.net, resolved to 127.0.0.1 by helpers/vault-hosts.mjs
  // in the client process), the SDK's challenge-resource check passes as against a real vault.
  vaultUrl = `https://${hostname ?? '127.0.0.1'}:${port}`;

  const FAULTS = {
    throttle: [429, 'Throttled', 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached', { 'retry-after': '0' }],
    unavailable: [503, 'ServiceUnavailable', 'The service is temporarily unavailable.', {}],
    internal: [500, 'InternalServerError', 'An unexpected error occurred.', {}],
  };

  return {
    vaultUrl,
    /** The server's certificate: give it to the client as `tlsOptions.ca`. */
    ca: tls.cert,
    managedHsm,
    /** Creates a key (RSA 2048, or oct-HSM 256 for a Managed HSM); returns its URL without version. */
    createKey(name) {
      const id = newVersionId();
      keys.set(name, { versions: new Map([[id, makeVersion()]]), latest: id, denied: false });
      return `${vaultUrl}/keys/${name}`;
    },
    /** A new key version that becomes the latest (what Key Vault's rotation does); returns its id. */
    rotateKey(name) {
      const key = keys.get(name);
      const id = newVersionId();
      key.versions.set(id, makeVersion());
      key.latest = id;
      return id;
    },
    latestVersion(name) {
      return keys.get(name).latest;
    },
    /** Enables or disables one version, or every version of the key. */
    setEnabled(name, enabled, version) {
      for (const [id, entry] of keys.get(name).versions) if (version === undefined || id === version) entry.enabled = enabled;
    },
    /** Deletes and purges the key: its material is gone (crypto-shredding). */
    purgeKey(name) {
      for (const entry of keys.get(name).versions.values()) entry.aes?.fill(0);
      keys.delete(name);
    },
    /** Takes the caller's access away (RBAC role removed), or gives it back. */
    setDenied(name, denied) {
      keys.get(name).denied = denied;
    },
    /** The next `count` authenticated requests fail with `kind` (throttle | unavailable | internal). */
    fail(kind, count = 1) {
      const [status, code, message, headers] = FAULTS[kind];
      for (let i = 0; i < count; i++) faults.push({ status, code, message, headers });
    },
    /** Requests served after authentication: [{ operation: 'get' | 'wrapkey' | 'unwrapkey' | 'fault', key, version }]. */
    calls,
    count(operation, key, version) {
      return calls.filter(
        (c) => c.operation === operation && (key === undefined || c.key === key) && (version === undefined || c.version === version),
      ).length;
    },
    /** 401 challenges sent (requests without the right bearer token). */
    get challenges() {
      return challenges;
    },
    /** Stops answering: closes the listener and every open connection. */
    async close() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
    /** Answers again after {@link close}, on the same port, with the same keys. */
    async restart() {
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
    },
  };
}
