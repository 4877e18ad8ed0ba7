// Test harness: a local HTTP server on 127.0.0.1 that speaks HashiCorp Vault's HTTP API for the
// Transit secrets engine calls SifreDB makes, and AppRole login. No Vault server binary can be
// installed on this machine, so the tests run VaultTransitProvider against this implementation of
// the documented wire protocol: request paths and JSON bodies, the X-Vault-Token and
// X-Vault-Namespace headers, status codes, and `{"errors":[...]}` error bodies.
//
// Written from Vault's API documentation (each endpoint's page is cited where it is handled):
//   General (auth header, error body, status codes): https://developer.hashicorp.com/vault/api-docs
//   Transit API: https://developer.hashicorp.com/vault/api-docs/secret/transit
//   AppRole login: https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle
//   Namespaces header: https://developer.hashicorp.com/vault/docs/enterprise/namespaces
//   Rate limit quotas (429): https://developer.hashicorp.com/vault/docs/concepts/resource-quotas
//
// The cryptography is real (AES-256-GCM; per-context derived keys for `derived` keys; associated
// data authenticated), so a wrong context, a wrong key or an altered ciphertext fail here as in
// Vault. Vault's internal key derivation is not reproduced (ciphertexts are only meaningful to this
// server). The server counts requests per operation and key: `server.count('decrypt', 'app')`.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const NONCE = 12;
const TAG = 16;

/**
 * Starts a server. `rootToken` may do everything; other tokens are made with `server.addToken`
 * (allowed operations per key) or by AppRole login (`server.addAppRole`).
 */
export async function startVaultTransit({ rootToken = `hvs.${randomBytes(18).toString('base64url')}` } = {}) {
  /** namespace ('' = root) → mount → name → key */
  const namespaces = new Map();
  /** token → { allow: Set of "op:name" or "*", expiresAt } */
  const tokens = new Map([[rootToken, { allow: new Set(['*']), expiresAt: Infinity }]]);
  const appRoles = new Map();
  const counts = new Map();
  const log = [];
  /** Injected failures: each { status, errors, times, match(op) }. */
  const faults = [];
  const sockets = new Set();

  const keysOf = (namespace, mount) => {
    if (!namespaces.has(namespace)) namespaces.set(namespace, new Map());
    const mounts = namespaces.get(namespace);
    if (!mounts.has(mount)) mounts.set(mount, new Map());
    return mounts.get(mount);
  };

  const bump = (op, name) => {
    const key = `${op}:${name ?? ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };

  function fail(res, status, ...errors) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors }));
    return status;
  }

  function ok(res, body) {
    const full = { request_id: randomUUID(), lease_id: '', renewable: false, lease_duration: 0, wrap_info: null, warnings: null, auth: null, ...body };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(full));
    return 200;
  }

  function versionKey(key, version, context) {
    const material = key.versions[version - 1];
    if (!key.derived) return material;
    return createHmac('sha256', material).update(context).digest();
  }

  function seal(key, plaintext, context, associated) {
    const version = key.versions.length;
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', versionKey(key, version, context), nonce);
    if (associated) cipher.setAAD(associated);
    const body = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { ciphertext: `vault:v${version}:${body.toString('base64')}`, key_version: version };
  }

  /** Returns the plaintext, or [status, message] for Vault's error. */
  function open(key, ciphertext, context, associated) {
    const match = /^vault:v(\d+):([A-Za-z0-9+/=]+)$/.exec(typeof ciphertext === 'string' ? ciphertext : '');
    if (!match) return [400, 'invalid ciphertext: no prefix'];
    const version = Number(match[1]);
    if (version < 1 || version > key.versions.length) return [400, 'invalid key version'];
    if (version < key.minDecryptionVersion) return [400, 'ciphertext or signature version is disallowed by policy (too old)'];
    const body = Buffer.from(match[2], 'base64');
    if (body.length < NONCE + TAG) return [400, 'invalid ciphertext: could not decode'];
    try {
      const decipher = createDecipheriv('aes-256-gcm', versionKey(key, version, context), body.subarray(0, NONCE));
      if (associated) decipher.setAAD(associated);
      decipher.setAuthTag(body.subarray(body.length - TAG));
      return Buffer.concat([decipher.update(body.subarray(NONCE, body.length - TAG)), decipher.final()]);
    } catch {
      return [400, 'cipher: message authentication failed'];
    }
  }

  /** The context / associated_data fields as Vault checks them; [status, message] on error. */
  function inputs(key, body) {
    const context = body.context === undefined ? undefined : Buffer.from(String(body.context), 'base64');
    const associated = body.associated_data === undefined ? undefined : Buffer.from(String(body.associated_data), 'base64');
    if (key.derived && (context === undefined || context.length === 0)) {
      return [400, "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"];
    }
    return { context, associated };
  }

  function allowed(token, op, name) {
    const entry = tokens.get(token);
    if (!entry || Date.now() >= entry.expiresAt) return false;
    return entry.allow.has('*') || entry.allow.has(`${op}:${name}`) || entry.allow.has(`${op}:*`);
  }

  async function handle(req, res, body) {
    const url = new URL(req.url, 'http://vault');
    let namespace = String(req.headers['x-vault-namespace'] ?? '').replace(/^\/+|\/+$/g, '');
    const token = req.headers['x-vault-token'];
    let path = url.pathname.replace(/^\/v1\//, '');
    // https://developer.hashicorp.com/vault/docs/enterprise/namespaces — the namespace may also be a
    // prefix of the request path instead of the header.
    for (const known of namespaces.keys()) {
      if (known !== '' && path.startsWith(`${known}/`)) {
        namespace = namespace === '' ? known : `${namespace}/${known}`;
        path = path.slice(known.length + 1);
        break;
      }
    }

    // https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle
    // POST /auth/:mount/login {role_id, secret_id} → { auth: { client_token, lease_duration, … } }
    const login = /^auth\/(.+)\/login$/.exec(path);
    if (login && req.method === 'POST') {
      bump('login', login[1]);
      const role = appRoles.get(`${login[1]}|${body.role_id}`);
      if (!role || role.secretId !== body.secret_id) return fail(res, 400, 'invalid role or secret ID');
      const clientToken = `hvs.${randomBytes(18).toString('base64url')}`;
      tokens.set(clientToken, { allow: new Set(role.allow), expiresAt: Date.now() + role.ttlSeconds * 1000, login: true });
      return ok(res, {
        auth: { client_token: clientToken, accessor: randomUUID(), policies: ['default'], token_policies: ['default'], lease_duration: role.ttlSeconds, renewable: true },
      });
    }

    const match = /^(.+?)\/(keys|encrypt|decrypt|rewrap|datakey\/(?:plaintext|wrapped))\/([^/]+)(\/rotate|\/config)?$/.exec(path);
    if (!match) return fail(res, 404, 'no handler for route');
    const [, mount, kind, name, sub] = match;
    const op = kind.startsWith('datakey') ? 'datakey' : kind === 'keys' ? (sub ? sub.slice(1) : req.method === 'GET' ? 'read' : req.method === 'DELETE' ? 'delete' : 'create') : kind;
    bump(op, name);
    for (const fault of faults) {
      if (fault.times > 0 && fault.match(op, name)) {
        fault.times -= 1;
        return fail(res, fault.status, ...fault.errors);
      }
    }
    // https://developer.hashicorp.com/vault/api-docs#authentication — X-Vault-Token; 403 "permission denied".
    if (typeof token !== 'string' || !allowed(token, op, name)) return fail(res, 403, 'permission denied');
    const keys = keysOf(namespace, mount);
    const key = keys.get(name);

    switch (op) {
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#create-key
      case 'create': {
        if (key) return ok(res, {}); // idempotent, as in Vault
        const type = body.type ?? 'aes256-gcm96';
        if (type !== 'aes256-gcm96') return fail(res, 400, `unsupported key type in this test server: ${type}`);
        keys.set(name, { name, type, derived: body.derived === true || body.derived === 'true', versions: [randomBytes(32)], minDecryptionVersion: 1, deletionAllowed: false });
        res.writeHead(204);
        res.end();
        return 204;
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#read-key
      case 'read': {
        if (!key) return fail(res, 404);
        return ok(res, {
          data: {
            name,
            type: key.type,
            derived: key.derived,
            deletion_allowed: key.deletionAllowed,
            exportable: false,
            latest_version: key.versions.length,
            min_decryption_version: key.minDecryptionVersion,
            min_encryption_version: 0,
            supports_encryption: true,
            supports_decryption: true,
            supports_derivation: true,
            keys: Object.fromEntries(key.versions.map((_, i) => [String(i + 1), 1_700_000_000 + i])),
          },
        });
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#rotate-key
      case 'rotate': {
        if (!key) return fail(res, 400, 'encryption key not found');
        key.versions.push(randomBytes(32));
        return ok(res, { data: { name, latest_version: key.versions.length } });
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#update-key-configuration
      case 'config': {
        if (!key) return fail(res, 400, 'encryption key not found');
        if (body.min_decryption_version !== undefined) {
          const min = Number(body.min_decryption_version);
          if (!Number.isInteger(min) || min < 1 || min > key.versions.length) return fail(res, 400, 'min decryption version should not be less than 1 or greater than latest version');
          key.minDecryptionVersion = min;
        }
        if (body.deletion_allowed !== undefined) key.deletionAllowed = body.deletion_allowed === true || body.deletion_allowed === 'true';
        return ok(res, { data: { name, min_decryption_version: key.minDecryptionVersion, deletion_allowed: key.deletionAllowed } });
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#delete-key
      case 'delete': {
        if (!key) return fail(res, 400, 'encryption key not found');
        if (!key.deletionAllowed) return fail(res, 400, 'deletion is not allowed for this key');
        for (const material of key.versions) material.fill(0);
        keys.delete(name);
        res.writeHead(204);
        res.end();
        return 204;
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#encrypt-data
      case 'encrypt': {
        if (!key) return fail(res, 400, 'encryption key not found');
        const given = inputs(key, body);
        if (Array.isArray(given)) return fail(res, given[0], given[1]);
        if (typeof body.plaintext !== 'string') return fail(res, 400, 'missing plaintext to encrypt');
        return ok(res, { data: seal(key, Buffer.from(body.plaintext, 'base64'), given.context, given.associated) });
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#decrypt-data
      case 'decrypt': {
        if (!key) return fail(res, 400, 'encryption key not found');
        const given = inputs(key, body);
        if (Array.isArray(given)) return fail(res, given[0], given[1]);
        const plaintext = open(key, body.ciphertext, given.context, given.associated);
        if (Array.isArray(plaintext)) return fail(res, plaintext[0], plaintext[1]);
        return ok(res, { data: { plaintext: plaintext.toString('base64') } });
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#rewrap-data
      case 'rewrap': {
        if (!key) return fail(res, 400, 'encryption key not found');
        const given = inputs(key, body);
        if (Array.isArray(given)) return fail(res, given[0], given[1]);
        const plaintext = open(key, body.ciphertext, given.context, given.associated);
        if (Array.isArray(plaintext)) return fail(res, plaintext[0], plaintext[1]);
        return ok(res, { data: seal(key, plaintext, given.context, given.associated) });
      }
      // https://developer.hashicorp.com/vault/api-docs/secret/transit#generate-data-key
      case 'datakey': {
        if (!key) return fail(res, 400, 'encryption key not found');
        const given = inputs(key, body);
        if (Array.isArray(given)) return fail(res, given[0], given[1]);
        const bits = body.bits === undefined ? 256 : Number(body.bits);
        if (![128, 256, 512].includes(bits)) return fail(res, 400, 'invalid bits value');
        const plaintext = randomBytes(bits / 8);
        const data = seal(key, plaintext, given.context, given.associated);
        if (kind.endsWith('plaintext')) data.plaintext = plaintext.toString('base64');
        return ok(res, { data });
      }
      default:
        return fail(res, 405, 'unsupported operation');
    }
  }

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      let body = {};
      const text = Buffer.concat(chunks).toString('utf8');
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          log.push({ method: req.method, path: req.url, status: 400 });
          fail(res, 400, 'failed to parse JSON input');
          return;
        }
      }
      const status = await handle(req, res, body);
      log.push({ method: req.method, path: req.url, namespace: req.headers['x-vault-namespace'], status });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  let running = true;

  const api = {
    address: `http://127.0.0.1:${port}`,
    port,
    rootToken,
    /** Requests handled so far: { method, path, namespace, status } (no bodies, no tokens). */
    log,
    /** Requests for `op` (datakey, encrypt, decrypt, rewrap, read, login…) on key `name`, or on every key. */
    count(op, name) {
      if (name !== undefined) return counts.get(`${op}:${name}`) ?? 0;
      let total = 0;
      for (const [k, v] of counts) if (k.startsWith(`${op}:`)) total += v;
      return total;
    },
    resetCounts() {
      counts.clear();
      log.length = 0;
    },
    /** Creates a Transit key directly (as an operator would). */
    createKey(name, { mount = 'transit', namespace = '', derived = true } = {}) {
      keysOf(namespace, mount).set(name, { name, type: 'aes256-gcm96', derived, versions: [randomBytes(32)], minDecryptionVersion: 1, deletionAllowed: false });
    },
    /** A token allowed `ops` ("decrypt:app", "encrypt:*"…). */
    addToken(ops, ttlSeconds = 3600) {
      const token = `hvs.${randomBytes(18).toString('base64url')}`;
      tokens.set(token, { allow: new Set(ops), expiresAt: Date.now() + ttlSeconds * 1000 });
      return token;
    },
    revokeToken(token) {
      tokens.delete(token);
    },
    /** Revokes every token issued by an AppRole login (as `vault token revoke` would). */
    revokeLoginTokens() {
      for (const [token, entry] of tokens) if (entry.login) tokens.delete(token);
    },
    /** An AppRole whose login tokens may do `ops`. */
    addAppRole(ops, { mount = 'approle', ttlSeconds = 3600 } = {}) {
      const roleId = randomUUID();
      const secretId = randomUUID();
      appRoles.set(`${mount}|${roleId}`, { secretId, allow: ops, ttlSeconds });
      return { roleId, secretId, mount };
    },
    /** The next `times` requests for which `match(op, name)` is true get `status` with `errors`. */
    inject(status, errors, times, match = () => true) {
      faults.push({ status, errors, times, match });
    },
    /** Stops answering: closes the listener and every connection (as a crashed server). */
    async stop() {
      if (!running) return;
      running = false;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
    /** Listens again on the same port, with the same keys. */
    async start() {
      if (running) return;
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      running = true;
    },
  };
  return api;
}
