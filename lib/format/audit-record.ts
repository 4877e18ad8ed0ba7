/**
 * Audit records and checkpoints, format v1 (docs/AUDIT.md, "Record format"): the bytes an audit key
 * signs for each write of an audited table, and for a checkpoint of a table's chain. Frozen by
 * test-vectors/audit-record-v1.json, which both backends reproduce (the bytes are built here; each
 * backend signs them with Ed25519).
 *
 * A record, all integers big-endian, every string UTF-8 with a u32 length before it:
 *
 * ```
 * "SDBR" ‖ u8 1 (format) ‖ u8 operation (1 insert, 2 update, 3 delete) ‖ key id (16)
 *   ‖ u64 sequence (1, 2, … in the table's chain) ‖ u64 timestamp (ms since the Unix epoch)
 *   ‖ previous record hash (32; zeros for sequence 1)
 *   ‖ str table ‖ str id column ‖ str row id ‖ str actor
 *   ‖ u32 column count ‖ per column, sorted by the bytes of its name:
 *       str name ‖ u8 0 (NULL) | u8 1 ‖ u32 key version ‖ u32 len ‖ context ‖ SHA-256 of the stored value (32)
 * ```
 *
 * The record hash is SHA-256 of the record bytes; the signature is not part of the chain, so a
 * malleated signature can change neither the chain nor what it proves. A checkpoint is
 * `"SDBC" ‖ u8 1 ‖ key id (16) ‖ u64 record count ‖ head hash (32) ‖ u64 timestamp ‖ str table`.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { isWellFormed } from './utf8.js';

/** Format version of records and checkpoints. */
export const AUDIT_FORMAT_VERSION = 1;
/** Length of an audit key id: the first 16 bytes of SHA-256 of the public key. */
export const AUDIT_KEY_ID_LENGTH = 16;
/** Length of a record hash. */
export const AUDIT_HASH_LENGTH = 32;

const RECORD_MAGIC = Uint8Array.of(0x53, 0x44, 0x42, 0x52); // "SDBR"
const CHECKPOINT_MAGIC = Uint8Array.of(0x53, 0x44, 0x42, 0x43); // "SDBC"
const MAX_U64 = 2n ** 64n - 1n;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** What a write did to its row. */
export type AuditOperation = 'insert' | 'update' | 'delete';
const OPERATION_CODES: Record<AuditOperation, number> = { insert: 1, update: 2, delete: 3 };
const OPERATIONS = new Map<number, AuditOperation>(Object.entries(OPERATION_CODES).map(([k, v]) => [v, k as AuditOperation]));

/** One encrypted column of a record: NULL, or its value's key version, context and hash. */
export interface AuditColumn {
  readonly name: string;
  /** `undefined` when the column is NULL. */
  readonly value?: {
    readonly keyVersion: number;
    /** Canonical bytes of the value's encryption context (docs/FORMAT.md). */
    readonly context: Uint8Array;
    /** SHA-256 of the stored value: the bytea bytes, or the UTF-8 of the `sdb1:` text. */
    readonly hash: Uint8Array;
  };
}

/** The fields of a record. */
export interface AuditRecord {
  readonly operation: AuditOperation;
  readonly keyId: Uint8Array;
  /** Position in the table's chain, from 1. */
  readonly sequence: bigint;
  /** Milliseconds since the Unix epoch. */
  readonly timestamp: bigint;
  readonly previousHash: Uint8Array;
  readonly table: string;
  readonly idColumn: string;
  readonly rowId: string;
  /** Who made the write, as the application names it. */
  readonly actor: string;
  /** The row's encrypted columns after the write (none for a delete). */
  readonly columns: readonly AuditColumn[];
}

/** The fields of a checkpoint: the chain of `table` had `count` records, the last hashing to `headHash`. */
export interface AuditCheckpoint {
  readonly keyId: Uint8Array;
  readonly count: bigint;
  readonly headHash: Uint8Array;
  readonly timestamp: bigint;
  readonly table: string;
}

function formatError(message: string): SifreDBError {
  return new SifreDBError(ERROR_CODES.format, `not a SifreDB audit record: ${message}`);
}

function inputError(message: string): SifreDBError {
  return new SifreDBError(ERROR_CODES.input, message);
}

/** SHA-256, the hash of records, of stored values and of key ids. */
export function auditHash(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}

/** The key id of an audit public key. */
export function auditKeyId(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).subarray(0, AUDIT_KEY_ID_LENGTH);
}

/** The hash of a stored value as records hold it: of its bytes, or of the UTF-8 of its text form. */
export function storedValueHash(value: Uint8Array | string): Uint8Array {
  return sha256(typeof value === 'string' ? encoder.encode(value) : value);
}

class Writer {
  readonly parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u8(n: number): void {
    this.bytes(Uint8Array.of(n));
  }
  u32(n: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    this.bytes(b);
  }
  u64(n: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n);
    this.bytes(b);
  }
  str(s: string): void {
    this.sized(encoder.encode(s));
  }
  sized(b: Uint8Array): void {
    this.u32(b.length);
    this.bytes(b);
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

class Reader {
  at = 0;
  constructor(readonly b: Uint8Array) {}
  take(n: number): Uint8Array {
    if (this.at + n > this.b.length) throw formatError('truncated');
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u32(): number {
    const b = this.take(4);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  }
  u64(): bigint {
    const b = this.take(8);
    const high = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
    const low = ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
    return (BigInt(high) << 32n) | BigInt(low);
  }
  sized(): Uint8Array {
    return this.take(this.u32());
  }
  str(): string {
    try {
      return decoder.decode(this.sized());
    } catch {
      throw formatError('a string is not valid UTF-8');
    }
  }
  end(): void {
    if (this.at !== this.b.length) throw formatError('trailing bytes');
  }
}

function checkString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || !isWellFormed(value)) throw inputError(`${name} must be a well-formed string`);
}

function checkBytes(value: unknown, name: string, length: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) throw inputError(`${name} must be ${length} bytes`);
}

function checkU64(value: unknown, name: string): asserts value is bigint {
  if (typeof value !== 'bigint' || value < 0n || value > MAX_U64) throw inputError(`${name} must be a bigint in 0..2^64-1`);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The bytes of `record` (the signed message). Columns are written sorted by name. */
export function encodeAuditRecord(record: AuditRecord): Uint8Array {
  const code = OPERATION_CODES[record.operation];
  if (code === undefined) throw inputError('operation must be insert, update or delete');
  checkBytes(record.keyId, 'keyId', AUDIT_KEY_ID_LENGTH);
  checkU64(record.sequence, 'sequence');
  if (record.sequence === 0n) throw inputError('sequence starts at 1');
  checkU64(record.timestamp, 'timestamp');
  checkBytes(record.previousHash, 'previousHash', AUDIT_HASH_LENGTH);
  for (const field of ['table', 'idColumn', 'rowId', 'actor'] as const) checkString(record[field], field);
  if (!Array.isArray(record.columns)) throw inputError('columns must be an array');
  if (record.operation === 'delete' && record.columns.length > 0) throw inputError('a delete record has no columns');
  const columns = record.columns.map((c, i) => {
    checkString(c?.name, `columns[${i}].name`);
    return { column: c, name: encoder.encode(c.name) };
  });
  columns.sort((a, b) => compareBytes(a.name, b.name));
  for (let i = 1; i < columns.length; i++) {
    if (compareBytes(columns[i - 1]!.name, columns[i]!.name) === 0) throw inputError(`column ${columns[i]!.column.name} appears twice`);
  }
  const w = new Writer();
  w.bytes(RECORD_MAGIC);
  w.u8(AUDIT_FORMAT_VERSION);
  w.u8(code);
  w.bytes(record.keyId);
  w.u64(record.sequence);
  w.u64(record.timestamp);
  w.bytes(record.previousHash);
  w.str(record.table);
  w.str(record.idColumn);
  w.str(record.rowId);
  w.str(record.actor);
  w.u32(columns.length);
  for (const { column, name } of columns) {
    w.sized(name);
    const value = column.value;
    if (value === undefined) {
      w.u8(0);
      continue;
    }
    if (!Number.isInteger(value.keyVersion) || value.keyVersion < 1 || value.keyVersion > 0xffffffff) {
      throw inputError(`columns.${column.name}: keyVersion must be an integer in 1..2^32-1`);
    }
    if (!(value.context instanceof Uint8Array)) throw inputError(`columns.${column.name}: context must be bytes`);
    checkBytes(value.hash, `columns.${column.name}.hash`, AUDIT_HASH_LENGTH);
    w.u8(1);
    w.u32(value.keyVersion);
    w.sized(value.context);
    w.bytes(value.hash);
  }
  return w.done();
}

/** Parses record bytes; `ERR_SIFREDB_FORMAT` for anything that {@link encodeAuditRecord} would not write. */
export function decodeAuditRecord(bytes: Uint8Array): AuditRecord {
  if (!(bytes instanceof Uint8Array)) throw inputError('record must be a Uint8Array');
  const r = new Reader(bytes);
  if (compareBytes(r.take(4), RECORD_MAGIC) !== 0) throw formatError('bad magic');
  const version = r.u8();
  if (version !== AUDIT_FORMAT_VERSION) throw formatError(`unsupported format version ${version}`);
  const operation = OPERATIONS.get(r.u8());
  if (operation === undefined) throw formatError('unknown operation');
  const keyId = r.take(AUDIT_KEY_ID_LENGTH);
  const sequence = r.u64();
  const timestamp = r.u64();
  const previousHash = r.take(AUDIT_HASH_LENGTH);
  const table = r.str();
  const idColumn = r.str();
  const rowId = r.str();
  const actor = r.str();
  const count = r.u32();
  const columns: AuditColumn[] = [];
  let previousName: Uint8Array | undefined;
  for (let i = 0; i < count; i++) {
    const nameBytes = r.sized();
    if (previousName !== undefined && compareBytes(previousName, nameBytes) >= 0) throw formatError('columns out of order');
    previousName = nameBytes;
    let name: string;
    try {
      name = decoder.decode(nameBytes);
    } catch {
      throw formatError('a column name is not valid UTF-8');
    }
    const present = r.u8();
    if (present === 0) {
      columns.push({ name });
    } else if (present === 1) {
      const keyVersion = r.u32();
      if (keyVersion === 0) throw formatError('key version 0');
      const context = r.sized();
      const hash = r.take(AUDIT_HASH_LENGTH);
      columns.push({ name, value: { keyVersion, context, hash } });
    } else {
      throw formatError('bad column marker');
    }
  }
  r.end();
  if (sequence === 0n) throw formatError('sequence 0');
  if (operation === 'delete' && columns.length > 0) throw formatError('a delete record has columns');
  return { operation, keyId, sequence, timestamp, previousHash, table, idColumn, rowId, actor, columns };
}

/** The bytes of a checkpoint (the signed message). */
export function encodeAuditCheckpoint(checkpoint: AuditCheckpoint): Uint8Array {
  checkBytes(checkpoint.keyId, 'keyId', AUDIT_KEY_ID_LENGTH);
  checkU64(checkpoint.count, 'count');
  checkBytes(checkpoint.headHash, 'headHash', AUDIT_HASH_LENGTH);
  checkU64(checkpoint.timestamp, 'timestamp');
  checkString(checkpoint.table, 'table');
  const w = new Writer();
  w.bytes(CHECKPOINT_MAGIC);
  w.u8(AUDIT_FORMAT_VERSION);
  w.bytes(checkpoint.keyId);
  w.u64(checkpoint.count);
  w.bytes(checkpoint.headHash);
  w.u64(checkpoint.timestamp);
  w.str(checkpoint.table);
  return w.done();
}

/** Parses checkpoint bytes; `ERR_SIFREDB_FORMAT` when malformed. */
export function decodeAuditCheckpoint(bytes: Uint8Array): AuditCheckpoint {
  if (!(bytes instanceof Uint8Array)) throw inputError('checkpoint must be a Uint8Array');
  const r = new Reader(bytes);
  if (compareBytes(r.take(4), CHECKPOINT_MAGIC) !== 0) throw formatError('bad checkpoint magic');
  const version = r.u8();
  if (version !== AUDIT_FORMAT_VERSION) throw formatError(`unsupported checkpoint version ${version}`);
  const keyId = r.take(AUDIT_KEY_ID_LENGTH);
  const count = r.u64();
  const headHash = r.take(AUDIT_HASH_LENGTH);
  const timestamp = r.u64();
  const table = r.str();
  r.end();
  return { keyId, count, headHash, timestamp, table };
}

/** The previous hash of the first record of a chain. */
export const GENESIS_HASH: Uint8Array = new Uint8Array(AUDIT_HASH_LENGTH);
