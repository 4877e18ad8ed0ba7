/**
 * HashiCorp Vault's Transit secrets engine: {@link VaultTransitAdapter} (the envelope core's adapter,
 * over Vault's HTTP API with plain `fetch`) and {@link VaultTransitProvider}.
 *
 * Calls used (see docs/KMS.md for the policy): `POST <mount>/datakey/plaintext/<name>` (new data
 * key), `POST <mount>/encrypt/<name>`, `POST <mount>/decrypt/<name>`, `POST <mount>/rewrap/<name>`,
 * `GET <mount>/keys/<name>` (once, before the first write: the key must be derived for the `context`
 * binding), `POST auth/<approle mount>/login`. Every wrap is bound to the keyring id and version:
 * as the key-derivation `context` (a `derived` key; default) or as AEAD `associated_data`.
 */
import { randomBytes } from 'node:crypto';
import { SifreDBError } from '../../errors.js';
import { bindingAad, type GeneratedKey, type KeyBinding, type KmsAdapter, type WrappedKey } from './adapter.js';
import { EnvelopeKeyProvider, openEnvelope, ownCopy, type EnvelopeInit, type EnvelopeOpenMode, type EnvelopeOptions, type KmsRewrapResult } from './envelope.js';
import { kmsServiceError, NETWORK_ERROR_CODES, SifreDBKmsError, type KmsFailureReason } from './errors.js';

/** The provider name in keyring wraps. */
export const VAULT_TRANSIT_PROVIDER = 'vault-transit';

/** AppRole credentials (`auth/<mount>/login`). */
export interface VaultAppRoleCredentials {
  roleId: string;
  secretId: string;
  /** Where the AppRole auth method is mounted. Default `approle`. */
  mount?: string;
}

/** How to reach and authenticate to Vault, and which Transit key wraps the data keys. */
export interface VaultTransitConnection {
  /**
   * The Transit key: `<mount>/keys/<name>`, e.g. `transit/keys/app` (the mount may contain `/`).
   */
  key: string;
  /** Vault's address, e.g. `https://vault.example.com:8200`. Default: env `VAULT_ADDR`. */
  address?: string;
  /** A Vault token. Default: env `VAULT_TOKEN` (unless `appRole` is given). */
  token?: string;
  /** Log in with AppRole instead of a token (again when the token expires or is refused). */
  appRole?: VaultAppRoleCredentials;
  /** Vault Enterprise namespace (`X-Vault-Namespace`). Default: env `VAULT_NAMESPACE`. */
  namespace?: string;
  /**
   * How wraps are bound to the keyring id and version. `context` (default): the key must be created
   * with `derived=true`; the binding is the key-derivation context (works with `datakey` and
   * `rewrap`). `associated_data`: a non-derived AEAD key (aes*-gcm96, chacha20-poly1305; Vault
   * 1.12+); data keys are drawn locally and encrypted, and re-wraps decrypt and encrypt again.
   */
  binding?: 'context' | 'associated_data';
  /** Per-request timeout. Default 15 s. */
  requestTimeoutMs?: number;
  /** Attempts per call when Vault is unreachable, throttles (429) or fails (5xx). Default 3. */
  maxAttempts?: number;
  /** A `fetch` to use (custom TLS agent, proxy). Default: the global `fetch`. */
  fetch?: typeof fetch;
}

/** Options of {@link VaultTransitProvider.open} and {@link VaultTransitProvider.create}. */
export interface VaultTransitProviderOptions extends EnvelopeOptions, VaultTransitConnection {}

const KEY_BYTES = 32;
const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_ATTEMPTS = 3;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const MOUNT = /^[A-Za-z0-9][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9][A-Za-z0-9_.-]*)*$/;
const CIPHERTEXT = /^vault:v[1-9][0-9]{0,9}:[A-Za-z0-9+/=]+$/;

function invalidInput(message: string): never {
  throw new SifreDBError('ERR_SIFREDB_INPUT', message);
}

interface ParsedKey {
  readonly mount: string;
  readonly name: string;
}

/** `transit/keys/app` → mount `transit`, name `app`. */
export function parseVaultKey(key: unknown, where: string): ParsedKey {
  if (typeof key !== 'string') invalidInput(`${where}: key must be "<mount>/keys/<name>", e.g. "transit/keys/app"`);
  const trimmed = (key as string).replace(/^\/+|\/+$/g, '');
  const at = trimmed.lastIndexOf('/keys/');
  const mount = at > 0 ? trimmed.slice(0, at) : '';
  const name = at > 0 ? trimmed.slice(at + '/keys/'.length) : '';
  if (!MOUNT.test(mount) || !NAME.test(name) || mount.length > 256) {
    invalidInput(`${where}: key must be "<mount>/keys/<name>", e.g. "transit/keys/app"`);
  }
  return { mount, name };
}

function checkedOrigin(address: unknown, where: string): string {
  if (typeof address !== 'string' || address === '') {
    invalidInput(`${where}: no Vault address; pass address or set VAULT_ADDR`);
  }
  let url: URL;
  try {
    url = new URL(address as string);
  } catch {
    return invalidInput(`${where}: address must be a URL like https://vault.example.com:8200`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '' || url.search !== '') {
    invalidInput(`${where}: address must be an http(s) URL without credentials or query`);
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

interface VaultAnswer {
  readonly data: Record<string, unknown>;
  readonly auth?: Record<string, unknown>;
}

/**
 * The Vault Transit adapter. One instance per Transit key; it holds the token (or the AppRole
 * login's token) in memory only, never in messages.
 */
export class VaultTransitAdapter implements KmsAdapter {
  readonly provider = VAULT_TRANSIT_PROVIDER;
  /** `[<namespace>/]<mount>/keys/<name>`: what wraps record (not the address, which may change). */
  readonly keyId: string;
  readonly #origin: string;
  readonly #mount: string;
  readonly #name: string;
  readonly #namespace: string | undefined;
  readonly #binding: 'context' | 'associated_data';
  readonly #timeoutMs: number;
  readonly #maxAttempts: number;
  readonly #fetch: typeof fetch;
  readonly #appRole: VaultAppRoleCredentials | undefined;
  #token: string | undefined;
  #tokenExpiresAt = Infinity;
  #login: Promise<void> | undefined;
  #keyChecked = false;

  constructor(connection: VaultTransitConnection) {
    const where = 'VaultTransitProvider';
    if (typeof connection !== 'object' || connection === null) invalidInput(`${where}: options must be an object`);
    const { mount, name } = parseVaultKey(connection.key, where);
    this.#mount = mount;
    this.#name = name;
    this.#origin = checkedOrigin(connection.address ?? process.env.VAULT_ADDR, where);
    const namespace = connection.namespace ?? (process.env.VAULT_NAMESPACE || undefined);
    if (namespace !== undefined && (typeof namespace !== 'string' || !MOUNT.test(namespace.replace(/^\/+|\/+$/g, '')))) {
      invalidInput(`${where}: namespace must be a Vault namespace path like "team-a" or "org/team-a"`);
    }
    this.#namespace = namespace?.replace(/^\/+|\/+$/g, '');
    this.keyId = `${this.#namespace ? `${this.#namespace}/` : ''}${mount}/keys/${name}`;
    const binding = connection.binding ?? 'context';
    if (binding !== 'context' && binding !== 'associated_data') invalidInput(`${where}: binding must be "context" or "associated_data"`);
    this.#binding = binding;
    const timeout = connection.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) invalidInput(`${where}: requestTimeoutMs must be a positive number`);
    this.#timeoutMs = timeout;
    const attempts = connection.maxAttempts ?? DEFAULT_ATTEMPTS;
    if (!Number.isInteger(attempts) || attempts < 1 || attempts > 10) invalidInput(`${where}: maxAttempts must be an integer in 1..10`);
    this.#maxAttempts = attempts;
    const fetcher = connection.fetch ?? globalThis.fetch;
    if (typeof fetcher !== 'function') invalidInput(`${where}: no fetch available (Node 18+), or pass fetch`);
    this.#fetch = fetcher;
    if (connection.appRole !== undefined) {
      const { roleId, secretId, mount: roleMount = 'approle' } = connection.appRole ?? ({} as VaultAppRoleCredentials);
      if (typeof roleId !== 'string' || roleId === '' || typeof secretId !== 'string' || secretId === '') {
        invalidInput(`${where}: appRole needs roleId and secretId`);
      }
      if (typeof roleMount !== 'string' || !MOUNT.test(roleMount)) invalidInput(`${where}: appRole.mount must be an auth mount path`);
      if (connection.token !== undefined) invalidInput(`${where}: give token or appRole, not both`);
      this.#appRole = { roleId, secretId, mount: roleMount };
    } else {
      const token = connection.token ?? (process.env.VAULT_TOKEN || undefined);
      if (typeof token !== 'string' || token === '' || /[\s]/.test(token)) {
        invalidInput(`${where}: no Vault token; pass token or appRole, or set VAULT_TOKEN`);
      }
      this.#token = token;
    }
  }

  get description(): string {
    return `vault-transit:${this.#origin} ${this.keyId}`;
  }

  /** An adapter for another Transit key on the same Vault, with the same credentials. */
  withKey(key: string): VaultTransitAdapter {
    const { mount, name } = parseVaultKey(key, 'rewrap');
    return new VaultTransitAdapter({
      key: `${mount}/keys/${name}`,
      address: this.#origin,
      ...(this.#appRole ? { appRole: this.#appRole } : { token: this.#token! }),
      ...(this.#namespace ? { namespace: this.#namespace } : {}),
      binding: this.#binding,
      requestTimeoutMs: this.#timeoutMs,
      maxAttempts: this.#maxAttempts,
      fetch: this.#fetch,
    });
  }

  owns(wrapped: WrappedKey): boolean {
    return wrapped.provider === VAULT_TRANSIT_PROVIDER && wrapped.keyId === this.keyId;
  }

  async generate(binding: KeyBinding): Promise<GeneratedKey> {
    if (this.#binding === 'associated_data') {
      // `datakey` takes no associated data: draw the key here and encrypt it.
      const plaintext = ownCopy(randomBytes(KEY_BYTES));
      try {
        return { plaintext, wrapped: await this.wrap(plaintext, binding) };
      } catch (error) {
        plaintext.fill(0);
        throw error;
      }
    }
    await this.#checkKey(binding);
    const action = `making version ${binding.version} of KMS keyring ${binding.keyringId}`;
    const answer = await this.#call('datakey', `datakey/plaintext/${this.#name}`, { ...this.#bindingField(binding), bits: 256 }, action);
    const plaintext = decodePlaintext(answer.data.plaintext);
    const ciphertext = answer.data.ciphertext;
    if (plaintext === undefined || typeof ciphertext !== 'string' || !CIPHERTEXT.test(ciphertext)) {
      plaintext?.fill(0);
      throw this.#invalidResponse('datakey', action);
    }
    return { plaintext, wrapped: this.#wrapped(ciphertext) };
  }

  async wrap(plaintext: Uint8Array, binding: KeyBinding): Promise<WrappedKey> {
    await this.#checkKey(binding);
    const action = `wrapping version ${binding.version} of KMS keyring ${binding.keyringId}`;
    const encoded = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString('base64');
    const answer = await this.#call('encrypt', `encrypt/${this.#name}`, { plaintext: encoded, ...this.#bindingField(binding) }, action);
    const ciphertext = answer.data.ciphertext;
    if (typeof ciphertext !== 'string' || !CIPHERTEXT.test(ciphertext)) throw this.#invalidResponse('encrypt', action);
    return this.#wrapped(ciphertext);
  }

  async unwrap(wrapped: WrappedKey, binding: KeyBinding): Promise<Uint8Array> {
    const action = `unwrapping version ${binding.version} of KMS keyring ${binding.keyringId}`;
    try {
      const answer = await this.#call('decrypt', `decrypt/${this.#name}`, { ciphertext: wrapped.wrappedKey, ...this.#bindingField(binding) }, action);
      const plaintext = decodePlaintext(answer.data.plaintext);
      if (plaintext === undefined) throw this.#invalidResponse('decrypt', action);
      return plaintext;
    } catch (error) {
      throw this.#wrongKey(error, wrapped, 'decrypt', action);
    }
  }

  /** Vault `rewrap`: to the key's newest version, inside Vault (`context` binding, same key only). */
  async rewrap(wrapped: WrappedKey, binding: KeyBinding): Promise<WrappedKey | undefined> {
    if (this.#binding !== 'context' || !this.owns(wrapped)) return undefined;
    const action = `re-wrapping version ${binding.version} of KMS keyring ${binding.keyringId}`;
    const answer = await this.#call('rewrap', `rewrap/${this.#name}`, { ciphertext: wrapped.wrappedKey, ...this.#bindingField(binding) }, action);
    const ciphertext = answer.data.ciphertext;
    if (typeof ciphertext !== 'string' || !CIPHERTEXT.test(ciphertext)) throw this.#invalidResponse('rewrap', action);
    return this.#wrapped(ciphertext);
  }

  // --- internals -----------------------------------------------------------------------------

  #wrapped(ciphertext: string): WrappedKey {
    return { provider: VAULT_TRANSIT_PROVIDER, keyId: this.keyId, wrappedKey: ciphertext };
  }

  #bindingField(binding: KeyBinding): Record<string, string> {
    const aad = bindingAad(binding).toString('base64');
    return this.#binding === 'context' ? { context: aad } : { associated_data: aad };
  }

  /** A decrypt under this key of a wrap recorded for another key failing as "altered" is a wrong key. */
  #wrongKey(error: unknown, wrapped: WrappedKey, operation: string, action: string): unknown {
    if (!(error instanceof SifreDBKmsError) || error.reason !== 'invalid-ciphertext' || this.owns(wrapped)) return error;
    return kmsServiceError({
      provider: VAULT_TRANSIT_PROVIDER,
      service: 'Vault Transit',
      operation,
      action,
      keyId: this.keyId,
      target: this.#origin,
      reason: 'wrong-key',
      hint: `the keyring was wrapped under Vault key ${wrapped.keyId}, not ${this.keyId}; configure that key, or rewrap the keyring`,
      serviceErrorName: error.serviceErrorName,
      httpStatusCode: error.httpStatusCode,
    });
  }

  /** Before the first write: with the `context` binding the key must be derived, or Vault would ignore the context. */
  async #checkKey(binding: KeyBinding): Promise<void> {
    if (this.#keyChecked) return;
    const action = `checking Vault key ${this.keyId} before writing version ${binding.version} of KMS keyring ${binding.keyringId}`;
    const answer = await this.#call('read-key', `keys/${this.#name}`, undefined, action);
    const { derived, type, supports_encryption: encrypts } = answer.data as { derived?: unknown; type?: unknown; supports_encryption?: unknown };
    if (encrypts === false) {
      throw this.#refused('read-key', action, `Vault key ${this.keyId} (type ${String(type)}) cannot encrypt; use an aes256-gcm96 or chacha20-poly1305 key`);
    }
    if (this.#binding === 'context' && derived !== true) {
      throw this.#refused(
        'read-key',
        action,
        `Vault key ${this.keyId} is not a derived key, so Vault would ignore the keyring binding; create it with derived=true, or use binding: "associated_data"`,
      );
    }
    this.#keyChecked = true;
  }

  #refused(operation: string, action: string, hint: string): SifreDBKmsError {
    return kmsServiceError({ provider: VAULT_TRANSIT_PROVIDER, service: 'Vault Transit', operation, action, keyId: this.keyId, target: this.#origin, reason: 'refused', hint });
  }

  #invalidResponse(operation: string, action: string): SifreDBKmsError {
    return kmsServiceError({ provider: VAULT_TRANSIT_PROVIDER, service: 'Vault Transit', operation, action, keyId: this.keyId, target: this.#origin, reason: 'invalid-response' });
  }

  /** The current token: the configured one, or an AppRole login's (one login shared by concurrent calls). */
  async #currentToken(action: string): Promise<string> {
    if (this.#appRole && (this.#token === undefined || Date.now() >= this.#tokenExpiresAt)) {
      this.#login ??= this.#logIn(action).finally(() => {
        this.#login = undefined;
      });
      await this.#login;
    }
    return this.#token!;
  }

  async #logIn(action: string): Promise<void> {
    const role = this.#appRole!;
    const answer = await this.#request('login', `auth/${role.mount}/login`, { role_id: role.roleId, secret_id: role.secretId }, undefined, `logging in with AppRole while ${action}`);
    const token = answer.auth?.client_token;
    const lease = answer.auth?.lease_duration;
    if (typeof token !== 'string' || token === '') throw this.#invalidResponse('login', 'logging in with AppRole');
    this.#token = token;
    // Renew a little before expiry; a lease of 0 means no expiry.
    this.#tokenExpiresAt = typeof lease === 'number' && lease > 0 ? Date.now() + lease * 900 : Infinity;
  }

  /** A Transit call with the current token; with AppRole, a refused token is replaced once. */
  async #call(operation: string, path: string, body: Record<string, unknown> | undefined, action: string): Promise<VaultAnswer> {
    const token = await this.#currentToken(action);
    try {
      return await this.#request(operation, `${this.#mount}/${path}`, body, token, action);
    } catch (error) {
      if (!this.#appRole || !(error instanceof SifreDBKmsError) || error.httpStatusCode !== 403 || this.#token !== token) throw error;
      this.#token = undefined;
      return this.#request(operation, `${this.#mount}/${path}`, body, await this.#currentToken(action), action);
    }
  }

  /** One Vault API call, retried when Vault is unreachable, throttles or fails (5xx). */
  async #request(operation: string, path: string, body: Record<string, unknown> | undefined, token: string | undefined, action: string): Promise<VaultAnswer> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token !== undefined) headers['x-vault-token'] = token;
    if (this.#namespace) headers['x-vault-namespace'] = this.#namespace;
    const url = `${this.#origin}/v1/${path}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let failure: SifreDBKmsError | undefined;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) await sleep(Math.min(2000, 100 * 2 ** (attempt - 2)) * (0.5 + Math.random()));
      let response: Response;
      let text: string;
      try {
        response = await this.#fetch(url, {
          method: body === undefined ? 'GET' : 'POST',
          headers,
          ...(payload !== undefined ? { body: payload } : {}),
          signal: AbortSignal.timeout(this.#timeoutMs),
          // fetch keeps custom headers across a cross-origin redirect: never send the token elsewhere.
          redirect: 'error',
        });
        text = await response.text();
      } catch (error) {
        failure = this.#networkFailure(error, operation, action, attempt);
        continue;
      }
      if (response.ok) {
        let parsed: unknown;
        try {
          parsed = text === '' ? {} : JSON.parse(text);
        } catch {
          throw this.#invalidResponse(operation, action);
        }
        const answer = parsed as { data?: unknown; auth?: unknown };
        return {
          data: typeof answer?.data === 'object' && answer.data !== null ? (answer.data as Record<string, unknown>) : {},
          ...(typeof answer?.auth === 'object' && answer.auth !== null ? { auth: answer.auth as Record<string, unknown> } : {}),
        };
      }
      failure = this.#httpFailure(response.status, text, operation, action, attempt, response.headers.get('x-vault-request-id'));
      if (!failure.transient) throw failure;
    }
    throw failure!;
  }

  #networkFailure(error: unknown, operation: string, action: string, attempts: number): SifreDBKmsError {
    const e = error as { name?: unknown; code?: unknown; cause?: { code?: unknown; name?: unknown } };
    const timeout = e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.cause?.name === 'ConnectTimeoutError';
    const code = typeof e?.cause?.code === 'string' ? e.cause.code : typeof e?.code === 'string' ? e.code : undefined;
    const networkErrorCode = timeout ? 'ETIMEDOUT' : code !== undefined && NETWORK_ERROR_CODES.has(code) ? code : code ? code.replace(/[^A-Z0-9_]/g, '').slice(0, 40) || 'network error' : 'fetch failed';
    return kmsServiceError({
      provider: VAULT_TRANSIT_PROVIDER,
      service: 'Vault',
      operation,
      action,
      keyId: this.keyId,
      target: this.#origin,
      reason: 'unreachable',
      networkErrorCode,
      attempts,
    });
  }

  #httpFailure(status: number, text: string, operation: string, action: string, attempts: number, requestId: string | null): SifreDBKmsError {
    let messages: string[] = [];
    try {
      const parsed = JSON.parse(text) as { errors?: unknown };
      if (Array.isArray(parsed?.errors)) messages = parsed.errors.filter((m): m is string => typeof m === 'string');
    } catch {
      // Not Vault's JSON (a proxy's page): the status alone speaks.
    }
    const said = messages.join('; ');
    const lower = said.toLowerCase();
    let reason: KmsFailureReason = 'refused';
    let hint: string | undefined;
    if (status === 429) reason = 'throttled';
    else if (status >= 500) reason = 'service';
    else if (status === 403) {
      reason = operation === 'login' ? 'credentials' : 'denied';
      hint =
        operation === 'login'
          ? 'Vault refused the AppRole login (wrong role id or secret id, or the secret id expired)'
          : `permission denied on ${this.#mount}/${operation === 'read-key' ? 'keys' : operation === 'datakey' ? 'datakey/plaintext' : operation}/${this.#name}: ` +
            'the token is invalid or expired, or its policy lacks this path (docs/KMS.md)';
    } else if (status === 404 || lower.includes('key not found') || lower.includes('no existing key')) reason = 'not-found';
    else if (lower.includes('disallowed by policy') || lower.includes('too old') || lower.includes('min_decryption_version')) {
      reason = 'disabled';
      hint = `Vault key ${this.keyId} no longer decrypts this key version (min_decryption_version was raised, or the version was trimmed); lower it again to read data encrypted under it`;
    } else if (lower.includes('message authentication failed') || lower.includes('invalid ciphertext') || lower.includes('unable to decode') || lower.includes('invalid version')) {
      reason = 'invalid-ciphertext';
    }
    // Vault's messages name paths, keys and states; they do not echo tokens, plaintext or ciphertext.
    return kmsServiceError({
      provider: VAULT_TRANSIT_PROVIDER,
      service: status === 429 || status >= 500 ? 'Vault' : 'Vault Transit',
      operation,
      action,
      keyId: this.keyId,
      target: this.#origin,
      reason,
      hint,
      serviceErrorName: `HTTP ${status}`,
      httpStatusCode: status,
      attempts,
      requestId: requestId ?? undefined,
      serviceMessage: said,
    });
  }
}

function decodePlaintext(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]{43}=$/.test(value)) return undefined;
  const decoded = Buffer.from(value, 'base64');
  const bytes = ownCopy(decoded);
  decoded.fill(0);
  return bytes.length === KEY_BYTES ? bytes : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A key provider whose root keys are data keys wrapped by a HashiCorp Vault Transit key (envelope
 * encryption). Opening an existing keyring calls Vault only to log in (AppRole); each version is
 * unwrapped with one `decrypt` when the Vault loads it, once per provider instance.
 */
export class VaultTransitProvider extends EnvelopeKeyProvider {
  private constructor(init: EnvelopeInit) {
    super(init);
  }

  /** Opens the keyring, creating it with version 1 (one `datakey` call) when it does not exist (unless `createIfMissing: false`). */
  static async open(options: VaultTransitProviderOptions): Promise<VaultTransitProvider> {
    return VaultTransitProvider.#start(options, options?.createIfMissing === false ? 'never' : 'if-missing');
  }

  /** Creates a new keyring with version 1; fails with `ERR_SIFREDB_KEY` if one already exists. */
  static async create(options: VaultTransitProviderOptions): Promise<VaultTransitProvider> {
    return VaultTransitProvider.#start(options, 'always');
  }

  static async #start(options: VaultTransitProviderOptions, mode: EnvelopeOpenMode): Promise<VaultTransitProvider> {
    if (typeof options !== 'object' || options === null) invalidInput('VaultTransitProvider: options must be an object');
    const adapter = new VaultTransitAdapter(options);
    return openEnvelope('VaultTransitProvider', options, [adapter], mode, (init) => new VaultTransitProvider(init));
  }

  /** The Transit key, `[<namespace>/]<mount>/keys/<name>`; after a rewrap to another key, that one. */
  get keyId(): string {
    return this.adapters[0]!.keyId;
  }

  /**
   * Re-wraps every version: under the Transit key's newest version with Vault `rewrap` (one call per
   * version, the data keys stay in Vault; after `vault write -f transit/keys/<name>/rotate`), or
   * under another Transit key on the same Vault (`newKey`, e.g. `transit/keys/app-2`: one decrypt +
   * one encrypt per version unless loaded). Field data is untouched.
   */
  rewrap(newKey?: string): Promise<KmsRewrapResult> {
    const current = this.adapters[0] as VaultTransitAdapter;
    return this.rewrapWith(current, newKey === undefined ? current : current.withKey(newKey));
  }
}
