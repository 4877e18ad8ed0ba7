// Test harness: a local server that speaks the Google Cloud KMS REST protocol (v1) for the calls
// GcpKmsProvider makes, so that the real @google-cloud/kms client (in its REST `fallback` mode) is
// tested end to end on 127.0.0.1: request paths, JSON bodies, `Authorization: Bearer` tokens, the
// CRC32C integrity fields, numeric enums, and errors as google.rpc.Status JSON.
//
// Authentication is real too: the client is given a service-account key made by the test, so
// google-auth-library signs its own JWT access token (RS256, no token endpoint is called), and this
// server verifies the signature, issuer and expiry. IAM is a set of allowed service accounts per key.
//
// The server counts every request per (method, key version), and can be told to fail the next N
// requests (throttling, 5xx) or to stop answering altogether.
import { createCipheriv, createDecipheriv, createPublicKey, randomBytes, verify } from 'node:crypto';
import { createServer } from 'node:http';

/** CRC32C (Castagnoli), an independent implementation for the server's integrity fields. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();
export function crc32c(bytes) {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC32C_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// Enum numbers from google/cloud/kms/v1/resources.proto (the client asks for `enum-encoding=int`).
const STATE = { ENABLED: 1, DISABLED: 2, DESTROYED: 3, DESTROY_SCHEDULED: 4 };
const PURPOSE_ENCRYPT_DECRYPT = 1;
const PROTECTION_SOFTWARE = 1;
const ALGORITHM_GOOGLE_SYMMETRIC_ENCRYPTION = 1;

const KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;
const VERSION_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)\/cryptoKeyVersions\/(\d+)$/;
const CIPHERTEXT_MAGIC = 0x47; // first byte of this server's ciphertexts: [magic][version u32][iv 12][tag 16][data]

class RpcError extends Error {
  constructor(httpStatus, status, message) {
    super(message);
    this.httpStatus = httpStatus;
    this.status = status;
  }
}

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
function fromB64(value, field) {
  if (value === undefined || value === null || value === '') return Buffer.alloc(0);
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) {
    throw new RpcError(400, 'INVALID_ARGUMENT', `Invalid value at '${field}' (TYPE_BYTES), Base64 decoding failed`);
  }
  return Buffer.from(value, 'base64');
}
/** google.protobuf.Int64Value in proto3 JSON: a decimal string (or a number). */
function int64(value) {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'object' ? value.value : value;
  return n === undefined ? undefined : Number(n);
}

function base64UrlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/**
 * Starts the server on 127.0.0.1 (plain HTTP: the client's REST transport is told `protocol: 'http'`).
 * `serviceAccounts`: [{ email, publicKeyPem }] whose self-signed JWTs are accepted.
 */
export async function startGcpKmsServer({ serviceAccounts }) {
  const accounts = new Map(serviceAccounts.map((a) => [a.email, createPublicKey(a.publicKeyPem)]));
  /** name → { versions: Map<number, { state, key }>, primary: number, allowed: Set<email> } */
  const keys = new Map();
  const calls = [];
  const faults = [];
  const sockets = new Set();
  let authFailures = 0;
  let corruptAnswers = 0;
  const bearerTokens = new Set();

  function authenticate(req) {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(header);
    const reject = () => {
      authFailures++;
      throw new RpcError(
        401,
        'UNAUTHENTICATED',
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      );
    };
    if (!match) reject();
    let head;
    let claims;
    try {
      head = base64UrlJson(match[1]);
      claims = base64UrlJson(match[2]);
    } catch {
      reject();
    }
    const publicKey = accounts.get(claims?.iss);
    if (head?.alg !== 'RS256' || !publicKey || claims.sub !== claims.iss) reject();
    const signed = verify('RSA-SHA256', Buffer.from(`${match[1]}.${match[2]}`), publicKey, Buffer.from(match[3], 'base64url'));
    const now = Date.now() / 1000;
    if (!signed || !(claims.exp > now) || !(claims.iat <= now + 60)) reject();
    bearerTokens.add(header.slice('Bearer '.length));
    // A self-signed JWT for a Google API carries the API's scope (or its audience).
    const scoped = typeof claims.scope === 'string' && claims.scope.split(' ').some((s) => /cloudkms|cloud-platform/.test(s));
    if (!scoped && !/cloudkms/.test(String(claims.aud ?? ''))) reject();
    return claims.iss;
  }

  function cryptoKey(name, principal, permission) {
    const key = keys.get(name);
    if (!key) throw new RpcError(404, 'NOT_FOUND', `CryptoKey ${name} not found.`);
    if (!key.allowed.has(principal)) {
      throw new RpcError(403, 'PERMISSION_DENIED', `Permission '${permission}' denied on resource '${name}' (or it may not exist).`);
    }
    return key;
  }

  function versionResource(name, id, version, intEnums) {
    const state = intEnums ? STATE[version.state] : version.state;
    return {
      name: `${name}/cryptoKeyVersions/${id}`,
      state,
      protectionLevel: intEnums ? PROTECTION_SOFTWARE : 'SOFTWARE',
      algorithm: intEnums ? ALGORITHM_GOOGLE_SYMMETRIC_ENCRYPTION : 'GOOGLE_SYMMETRIC_ENCRYPTION',
      createTime: version.createTime,
    };
  }

  function usable(name, id, version) {
    if (version.state !== 'ENABLED') {
      throw new RpcError(400, 'FAILED_PRECONDITION', `${name}/cryptoKeyVersions/${id} is not enabled, current state is: ${version.state}.`);
    }
  }

  // https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys/get
  function getCryptoKey(name, principal, intEnums) {
    const key = cryptoKey(name, principal, 'cloudkms.cryptoKeys.get');
    calls.push({ method: 'get', key: name });
    return {
      name,
      primary: versionResource(name, key.primary, key.versions.get(key.primary), intEnums),
      purpose: intEnums ? PURPOSE_ENCRYPT_DECRYPT : 'ENCRYPT_DECRYPT',
      createTime: key.createTime,
    };
  }

  // https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys/encrypt
  function encrypt(resource, principal, body) {
    const versionMatch = VERSION_NAME.exec(resource);
    const name = versionMatch ? versionMatch[1] : resource;
    const key = cryptoKey(name, principal, 'cloudkms.cryptoKeyVersions.useToEncrypt');
    const id = versionMatch ? Number(versionMatch[2]) : key.primary;
    const version = key.versions.get(id);
    if (!version) throw new RpcError(404, 'NOT_FOUND', `CryptoKeyVersion ${name}/cryptoKeyVersions/${id} not found.`);
    calls.push({ method: 'encrypt', key: name, version: id });
    usable(name, id, version);
    const plaintext = fromB64(body.plaintext, 'plaintext');
    const aad = fromB64(body.additionalAuthenticatedData, 'additional_authenticated_data');
    if (plaintext.length > 64 * 1024) throw new RpcError(400, 'INVALID_ARGUMENT', 'The plaintext is too large.');
    const plaintextCrc = int64(body.plaintextCrc32c);
    const aadCrc = int64(body.additionalAuthenticatedDataCrc32c);
    // https://cloud.google.com/kms/docs/data-integrity-guidelines: a mismatch is INVALID_ARGUMENT.
    if (plaintextCrc !== undefined && plaintextCrc !== crc32c(plaintext)) {
      throw new RpcError(400, 'INVALID_ARGUMENT', 'The checksum in field plaintext_crc32c did not match the data in field plaintext.');
    }
    if (aadCrc !== undefined && aadCrc !== crc32c(aad)) {
      throw new RpcError(
        400,
        'INVALID_ARGUMENT',
        'The checksum in field additional_authenticated_data_crc32c did not match the data in field additional_authenticated_data.',
      );
    }
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', version.key, iv);
    const header = Buffer.alloc(5);
    header[0] = CIPHERTEXT_MAGIC;
    header.writeUInt32BE(id, 1);
    cipher.setAAD(Buffer.concat([header, Buffer.from(name), Buffer.from([0]), aad]));
    const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const ciphertext = Buffer.concat([header, iv, cipher.getAuthTag(), data]);
    return {
      name: `${name}/cryptoKeyVersions/${id}`,
      ciphertext: b64(ciphertext),
      ciphertextCrc32c: String(crc32c(ciphertext)),
      verifiedPlaintextCrc32c: plaintextCrc !== undefined,
      verifiedAdditionalAuthenticatedDataCrc32c: aadCrc !== undefined,
      protectionLevel: 'SOFTWARE',
    };
  }

  // https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys/decrypt
  function decrypt(name, principal, body) {
    const key = cryptoKey(name, principal, 'cloudkms.cryptoKeyVersions.useToDecrypt');
    const ciphertext = fromB64(body.ciphertext, 'ciphertext');
    const aad = fromB64(body.additionalAuthenticatedData, 'additional_authenticated_data');
    const ciphertextCrc = int64(body.ciphertextCrc32c);
    const aadCrc = int64(body.additionalAuthenticatedDataCrc32c);
    if (ciphertextCrc !== undefined && ciphertextCrc !== crc32c(ciphertext)) {
      throw new RpcError(400, 'INVALID_ARGUMENT', 'The checksum in field ciphertext_crc32c did not match the data in field ciphertext.');
    }
    if (aadCrc !== undefined && aadCrc !== crc32c(aad)) {
      throw new RpcError(
        400,
        'INVALID_ARGUMENT',
        'The checksum in field additional_authenticated_data_crc32c did not match the data in field additional_authenticated_data.',
      );
    }
    const invalid = () => new RpcError(400, 'INVALID_ARGUMENT', 'Decryption failed: the ciphertext is invalid.');
    if (ciphertext.length < 33 || ciphertext[0] !== CIPHERTEXT_MAGIC) throw invalid();
    const id = ciphertext.readUInt32BE(1);
    const version = key.versions.get(id);
    calls.push({ method: 'decrypt', key: name, version: id });
    if (!version) throw invalid();
    usable(name, id, version);
    const decipher = createDecipheriv('aes-256-gcm', version.key, ciphertext.subarray(5, 17));
    decipher.setAuthTag(ciphertext.subarray(17, 33));
    decipher.setAAD(Buffer.concat([ciphertext.subarray(0, 5), Buffer.from(name), Buffer.from([0]), aad]));
    let plaintext;
    try {
      plaintext = Buffer.concat([decipher.update(ciphertext.subarray(33)), decipher.final()]);
    } catch {
      throw invalid();
    }
    return {
      plaintext: b64(plaintext),
      plaintextCrc32c: String(crc32c(plaintext)),
      usedPrimary: id === key.primary,
      protectionLevel: 'SOFTWARE',
    };
  }

  async function readBody(req) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new RpcError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
    }
  }

  function route(method, path, principal, body, intEnums) {
    // The client sends the resource name unescaped in the path, with the custom verb after a colon.
    const verb = /^\/v1\/(.+):(encrypt|decrypt)$/.exec(path);
    if (method === 'POST' && verb) {
      const resource = decodeURIComponent(verb[1]);
      if (verb[2] === 'encrypt' && (KEY_NAME.test(resource) || VERSION_NAME.test(resource))) return encrypt(resource, principal, body);
      if (verb[2] === 'decrypt' && KEY_NAME.test(resource)) return decrypt(resource, principal, body);
    }
    const get = /^\/v1\/(.+)$/.exec(path);
    if (method === 'GET' && get && KEY_NAME.test(decodeURIComponent(get[1]))) {
      return getCryptoKey(decodeURIComponent(get[1]), principal, intEnums);
    }
    throw new RpcError(404, 'NOT_FOUND', `The requested URL ${path} was not found on this server.`);
  }

  const server = createServer(async (req, res) => {
    const send = (status, json) => {
      const text = JSON.stringify(json);
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const url = new URL(req.url, 'http://127.0.0.1');
      const body = req.method === 'POST' ? await readBody(req) : {};
      const principal = authenticate(req);
      const fault = faults.shift();
      if (fault) {
        calls.push({ method: 'fault', status: fault.status });
        throw new RpcError(fault.httpStatus, fault.status, fault.message);
      }
      const intEnums = /enum-encoding=int/.test(decodeURIComponent(url.search));
      const answer = route(req.method, url.pathname, principal, body, intEnums);
      if (corruptAnswers > 0 && (answer.ciphertextCrc32c || answer.plaintextCrc32c)) {
        // A bit flipped in transit: the checksum no longer matches the data.
        corruptAnswers--;
        if (answer.ciphertextCrc32c) answer.ciphertextCrc32c = String((Number(answer.ciphertextCrc32c) ^ 1) >>> 0);
        if (answer.plaintextCrc32c) answer.plaintextCrc32c = String((Number(answer.plaintextCrc32c) ^ 1) >>> 0);
      }
      send(200, answer);
    } catch (error) {
      if (error instanceof RpcError) {
        // https://cloud.google.com/apis/design/errors#http_mapping: google.rpc.Status as JSON.
        send(error.httpStatus, { error: { code: error.httpStatus, message: error.message, status: error.status } });
      } else {
        send(500, { error: { code: 500, message: 'Internal error encountered.', status: 'INTERNAL' } });
      }
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  const FAULTS = {
    throttle: [429, 'RESOURCE_EXHAUSTED', "Quota exceeded for quota metric 'Cryptographic requests' and limit 'Cryptographic requests per minute'."],
    unavailable: [503, 'UNAVAILABLE', 'The service is currently unavailable.'],
    internal: [500, 'INTERNAL', 'Internal error encountered.'],
  };

  return {
    host: '127.0.0.1',
    port,
    /** Creates a symmetric ENCRYPT_DECRYPT CryptoKey with version 1 as primary. */
    createKey(name, { allowed = [...accounts.keys()] } = {}) {
      if (!KEY_NAME.test(name)) throw new Error(`bad key name ${name}`);
      const now = new Date().toISOString();
      keys.set(name, {
        createTime: now,
        primary: 1,
        versions: new Map([[1, { state: 'ENABLED', key: randomBytes(32), createTime: now }]]),
        allowed: new Set(allowed),
      });
      return name;
    },
    /** A new key version that becomes primary (what a scheduled rotation does); returns its id. */
    rotateKey(name) {
      const key = keys.get(name);
      const id = Math.max(...key.versions.keys()) + 1;
      key.versions.set(id, { state: 'ENABLED', key: randomBytes(32), createTime: new Date().toISOString() });
      key.primary = id;
      return id;
    },
    /** ENABLED / DISABLED / DESTROYED; a destroyed version's key material is erased. */
    setVersionState(name, id, state) {
      const version = keys.get(name).versions.get(id);
      version.state = state;
      if (state === 'DESTROYED') version.key.fill(0);
    },
    revoke(name, email) {
      keys.get(name).allowed.delete(email);
    },
    /** The next `count` authenticated requests fail with `kind` (throttle | unavailable | internal). */
    fail(kind, count = 1) {
      const [httpStatus, status, message] = FAULTS[kind];
      for (let i = 0; i < count; i++) faults.push({ httpStatus, status, message });
    },
    /** The next `count` encrypt/decrypt answers carry a checksum that does not match their data. */
    corruptNextAnswers(count = 1) {
      corruptAnswers += count;
    },
    /** Every bearer token the server accepted (to check that none appears in an error). */
    bearerTokens,
    /** Requests served: [{ method: 'get' | 'encrypt' | 'decrypt' | 'fault', key, version }]. */
    calls,
    count(method, key, version) {
      return calls.filter((c) => c.method === method && (key === undefined || c.key === key) && (version === undefined || c.version === version)).length;
    },
    get authFailures() {
      return authFailures;
    },
    /** Stops answering: closes the listener and every open connection. */
    async close() {
      for (const socket of sockets) socket.destroy();
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
