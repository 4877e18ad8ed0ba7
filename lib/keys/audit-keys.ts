/**
 * Audit keys: the Ed25519 keys that sign audit records (docs/AUDIT.md), kept apart from the
 * encryption keys in their own 0600 file, so that an auditor can be given the public keys alone and
 * a leak of one kind of key does not give the other.
 *
 * ```json
 * { "format": "sifredb-audit-keys", "version": 1, "current": "<key id hex>",
 *   "keys": [{ "keyId", "createdAt", "status": "active" | "retired", "publicKey", "secretKey" }] }
 * ```
 *
 * Under KMS (`{ kms: adapter }`, any adapter of the envelope core: AWS, Vault Transit, GCP, Azure),
 * an entry holds `"wrappedSecretKey": { "provider", "keyId", "wrappedKey" }` instead of
 * `"secretKey"`: the 32-byte Ed25519 secret wrapped by the service, bound to
 * `{ keyringId: "sifredb-audit:<key id>", version: 1 }`, so that a wrap cannot be moved to another
 * entry. It is unwrapped for {@link AuditKeyFile.signer} only, and checked against its public key.
 *
 * Keys are base64; the key id is the hex of the first 16 bytes of SHA-256 of the public key, and is
 * in every record it signs. The file is written like the keystore (`writeFileAtomically` of
 * lib/keys/atomic-file.ts: temp file 0600, fsync, rename, directory fsync), onto the real file when
 * the path is a symlink (the link stays), and updates hold the real file's `.lock`.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { getBackend } from '../backend/default.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { auditKeyId } from '../format/audit-record.js';
import { FileExistsError, realFilePath, writeFileAtomically } from './atomic-file.js';
import { readPrivateJson } from './json-file.js';
import { withFileLock } from './lock-file.js';
import { decodeKeyMaterial, isKeyStatus } from './material.js';
import type { KeyStatus } from './provider.js';
import type { KeyBinding, KmsAdapter, WrappedKey } from './kms/adapter.js';

/** `format` of the audit key file. */
export const AUDIT_KEYS_FORMAT = 'sifredb-audit-keys';
/** `format` of the public key file given to auditors. */
export const AUDIT_PUBLIC_KEYS_FORMAT = 'sifredb-audit-public-keys';
const FILE_VERSION = 1;

interface AuditKeyEntry {
  keyId: string;
  createdAt: string;
  status: KeyStatus;
  publicKey: string;
  /** The secret key, base64; or, under KMS, {@link wrappedSecretKey}. */
  secretKey?: string;
  wrappedSecretKey?: WrappedKey;
}

/** What a wrapped audit secret key is bound to: its own key id. */
const auditBinding = (keyId: string): KeyBinding => ({ keyringId: `sifredb-audit:${keyId}`, version: 1 });

interface AuditKeysFile {
  format: typeof AUDIT_KEYS_FORMAT;
  version: typeof FILE_VERSION;
  current: string;
  keys: AuditKeyEntry[];
}

/** An audit public key, as auditors get it. */
export interface AuditPublicKey {
  /** 16 bytes: SHA-256 of the public key, truncated. */
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly createdAt: Date;
  readonly status: KeyStatus;
}

function keyError(message: string, cause?: unknown): SifreDBError {
  return new SifreDBError(ERROR_CODES.key, message, cause === undefined ? undefined : { cause });
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Writes the file through {@link writeFileAtomically}, its failures as `ERR_SIFREDB_KEY`; the text is wiped. */
async function writeKeyFile(path: string, text: string, mode: 'create' | 'replace'): Promise<void> {
  const data = Buffer.from(text, 'utf8');
  try {
    await writeFileAtomically(path, data, mode);
  } catch (error) {
    if (error instanceof FileExistsError) throw keyError(`refusing to overwrite existing file ${path}; pass { overwrite: true } to replace it`);
    const code = (error as { code?: unknown })?.code;
    throw keyError(`cannot write audit key file ${path}${typeof code === 'string' ? ` (${code})` : ''}`, error);
  } finally {
    data.fill(0);
  }
}

/** A new key pair entry (its secret wrapped under `kms` when given); the secret bytes are wiped once encoded. */
async function newEntry(kms?: KmsAdapter): Promise<AuditKeyEntry> {
  const secret = randomBytes(32);
  try {
    const publicKey = getBackend().ed25519.publicKey(secret);
    const keyId = hex(auditKeyId(publicKey));
    const entry = { keyId, createdAt: new Date().toISOString(), status: 'active' as const, publicKey: publicKey.toString('base64') };
    if (kms === undefined) return { ...entry, secretKey: secret.toString('base64') };
    const wrapped = await kms.wrap(secret, auditBinding(keyId));
    return { ...entry, wrappedSecretKey: { provider: wrapped.provider, keyId: wrapped.keyId, wrappedKey: wrapped.wrappedKey } };
  } finally {
    secret.fill(0);
  }
}

function isWrappedKey(value: unknown): value is WrappedKey {
  const w = value as Record<string, unknown> | null;
  return typeof w === 'object' && w !== null && !Array.isArray(w) && [w.provider, w.keyId, w.wrappedKey].every((v) => typeof v === 'string' && v !== '');
}

function validate(data: unknown, path: string): AuditKeysFile {
  const bad = (why: string) => keyError(`audit key file ${path} is invalid: ${why}`);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('not a JSON object');
  const file = data as Record<string, unknown>;
  if (file.format !== AUDIT_KEYS_FORMAT) throw bad(`"format" must be "${AUDIT_KEYS_FORMAT}"`);
  if (file.version !== FILE_VERSION) throw bad(`unsupported version ${JSON.stringify(file.version)} (this reader knows 1)`);
  if (!Array.isArray(file.keys) || file.keys.length === 0) throw bad('"keys" must be a non-empty array');
  const seen = new Set<string>();
  for (const [i, raw] of (file.keys as unknown[]).entries()) {
    if (typeof raw !== 'object' || raw === null) throw bad(`keys[${i}] is not an object`);
    const entry = raw as Record<string, unknown>;
    if (typeof entry.keyId !== 'string' || !/^[0-9a-f]{32}$/.test(entry.keyId)) throw bad(`keys[${i}].keyId must be 32 hex digits`);
    if (seen.has(entry.keyId)) throw bad(`key ${entry.keyId} appears twice`);
    seen.add(entry.keyId);
    if (typeof entry.createdAt !== 'string' || Number.isNaN(Date.parse(entry.createdAt))) throw bad(`keys[${i}].createdAt must be an ISO 8601 date`);
    if (!isKeyStatus(entry.status)) throw bad(`keys[${i}].status must be "active" or "retired"`);
    let publicKey: Buffer;
    let secret: Buffer;
    if ((entry.secretKey === undefined) === (entry.wrappedSecretKey === undefined)) throw bad(`keys[${i}] must have one of "secretKey" and "wrappedSecretKey"`);
    if (entry.wrappedSecretKey !== undefined) {
      // Checked against the public key when unwrapped (AuditKeyFile.signer).
      if (!isWrappedKey(entry.wrappedSecretKey)) throw bad(`keys[${i}].wrappedSecretKey must be { "provider", "keyId", "wrappedKey" } strings`);
      try {
        publicKey = decodeKeyMaterial(entry.publicKey, `keys[${i}].publicKey`);
      } catch (error) {
        throw bad((error as Error).message);
      }
      if (hex(auditKeyId(publicKey)) !== entry.keyId) throw bad(`keys[${i}].keyId is not the id of its public key`);
      continue;
    }
    try {
      publicKey = decodeKeyMaterial(entry.publicKey, `keys[${i}].publicKey`);
      secret = decodeKeyMaterial(entry.secretKey, `keys[${i}].secretKey`);
    } catch (error) {
      throw bad((error as Error).message);
    }
    try {
      // A secret key that does not match its public key would sign records no one can verify.
      if (!getBackend().ed25519.publicKey(secret).equals(publicKey)) throw bad(`keys[${i}]: the secret key does not match the public key`);
      if (hex(auditKeyId(publicKey)) !== entry.keyId) throw bad(`keys[${i}].keyId is not the id of its public key`);
    } finally {
      secret.fill(0);
    }
  }
  const current = (file.keys as AuditKeyEntry[]).find((k) => k.keyId === file.current);
  if (current === undefined) throw bad('"current" must name one of the keys');
  if (current.status !== 'active') throw bad('the current key must be active');
  return file as unknown as AuditKeysFile;
}

const serialize = (file: AuditKeysFile): string => `${JSON.stringify(file, null, 2)}\n`;

/**
 * Signs with one audit key: holds a copy of the secret key until {@link AuditSigner.close} wipes it.
 */
export class AuditSigner {
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly #secret: Buffer;
  #closed = false;

  /** @param secretKey - 32 bytes; copied (the caller may wipe its buffer). */
  constructor(secretKey: Uint8Array) {
    if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
      throw new SifreDBError(ERROR_CODES.input, 'secretKey must be 32 bytes');
    }
    this.#secret = Buffer.allocUnsafeSlow(32);
    this.#secret.set(secretKey);
    this.publicKey = getBackend().ed25519.publicKey(this.#secret);
    this.keyId = auditKeyId(this.publicKey);
  }

  /** The Ed25519 signature of `message` (a record or checkpoint). */
  sign(message: Uint8Array): Buffer {
    if (this.#closed) throw keyError('this audit signer is closed');
    return getBackend().ed25519.sign(this.#secret, message);
  }

  /** Wipes the secret key; later {@link sign} calls fail. */
  close(): void {
    this.#secret.fill(0);
    this.#closed = true;
  }
}

/** Options of {@link AuditKeyFile.open}. */
export interface AuditKeyFileOpenOptions {
  /** Load the file even when group or others may access it (default `false`: `ERR_SIFREDB_KEY`). */
  allowInsecurePermissions?: boolean;
  /** The KMS adapter that unwraps (and, on rotate, wraps) secret keys held wrapped; not closed by the file. */
  kms?: KmsAdapter;
}

/** The audit key file: create, open, rotate, sign with the current key, export the public keys. */
export class AuditKeyFile {
  readonly path: string;
  readonly #allowInsecure: boolean;
  readonly #kms: KmsAdapter | undefined;

  private constructor(path: string, allowInsecure: boolean, kms: KmsAdapter | undefined) {
    this.path = path;
    this.#allowInsecure = allowInsecure;
    this.#kms = kms;
    Object.freeze(this);
  }

  /**
   * Where the audit keys of the keystore at `keystorePath` go by default: beside it, as
   * `<keystore>.audit.json` — a file of its own, never inside the keystore.
   */
  static pathBeside(keystorePath: string): string {
    return `${resolve(keystorePath)}.audit.json`;
  }

  /**
   * Creates a file holding one fresh key pair (current) and opens it.
   * @throws `ERR_SIFREDB_KEY` when a file exists at `path` (unless `overwrite`), or on I/O errors.
   */
  static async create(path: string, options: { overwrite?: boolean; kms?: KmsAdapter } = {}): Promise<AuditKeyFile> {
    const absolute = resolve(path);
    const entry = await newEntry(options.kms);
    const file: AuditKeysFile = { format: AUDIT_KEYS_FORMAT, version: FILE_VERSION, current: entry.keyId, keys: [entry] };
    await writeKeyFile(absolute, serialize(file), options.overwrite === true ? 'replace' : 'create');
    return new AuditKeyFile(absolute, false, options.kms);
  }

  /** Opens and validates an existing file (permissions, JSON, every key pair). */
  static async open(path: string, options: AuditKeyFileOpenOptions = {}): Promise<AuditKeyFile> {
    const file = new AuditKeyFile(resolve(path), options.allowInsecurePermissions === true, options.kms);
    await file.#read();
    return file;
  }

  async #read(): Promise<AuditKeysFile> {
    const data = await readPrivateJson(this.path, { what: `audit key file ${this.path}`, allowInsecurePermissions: this.#allowInsecure });
    if (data === undefined) throw keyError(`cannot read audit key file ${this.path} (ENOENT)`);
    return validate(data, this.path);
  }

  /** Every public key, oldest first. */
  async publicKeys(): Promise<AuditPublicKey[]> {
    const file = await this.#read();
    return file.keys.map((k) => Object.freeze({
      keyId: Buffer.from(k.keyId, 'hex'),
      publicKey: decodeKeyMaterial(k.publicKey, 'publicKey'),
      createdAt: new Date(k.createdAt),
      status: k.status,
    }));
  }

  /** A signer on the current key (close it when done: it holds the secret key). */
  async signer(): Promise<AuditSigner> {
    const file = await this.#read();
    const entry = file.keys.find((k) => k.keyId === file.current)!;
    const secret = entry.wrappedSecretKey === undefined ? decodeKeyMaterial(entry.secretKey, 'secretKey') : await this.#unwrap(entry);
    try {
      return new AuditSigner(secret);
    } finally {
      secret.fill(0);
    }
  }

  /** The 32 secret bytes of a wrapped entry, checked against its public key (the caller wipes them). */
  async #unwrap(entry: AuditKeyEntry): Promise<Buffer> {
    const wrapped = entry.wrappedSecretKey!;
    const kms = this.#kms;
    if (kms === undefined) throw keyError(`audit key ${entry.keyId} in ${this.path} is wrapped under KMS (${wrapped.provider} ${wrapped.keyId}): open the file with { kms }`);
    const plain = await kms.unwrap(wrapped, auditBinding(entry.keyId));
    const secret = Buffer.alloc(32);
    try {
      if (plain.length !== 32) throw keyError(`audit key ${entry.keyId} in ${this.path}: the KMS unwrapped ${plain.length} bytes, not 32`);
      secret.set(plain);
    } finally {
      plain.fill(0);
    }
    if (!getBackend().ed25519.publicKey(secret).equals(Buffer.from(entry.publicKey, 'base64'))) {
      secret.fill(0);
      throw keyError(`audit key ${entry.keyId} in ${this.path}: the unwrapped secret key does not match the public key`);
    }
    return secret;
  }

  /**
   * Adds a key pair and makes it current; older keys stay (active, so that their records keep
   * verifying, and their public keys stay in exports). Returns the new public key.
   */
  async rotate(): Promise<AuditPublicKey> {
    // The lock is the real file's, so that two paths (a link and its target) share one lock.
    const target = await realFilePath(this.path).catch((error: unknown) => {
      throw keyError(`cannot resolve audit key file ${this.path}`, error);
    });
    const entry = await withFileLock(target, { what: `audit key file ${this.path}` }, async () => {
      const file = await this.#read();
      // A file whose keys are wrapped stays wrapped: rotating it needs the adapter.
      if (this.#kms === undefined && file.keys.some((k) => k.wrappedSecretKey !== undefined)) {
        throw keyError(`the keys of ${this.path} are wrapped under KMS: open the file with { kms } to rotate it`);
      }
      const added = await newEntry(this.#kms);
      file.keys.push(added);
      file.current = added.keyId;
      await writeKeyFile(this.path, serialize(file), 'replace');
      return added;
    });
    return Object.freeze({
      keyId: Buffer.from(entry.keyId, 'hex'),
      publicKey: Buffer.from(entry.publicKey, 'base64'),
      createdAt: new Date(entry.createdAt),
      status: entry.status,
    });
  }

  /** The public key file for auditors (JSON text): every key id and public key, no secret. */
  async exportPublicKeys(): Promise<string> {
    return formatPublicKeys(await this.publicKeys());
  }
}

/** The JSON text of a public key file. */
export function formatPublicKeys(keys: readonly AuditPublicKey[]): string {
  const file = {
    format: AUDIT_PUBLIC_KEYS_FORMAT,
    version: FILE_VERSION,
    keys: keys.map((k) => ({ keyId: hex(k.keyId), publicKey: Buffer.from(k.publicKey).toString('base64'), createdAt: k.createdAt.toISOString(), status: k.status })),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * Parses a public key file (from {@link AuditKeyFile.exportPublicKeys}); also accepts the audit key
 * file itself, whose secret keys are then ignored. `ERR_SIFREDB_KEY` when malformed.
 */
export function parsePublicKeys(text: string, where = 'public key file'): AuditPublicKey[] {
  const bad = (why: string) => keyError(`${where} is invalid: ${why}`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw bad('not valid JSON');
  }
  const file = data as Record<string, unknown> | null;
  if (file === null || typeof file !== 'object' || (file.format !== AUDIT_PUBLIC_KEYS_FORMAT && file.format !== AUDIT_KEYS_FORMAT)) {
    throw bad(`"format" must be "${AUDIT_PUBLIC_KEYS_FORMAT}"`);
  }
  if (!Array.isArray(file.keys) || file.keys.length === 0) throw bad('"keys" must be a non-empty array');
  return (file.keys as Record<string, unknown>[]).map((k, i) => {
    let publicKey: Buffer;
    try {
      publicKey = decodeKeyMaterial(k?.publicKey, `keys[${i}].publicKey`);
    } catch (error) {
      throw bad((error as Error).message);
    }
    const keyId = auditKeyId(publicKey);
    if (k.keyId !== hex(keyId)) throw bad(`keys[${i}].keyId is not the id of its public key`);
    return Object.freeze({
      keyId: Buffer.from(keyId),
      publicKey,
      createdAt: new Date(typeof k.createdAt === 'string' ? k.createdAt : 0),
      status: isKeyStatus(k.status) ? k.status : 'active',
    });
  });
}
