/**
 * The signing core every audited writer shares ({@link AuditedTable}, the Drizzle and Kysely
 * integrations, the column jobs of lib/db/column-job.ts): one table's chain head taken under
 * `SELECT … FOR UPDATE`, a signed record per written row, and the records and new head written in
 * one statement, all on a session that is inside the caller's transaction (docs/AUDIT.md, "Concurrent writers").
 *
 * Lock order: a writer calls {@link AuditChainWriter.lock} before it touches any data row, so every
 * audited writer (whatever API it writes through) takes the head lock first and they cannot deadlock
 * on each other.
 */
import { EncryptionContext } from '../context.js';
import { databaseError, type DbSession } from '../db/database.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import {
  type AuditColumn,
  type AuditOperation,
  auditHash,
  encodeAuditRecord,
  GENESIS_HASH,
  storedValueHash,
} from '../format/audit-record.js';
import { parseHeader } from '../format/envelope.js';
import { envelopeBytes } from '../format/inspect.js';
import type { AuditSigner } from '../keys/audit-keys.js';
import type { TableSchema } from '../schema/definition.js';
import { AUDIT_HEAD_TABLE, AUDIT_KEYS_TABLE, AUDIT_TABLE } from './sql.js';

type Row = Record<string, unknown>;

/** Options of every audited write. */
export interface AuditedWriteOptions {
  /** Who makes the write (a user or service name), recorded and signed. */
  actor: string;
}

/** The row id as the record holds it. */
export function rowIdText(id: unknown, what: string): string {
  if (typeof id === 'string' || typeof id === 'bigint' || (typeof id === 'number' && Number.isSafeInteger(id))) return String(id);
  throw new SifreDBError(ERROR_CODES.input, `${what} must be a string or an integer`);
}

/** The actor of `options`, checked. */
export function checkActor(options: AuditedWriteOptions | undefined): string {
  const actor = options?.actor;
  if (typeof actor !== 'string' || actor === '') throw new SifreDBError(ERROR_CODES.input, 'audited writes need { actor }: who makes the write');
  return actor;
}

/** Publishes `signer`'s public key in `sifredb_audit_keys` (the audit tables must exist). */
export async function publishAuditKey(session: DbSession, signer: AuditSigner): Promise<void> {
  try {
    await session.query(`INSERT INTO ${AUDIT_KEYS_TABLE} (key_id, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [Buffer.from(signer.keyId), Buffer.from(signer.publicKey)]);
  } catch (error) {
    throw databaseError(error, `cannot publish the audit public key (run sifredb schema sql --audit first)`);
  }
}

/** Tenants whose context bytes are kept; the cache starts over beyond this. */
const MAX_CACHED_TENANTS = 1024;

/** Audit rows per INSERT: 7 parameters each, well under PostgreSQL's 65,535. */
const AUDIT_ROWS_PER_STATEMENT = 1000;

/**
 * Signs the writes of one table's rows: built once per table and signer, then used for any number
 * of transactions through {@link AuditChainWriter.lock}.
 */
export class AuditChainWriter {
  readonly schema: TableSchema;
  readonly #signer: AuditSigner;
  readonly #now: () => number;
  /** Each encrypted column's context, built once. */
  readonly #contexts: ReadonlyMap<string, EncryptionContext>;
  /** The canonical context bytes of each (tenant, column), built once per tenant seen (bounded). */
  readonly #tenantContexts = new Map<string, Map<string, Uint8Array>>();

  constructor(schema: TableSchema, signer: AuditSigner, now: () => number = Date.now) {
    this.schema = schema;
    this.#signer = signer;
    this.#now = now;
    this.#contexts = new Map([...schema.columns.values()].map((spec) => [spec.name, new EncryptionContext(spec.context)]));
  }

  /**
   * Locks the table's chain head on `session` (which must be inside a transaction, before any data
   * row of the table is written or locked) and returns the chain to append this transaction's
   * records to; {@link AuditChain.flush} writes them before COMMIT.
   */
  async lock(session: DbSession, actor: string): Promise<AuditChain> {
    const table = this.schema.table;
    const lockHead = () =>
      session.query<{ seq: unknown; head_hash: Uint8Array }>(`SELECT seq, head_hash FROM ${AUDIT_HEAD_TABLE} WHERE table_name = $1 FOR UPDATE`, [table]);
    let {
      rows: [head],
    } = await lockHead();
    if (head === undefined) {
      // The table's first audited write: create its head (two first writers race here; the loser's
      // insert does nothing and both then queue on the same row lock).
      await session.query(`INSERT INTO ${AUDIT_HEAD_TABLE} (table_name, seq, head_hash) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING`, [table, Buffer.from(GENESIS_HASH)]);
      [head] = (await lockHead()).rows;
    }
    if (head === undefined) throw new SifreDBError(ERROR_CODES.database, `cannot lock the audit chain head of ${table}`);
    return new AuditChain(this, session, actor, BigInt(String(head.seq)), new Uint8Array(head.head_hash));
  }

  /** One signed record (and its `sifredb_audit` row values) of `row` after `operation`. */
  sign(operation: AuditOperation, row: Row, sequence: bigint, previousHash: Uint8Array, actor: string): { values: unknown[]; hash: Uint8Array } {
    const table = this.schema.table;
    const idColumn = this.schema.id;
    const rowId = rowIdText(row[idColumn], `${table}.${idColumn}`);
    const record = encodeAuditRecord({
      operation,
      keyId: this.#signer.keyId,
      sequence,
      timestamp: BigInt(Math.trunc(this.#now())),
      previousHash,
      table,
      idColumn,
      rowId,
      actor,
      columns: operation === 'delete' ? [] : this.#columns(row),
    });
    return {
      values: [table, sequence.toString(), rowId, operation, Buffer.from(this.#signer.keyId), Buffer.from(record), this.#signer.sign(record)],
      hash: auditHash(record),
    };
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

  /** The record columns of a stored row: every encrypted column of the schema. */
  #columns(row: Row): AuditColumn[] {
    const schema = this.schema;
    const tenant = schema.tenant === undefined ? null : row[schema.tenant];
    return [...schema.columns.values()].map((spec) => {
      const value = row[spec.name];
      if (value === null || value === undefined) return { name: spec.name };
      if (!(value instanceof Uint8Array) && typeof value !== 'string') {
        throw new SifreDBError(ERROR_CODES.database, `${schema.table}.${spec.name} came back as neither bytes nor text`);
      }
      return {
        name: spec.name,
        value: { keyVersion: parseHeader(envelopeBytes(value)).keyVersion, context: this.#contextBytes(spec.name, tenant), hash: storedValueHash(value) },
      };
    });
  }
}

/** One transaction's place in a table's chain, its head locked: append records, then flush before COMMIT. */
export class AuditChain {
  readonly #writer: AuditChainWriter;
  readonly #session: DbSession;
  readonly #actor: string;
  #sequence: bigint;
  #hash: Uint8Array;
  readonly #pending: unknown[][] = [];

  /** Use {@link AuditChainWriter.lock}. */
  constructor(writer: AuditChainWriter, session: DbSession, actor: string, sequence: bigint, hash: Uint8Array) {
    this.#writer = writer;
    this.#session = session;
    this.#actor = actor;
    this.#sequence = sequence;
    this.#hash = hash;
  }

  /**
   * Signs a record of `row` as it is after `operation` (the stored row, with the id, the tenant and
   * every encrypted column; for a delete, the id is enough).
   */
  append(operation: AuditOperation, row: Row): void {
    const sequence = this.#sequence + 1n;
    const { values, hash } = this.#writer.sign(operation, row, sequence, this.#hash, this.#actor);
    this.#pending.push(values);
    this.#sequence = sequence;
    this.#hash = hash;
  }

  /** Writes the appended records and the new head (one statement per 1,000 records); the caller then commits. */
  async flush(): Promise<void> {
    const pending = this.#pending.splice(0);
    const table = this.#writer.schema.table;
    for (let at = 0; at < pending.length; at += AUDIT_ROWS_PER_STATEMENT) {
      const chunk = pending.slice(at, at + AUDIT_ROWS_PER_STATEMENT);
      const values = chunk.map((_, i) => `(${Array.from({ length: 7 }, (_, j) => `$${i * 7 + j + 1}`).join(', ')})`).join(', ');
      const insert = `INSERT INTO ${AUDIT_TABLE} (table_name, seq, row_id, operation, key_id, record, signature) VALUES ${values}`;
      const last = at + AUDIT_ROWS_PER_STATEMENT >= pending.length;
      const n = chunk.length * 7;
      await this.#session.query(
        last ? `WITH records AS (${insert} RETURNING 1) UPDATE ${AUDIT_HEAD_TABLE} SET seq = $${n + 1}, head_hash = $${n + 2} WHERE table_name = $${n + 3}` : insert,
        last ? [...chunk.flat(), this.#sequence.toString(), Buffer.from(this.#hash), table] : chunk.flat(),
      );
    }
  }
}

/**
 * Whether `table` is audited: the audit tables exist and hold a chain head or a record of it. A
 * writer that cannot sign must not write such a table (its rows would verify as tampered).
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
