/**
 * The offline audit verifier (`sifredb audit verify`, docs/AUDIT.md): needs the database and the
 * audit public keys, never an encryption key. It checks every record's signature (batch
 * verification), the chain (sequence numbers, previous-record hashes, the chain head, and an
 * exported checkpoint when given), and that every current row's encrypted columns are exactly those
 * of its latest record. Findings name the row (or the record) and one kind of tampering.
 */
import { Buffer } from 'node:buffer';
import * as nodeCrypto from 'node:crypto';
import { getBackend } from '../backend/default.js';
import type { Ed25519BatchItem } from '../backend/types.js';
import { databaseError, type DbSession } from '../db/database.js';
import { parseTableName } from '../db/schema.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import {
  type AuditRecord,
  auditKeyId,
  decodeAuditCheckpoint,
  decodeAuditRecord,
  GENESIS_HASH,
} from '../format/audit-record.js';
import type { AuditPublicKey } from '../keys/audit-keys.js';
import type { SignedCheckpoint } from './checkpoint.js';
import { AUDIT_HEAD_TABLE, AUDIT_KEYS_TABLE, AUDIT_TABLE } from './sql.js';

/** The kinds of finding, one per way the data or its history was changed outside audited writes. */
export type AuditFindingKind = 'modified' | 'rolled back' | 'copied' | 'deleted' | 'unsigned' | 'bad signature' | 'chain broken';

/** One finding: a row (by id) or a record (by sequence), its kind and what was seen. */
export interface AuditFinding {
  readonly kind: AuditFindingKind;
  readonly rowId?: string;
  readonly sequence?: string;
  readonly column?: string;
  readonly message: string;
}

/** What {@link verifyAudit} found. */
export interface AuditReport {
  readonly table: string;
  /** Records in the chain. */
  readonly records: number;
  /** Rows of the table checked against their latest record. */
  readonly rows: number;
  /** Where the public keys came from: a file the auditor holds, or the database itself. */
  readonly keys: 'file' | 'database';
  readonly findings: AuditFinding[];
}

/** Options of {@link verifyAudit}. */
export interface VerifyAuditOptions {
  /** The trusted public keys (a public key file); default: those in `sifredb_audit_keys`. */
  publicKeys?: readonly AuditPublicKey[];
  /** An exported checkpoint the chain must still contain. */
  checkpoint?: SignedCheckpoint;
}

/**
 * SHA-256 through node:crypto: the same bytes as `auditHash` and `storedValueHash` of
 * lib/format/audit-record.ts (which stay portable on @noble/hashes), at a fraction of the cost
 * over a whole chain. A string is hashed as its UTF-8, as `storedValueHash` does.
 */
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: Uint8Array | string, encoding: 'buffer') => Buffer }).hash;
const sha256 = (value: Uint8Array | string): Uint8Array =>
  oneShot !== undefined ? oneShot('sha256', value, 'buffer') : nodeCrypto.createHash('sha256').update(value).digest();
/** A view on the same memory (`Buffer.from(uint8Array)` would copy). */
const view = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const hex = (b: Uint8Array): string => view(b).toString('hex');
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && view(a).equals(view(b));

interface Loaded {
  seq: bigint;
  bytes: Uint8Array;
  signature: Uint8Array;
  record?: AuditRecord;
  hash: Uint8Array;
}

/** Verifies the audit chain of `table` and its rows; see the module documentation. */
export async function verifyAudit(db: DbSession, table: string, options: VerifyAuditOptions = {}): Promise<AuditReport> {
  if (typeof table !== 'string' || table === '') throw new SifreDBError(ERROR_CODES.input, 'table must be a table name');
  const findings: AuditFinding[] = [];
  const add = (f: AuditFinding) => findings.push(f);

  let loaded: Loaded[];
  let keys: Map<string, Uint8Array>;
  let head: { seq: bigint; hash: Uint8Array } | undefined;
  try {
    const { rows } = await db.query<{ seq: unknown; record: Uint8Array; signature: Uint8Array }>(
      `SELECT seq, record, signature FROM ${AUDIT_TABLE} WHERE table_name = $1 ORDER BY seq`,
      [table],
    );
    // Drivers give bytea as a Buffer (pg) or a Uint8Array (PGlite): used as they are, not copied.
    const bytes = (value: unknown): Uint8Array => (value instanceof Uint8Array ? value : new Uint8Array(0));
    loaded = rows.map((r) => ({ seq: BigInt(String(r.seq)), bytes: bytes(r.record), signature: bytes(r.signature), hash: sha256(bytes(r.record)) }));
    if (options.publicKeys !== undefined) {
      keys = new Map(options.publicKeys.map((k) => [hex(k.keyId), k.publicKey]));
    } else {
      const { rows: stored } = await db.query<{ key_id: Uint8Array; public_key: Uint8Array }>(`SELECT key_id, public_key FROM ${AUDIT_KEYS_TABLE}`);
      // A key whose id is not its own hash is ignored: records naming that id then fail.
      keys = new Map(stored.filter((k) => same(auditKeyId(k.public_key), k.key_id)).map((k) => [hex(k.key_id), new Uint8Array(k.public_key)]));
    }
    const { rows: heads } = await db.query<{ seq: unknown; head_hash: Uint8Array }>(`SELECT seq, head_hash FROM ${AUDIT_HEAD_TABLE} WHERE table_name = $1`, [table]);
    head = heads[0] === undefined ? undefined : { seq: BigInt(String(heads[0].seq)), hash: new Uint8Array(heads[0].head_hash) };
  } catch (error) {
    throw databaseError(error, `cannot read the audit chain of ${table} (are the audit tables there? sifredb schema sql --audit)`);
  }

  // Records: decode, then every signature in one batch.
  const toVerify: { entry: Loaded; item: Ed25519BatchItem }[] = [];
  let lastKeyId: Uint8Array | undefined;
  let lastPublicKey: Uint8Array | undefined;
  for (const entry of loaded) {
    try {
      entry.record = decodeAuditRecord(entry.bytes);
    } catch {
      add({ kind: 'bad signature', sequence: String(entry.seq), message: `record ${entry.seq} is not a well-formed audit record` });
      continue;
    }
    const record = entry.record;
    // Consecutive records are mostly signed by the same key: its id is encoded once per run.
    if (lastKeyId === undefined || !same(lastKeyId, record.keyId)) {
      lastKeyId = record.keyId;
      lastPublicKey = keys.get(hex(record.keyId));
    }
    const publicKey = lastPublicKey;
    if (publicKey === undefined) {
      add({ kind: 'bad signature', rowId: record.rowId, sequence: String(entry.seq), message: `record ${entry.seq} is signed by key ${hex(record.keyId)}, which is not a trusted audit key` });
      entry.record = undefined;
      continue;
    }
    toVerify.push({ entry, item: { publicKey, message: entry.bytes, signature: entry.signature } });
  }
  const verdicts = getBackend().ed25519.verifyBatch(toVerify.map((v) => v.item));
  toVerify.forEach(({ entry }, i) => {
    if (verdicts[i]) return;
    add({ kind: 'bad signature', rowId: entry.record!.rowId, sequence: String(entry.seq), message: `the signature of record ${entry.seq} does not verify: the record or its signature was edited` });
    entry.record = undefined;
  });
  for (const entry of loaded) {
    const record = entry.record;
    if (record === undefined) continue;
    if (record.sequence !== entry.seq || record.table !== table) {
      add({ kind: 'chain broken', rowId: record.rowId, sequence: String(entry.seq), message: `record ${entry.seq} is record ${record.sequence} of ${JSON.stringify(record.table)}: moved or copied in the audit table` });
      entry.record = undefined;
    }
  }

  // The chain: 1, 2, … each naming the hash of the one before, up to the head.
  let expected = 1n;
  let previous: Uint8Array = GENESIS_HASH;
  for (const entry of loaded) {
    if (entry.seq !== expected) {
      add({ kind: 'chain broken', sequence: String(expected), message: entry.seq > expected ? `records ${expected}..${entry.seq - 1n} are missing: deleted from the audit table` : `record ${entry.seq} is out of order` });
    } else if (entry.record !== undefined && !same(entry.record.previousHash, previous)) {
      add({ kind: 'chain broken', rowId: entry.record.rowId, sequence: String(entry.seq), message: `record ${entry.seq} does not follow record ${entry.seq - 1n}: a record before it was edited or replaced` });
    }
    expected = entry.seq + 1n;
    previous = entry.hash;
  }
  const last = loaded.at(-1);
  const count = last?.seq ?? 0n;
  if (head === undefined) {
    if (loaded.length > 0) add({ kind: 'chain broken', message: `the chain head of ${table} is missing` });
  } else if (head.seq !== count || (count > 0n && !same(head.hash, last!.hash))) {
    add({
      kind: 'chain broken',
      sequence: String(head.seq),
      message: head.seq > count ? `the chain head names record ${head.seq}, but the chain ends at ${count}: the last records were deleted` : `the chain head (record ${head.seq}) does not match the last record (${count})`,
    });
  }

  if (options.checkpoint !== undefined) checkCheckpoint(options.checkpoint, table, keys, loaded, add);

  // Rows against their latest records.
  const latest = new Map<string, Loaded>();
  let idColumn: string | undefined;
  for (const entry of loaded) {
    const record = entry.record;
    if (record === undefined) continue;
    idColumn ??= record.idColumn;
    latest.set(record.rowId, entry);
  }
  // Every value hash of every record, to tell a rollback or a copy from a modification: built only
  // when a row differs from its latest record (a clean table never needs it).
  let historyIndex: Map<string, { rowId: string; column: string; seq: bigint }[]> | undefined;
  const history = () => {
    if (historyIndex !== undefined) return historyIndex;
    historyIndex = new Map();
    for (const entry of loaded) {
      const record = entry.record;
      if (record === undefined) continue;
      for (const c of record.columns) {
        if (c.value === undefined) continue;
        const key = hex(c.value.hash);
        const at = { rowId: record.rowId, column: c.name, seq: entry.seq };
        const seen = historyIndex.get(key);
        if (seen === undefined) historyIndex.set(key, [at]);
        else seen.push(at);
      }
    }
    return historyIndex;
  };
  let rowCount = 0;
  if (idColumn !== undefined) {
    const t = parseTableName(table);
    let rows: Record<string, unknown>[];
    try {
      ({ rows } = await db.query<Record<string, unknown>>(`SELECT * FROM ${t.sql}`));
    } catch (error) {
      throw databaseError(error, `cannot read ${t.sql}`);
    }
    rowCount = rows.length;
    const present = new Set<string>();
    for (const row of rows) {
      const rowId = String(row[idColumn]);
      present.add(rowId);
      const entry = latest.get(rowId);
      if (entry === undefined || entry.record!.operation === 'delete') {
        add({ kind: 'unsigned', rowId, message: entry === undefined ? 'the row has no audit record: written outside audited writes' : `the row was deleted by record ${entry.seq} but exists: inserted outside audited writes` });
        continue;
      }
      for (const column of entry.record!.columns) {
        const value = row[column.name];
        const hash = value instanceof Uint8Array || typeof value === 'string' ? sha256(value) : undefined;
        if (column.value === undefined ? value === null : hash !== undefined && same(hash, column.value.hash)) continue;
        const seen = hash === undefined ? undefined : history().get(hex(hash));
        const own = seen?.find((s) => s.rowId === rowId && s.column === column.name);
        const other = seen?.find((s) => s.rowId !== rowId || s.column !== column.name);
        if (own !== undefined) {
          add({ kind: 'rolled back', rowId, column: column.name, message: `${column.name} holds the value of record ${own.seq}, not of the row's latest record ${entry.seq}` });
        } else if (other !== undefined) {
          add({ kind: 'copied', rowId, column: column.name, message: `${column.name} holds the value of row ${other.rowId} (${other.column}, record ${other.seq})` });
        } else {
          add({ kind: 'modified', rowId, column: column.name, message: `${column.name} differs from the row's latest record ${entry.seq}` });
        }
      }
    }
    for (const [rowId, entry] of latest) {
      if (entry.record!.operation !== 'delete' && !present.has(rowId)) {
        add({ kind: 'deleted', rowId, message: `the row is gone, but its latest record ${entry.seq} is an ${entry.record!.operation}: deleted outside audited writes` });
      }
    }
  } else {
    // No valid record names the id column: every row there is, is unsigned (a chain emptied, or a
    // table never written through AuditedTable).
    const t = parseTableName(table);
    try {
      const { rows } = await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${t.sql}`);
      rowCount = Number(rows[0]?.n ?? 0);
    } catch (error) {
      throw databaseError(error, `cannot read ${t.sql}`);
    }
    if (rowCount > 0) add({ kind: 'unsigned', message: `${table} has ${rowCount} rows but no valid audit record: its chain is empty or was removed` });
  }
  return { table, records: loaded.length, rows: rowCount, keys: options.publicKeys === undefined ? 'database' : 'file', findings };
}

function checkCheckpoint(checkpoint: SignedCheckpoint, table: string, keys: Map<string, Uint8Array>, loaded: Loaded[], add: (f: AuditFinding) => void): void {
  let fields;
  try {
    fields = decodeAuditCheckpoint(checkpoint.bytes);
  } catch {
    add({ kind: 'bad signature', message: 'the checkpoint is not well-formed' });
    return;
  }
  const publicKey = keys.get(hex(fields.keyId));
  if (publicKey === undefined || !getBackend().ed25519.verify(publicKey, checkpoint.bytes, checkpoint.signature)) {
    add({ kind: 'bad signature', message: 'the checkpoint is not signed by a trusted audit key' });
    return;
  }
  if (fields.table !== table) {
    add({ kind: 'chain broken', message: `the checkpoint is of table ${JSON.stringify(fields.table)}, not ${JSON.stringify(table)}` });
    return;
  }
  if (fields.count === 0n) return;
  const entry = loaded.find((e) => e.seq === fields.count);
  if (entry === undefined) {
    add({ kind: 'chain broken', sequence: String(fields.count), message: `the checkpoint of ${new Date(Number(fields.timestamp)).toISOString()} counted ${fields.count} records; the chain no longer has record ${fields.count}: rolled back or rewritten` });
  } else if (!same(entry.hash, fields.headHash)) {
    add({ kind: 'chain broken', sequence: String(fields.count), message: `record ${fields.count} is not the one the checkpoint of ${new Date(Number(fields.timestamp)).toISOString()} signed: the chain was rewritten` });
  }
}

/** One line per finding: `row <id>: <kind>: <message>` (or `record <n>` / `chain`). */
export function formatFinding(f: AuditFinding): string {
  const where = f.rowId !== undefined ? `row ${f.rowId}` : f.sequence !== undefined ? `record ${f.sequence}` : 'chain';
  return `${where}: ${f.kind}: ${f.message}`;
}
