/**
 * The signing core of audited writes (docs/AUDIT.md), shared by {@link AuditedTable} and the column
 * jobs (`sifredb reencrypt`, `encrypt-column`, `import-rust`): the record columns of a stored row,
 * the table's chain head taken under its row lock, one signed record per written row, and the
 * records and new head written in the caller's transaction.
 *
 * Lock order: a transaction calls {@link lockAuditChain} as its first statement, before it locks
 * any data row, so that every audited writer of a table (applications and jobs alike) takes the
 * head first and none can deadlock on another.
 */
import { Buffer } from 'node:buffer';
import { EncryptionContext } from '../context.js';
import { databaseError, type DbSession } from '../db/database.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { type AuditColumn, type AuditOperation, auditHash, encodeAuditRecord, GENESIS_HASH, storedValueHash } from '../format/audit-record.js';
import { parseHeader } from '../format/envelope.js';
import { envelopeBytes } from '../format/inspect.js';
import type { AuditSigner } from '../keys/audit-keys.js';
import type { TableSchema } from '../schema/definition.js';
import { AUDIT_HEAD_TABLE, AUDIT_KEYS_TABLE, AUDIT_TABLE } from './sql.js';

type Row = Record<string, unknown>;

/** Tenants whose context bytes are kept; the cache starts over beyond this. */
const MAX_CACHED_TENANTS = 1024;

/** Audit rows per INSERT: 7 parameters each, well under PostgreSQL's 65,535. */
const AUDIT_ROWS_PER_STATEMENT = 1000;

/** The text of a row id as records carry it. */
export function auditRowId(id: unknown, what: string): string {
  if (typeof id === 'string' || typeof id === 'bigint' || (typeof id === 'number' && Number.isSafeInteger(id))) return String(id);
  throw new SifreDBError(ERROR_CODES.input, `${what} must be a string or an integer`);
}

/**
 * The record columns of a stored row of `schema`'s table: every encrypted column of the schema
 * (key version, canonical context with the row's tenant, SHA-256 of the stored value).
 */
export class AuditRecordColumns {
  readonly schema: TableSchema;
  /** Each encrypted column's context, built once. */
  readonly #contexts: ReadonlyMap<string, EncryptionContext>;
  /** The canonical context bytes of each (tenant, column), built once per tenant seen (bounded). */
  readonly #tenantContexts = new Map<string, Map<string, Uint8Array>>();

  constructor(schema: TableSchema) {
    this.schema = schema;
    this.#contexts = new Map([...schema.columns.values()].map((spec) => [spec.name, new EncryptionContext(spec.context)]));
  }

  #contextBytes(column: string, tenant: unknown): Uint8Array {
    const base = this.#contexts.get(column)!;
    if (tenant === null || tenant === undefined) return base.bytes;
    const key = String(tenant);
    let byColumn = this.#tenantContexts.get(key);
    if (byColumn === undefined) {
      if (this.#tenantContexts.size >= MAX_CACHED_TENANTS) this.#tenantContexts.clear();
      byColumn = new Map();
      this.#tenantContexts.set(key, byColumn);
    }
    let bytes = byColumn.get(column);
    if (bytes === undefined) {
      bytes = base.withTenant(key).bytes;
      byColumn.set(column, bytes);
    }
    return bytes;
  }

  /** The columns of `row` (as the database returned it, every encrypted column selected). */
  of(row: Row): AuditColumn[] {
    const schema = this.schema;
    const tenant = schema.tenant === undefined ? null : row[schema.tenant];
    return [...schema.columns.values()].map((spec) => {
      const value = row[spec.name];
      if (value === null || value === undefined) return { name: spec.name };
      if (!(value instanceof Uint8Array) && typeof value !== 'string') {
        throw new SifreDBError(ERROR_CODES.database, `${schema.table}.${spec.name} came back as neither bytes nor text`);
      }
      let keyVersion: number;
      try {
        keyVersion = parseHeader(envelopeBytes(value)).keyVersion;
      } catch {
        // A record names the key version of each value; a column of the schema that still holds a
        // plaintext (an encrypt-column job half done on another column) cannot be recorded.
        throw new SifreDBError(ERROR_CODES.format, `${schema.table}.${spec.name} of row ${String(row[schema.id])} is not a SifreDB ciphertext: an audited write records every encrypted column of the row`);
      }
      return { name: spec.name, value: { keyVersion, context: this.#contextBytes(spec.name, tenant), hash: storedValueHash(value) } };
    });
  }
}

/** What a chain's records say besides the rows: the table, who signs, who writes, and when. */
export interface AuditChainOptions {
  /** The chain's table name, as the schema names it (records and `audit verify --table` use it). */
  table: string;
  /** The id column (recorded in every record). */
  idColumn: string;
  signer: AuditSigner;
  actor: string;
  /** The clock of record timestamps, in ms since the Unix epoch. */
  now: () => number;
  /** The record columns of a written row. */
  columns: (row: Row) => AuditColumn[];
}

/** A table's chain, its head held under a row lock for the rest of the transaction. */
export interface AuditChain {
  /** Signs a record of `row` (as it is after the write; for a delete, its id alone). */
  append(operation: AuditOperation, row: Row): void;
  /** Records appended so far. */
  readonly pending: number;
  /** Writes the records and the new head, in one statement per 1,000 records. */
  write(): Promise<void>;
}

/**
 * Locks `options.table`'s chain head (`SELECT … FOR UPDATE`; created at the table's first audited
 * write) in the transaction open on `session`, and returns the chain to append to. Call it before
 * the transaction locks any data row.
 */
export async function lockAuditChain(session: DbSession, options: AuditChainOptions): Promise<AuditChain> {
  const { table, idColumn, signer, actor, now, columns } = options;
  const lockHead = () =>
    session.query<{ seq: unknown; head_hash: Uint8Array }>(`SELECT seq, head_hash FROM ${AUDIT_HEAD_TABLE} WHERE table_name = $1 FOR UPDATE`, [table]);
  let { rows: [head] } = await lockHead();
  if (head === undefined) {
    // The table's first audited write: create its head (two first writers race here; the loser's
    // insert does nothing and both then queue on the same row lock).
    await session.query(`INSERT INTO ${AUDIT_HEAD_TABLE} (table_name, seq, head_hash) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING`, [table, Buffer.from(GENESIS_HASH)]);
    [head] = (await lockHead()).rows;
  }
  let sequence = BigInt(String(head!.seq));
  let hash: Uint8Array = new Uint8Array(head!.head_hash);
  const pending: unknown[][] = [];
  return {
    get pending() {
      return pending.length;
    },
    append(operation, row) {
      const rowId = auditRowId(row[idColumn], `${table}.${idColumn}`);
      sequence += 1n;
      const record = encodeAuditRecord({
        operation,
        keyId: signer.keyId,
        sequence,
        timestamp: BigInt(Math.trunc(now())),
        previousHash: hash,
        table,
        idColumn,
        rowId,
        actor,
        columns: operation === 'delete' ? [] : columns(row),
      });
      pending.push([table, sequence.toString(), rowId, operation, Buffer.from(signer.keyId), Buffer.from(record), signer.sign(record)]);
      hash = auditHash(record);
    },
    async write() {
      for (let at = 0; at < pending.length; at += AUDIT_ROWS_PER_STATEMENT) {
        const chunk = pending.slice(at, at + AUDIT_ROWS_PER_STATEMENT);
        const values = chunk.map((_, i) => `(${Array.from({ length: 7 }, (_, j) => `$${i * 7 + j + 1}`).join(', ')})`).join(', ');
        const insert = `INSERT INTO ${AUDIT_TABLE} (table_name, seq, row_id, operation, key_id, record, signature) VALUES ${values}`;
        const last = at + AUDIT_ROWS_PER_STATEMENT >= pending.length;
        const n = chunk.length * 7;
        await session.query(
          last ? `WITH records AS (${insert} RETURNING 1) UPDATE ${AUDIT_HEAD_TABLE} SET seq = $${n + 1}, head_hash = $${n + 2} WHERE table_name = $${n + 3}` : insert,
          last ? [...chunk.flat(), sequence.toString(), Buffer.from(hash), table] : chunk.flat(),
        );
      }
      pending.length = 0;
    },
  };
}

/** Publishes `signer`'s public key in `sifredb_audit_keys` (for a verifier without a key file). */
export async function publishAuditKey(db: DbSession, signer: AuditSigner): Promise<void> {
  try {
    await db.query(`INSERT INTO ${AUDIT_KEYS_TABLE} (key_id, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [Buffer.from(signer.keyId), Buffer.from(signer.publicKey)]);
  } catch (error) {
    throw databaseError(error, `cannot publish the audit public key (run sifredb schema sql --audit first)`);
  }
}

/**
 * Whether `table` is audited: the audit tables exist and hold a chain head or a record of it. A
 * writer that does not sign must not write such a table (its rows would verify as tampered).
 */
export async function hasAuditChain(db: DbSession, table: string): Promise<boolean> {
  try {
    const { rows: [found] } = await db.query<{ head: unknown; records: unknown }>(
      `SELECT to_regclass('${AUDIT_HEAD_TABLE}') IS NOT NULL AS head, to_regclass('${AUDIT_TABLE}') IS NOT NULL AS records`,
    );
    if (found?.head !== true || found?.records !== true) return false;
    const { rows: [chain] } = await db.query<{ audited: unknown }>(
      `SELECT EXISTS (SELECT 1 FROM ${AUDIT_HEAD_TABLE} WHERE table_name = $1) OR EXISTS (SELECT 1 FROM ${AUDIT_TABLE} WHERE table_name = $1) AS audited`,
      [table],
    );
    return chain?.audited === true;
  } catch (error) {
    throw databaseError(error, `cannot tell whether ${table} is audited`);
  }
}
