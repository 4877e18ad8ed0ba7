/**
 * {@link AuditedTable}: writes through an {@link EncryptedTable} that are signed in the same
 * transaction as the data (docs/AUDIT.md). Each insert, update or delete of a row appends one record
 * to the table's chain in `sifredb_audit`: the row's encrypted columns after the write (key version,
 * context, SHA-256 of the stored ciphertext), the operation, the actor, a timestamp and the hash of
 * the previous record, signed with the current audit key.
 *
 * Concurrent writers share one chain per table: each transaction first locks the table's row of
 * `sifredb_audit_head` (`SELECT … FOR UPDATE`), so audited writes of one table commit one after
 * another in chain order. The cost is that serialization: an audited write holds the head lock from
 * its first statement to COMMIT (its data statements, one signature per row, and one statement
 * writing the records and the new head), so audited writes of one table do not run in parallel;
 * other tables, reads and unaudited writes are not blocked. Taking the head lock first, before any
 * data row, keeps the lock order the same for every audited writer, so they cannot deadlock on each
 * other. BENCHMARKS.md ("Audit signatures") gives the cost per row.
 */
import { EncryptionContext } from '../context.js';
import { assertDatabase, databaseError, type Database, type DbSession } from '../db/database.js';
import { parseTableName, quoteIdent } from '../db/schema.js';
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
import type { EncryptedTable, PlainRowInput, StoredRow } from '../schema/encrypted-table.js';
import type { TableSchemaInit } from '../schema/definition.js';
import { AUDIT_HEAD_TABLE, AUDIT_KEYS_TABLE, AUDIT_TABLE } from './sql.js';

/** Options of every audited write. */
export interface AuditedWriteOptions {
  /** Who makes the write (a user or service name), recorded and signed. */
  actor: string;
}

/** Options of {@link AuditedTable.open}. */
export interface AuditedTableOptions {
  /** The clock of record timestamps, in ms since the Unix epoch (default `Date.now`). */
  now?: () => number;
}

type Row = Record<string, unknown>;

function rowIdText(id: unknown, what: string): string {
  if (typeof id === 'string' || typeof id === 'bigint' || (typeof id === 'number' && Number.isSafeInteger(id))) return String(id);
  throw new SifreDBError(ERROR_CODES.input, `${what} must be a string or an integer`);
}

function checkActor(options: AuditedWriteOptions | undefined): string {
  const actor = options?.actor;
  if (typeof actor !== 'string' || actor === '') throw new SifreDBError(ERROR_CODES.input, 'audited writes need { actor }: who makes the write');
  return actor;
}

/** An {@link EncryptedTable} whose writes are signed into the table's audit chain. */
export class AuditedTable<T extends TableSchemaInit = TableSchemaInit> {
  readonly table: EncryptedTable<T>;
  readonly db: Database;
  readonly #signer: AuditSigner;
  readonly #now: () => number;
  readonly #sqlName: string;
  /** Each encrypted column's context, built once. */
  readonly #contexts: ReadonlyMap<string, EncryptionContext>;
  /** The canonical context bytes of each (tenant, column), built once per tenant seen (bounded). */
  readonly #tenantContexts = new Map<string, Map<string, Uint8Array>>();

  private constructor(table: EncryptedTable<T>, db: Database, signer: AuditSigner, now: () => number) {
    this.table = table;
    this.db = db;
    this.#signer = signer;
    this.#now = now;
    this.#sqlName = parseTableName(table.schema.table).sql;
    this.#contexts = new Map([...table.schema.columns.values()].map((spec) => [spec.name, new EncryptionContext(spec.context)]));
    Object.freeze(this);
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

  /**
   * Audits `table`'s writes on `db`, signed by `signer` (from `AuditKeyFile.signer()`). Publishes the
   * signer's public key in `sifredb_audit_keys`. The audit tables must exist (`sifredb schema sql --audit`).
   */
  static async open<T extends TableSchemaInit>(table: EncryptedTable<T>, db: Database, signer: AuditSigner, options: AuditedTableOptions = {}): Promise<AuditedTable<T>> {
    assertDatabase(db, 'AuditedTable.open', true);
    try {
      await db.query(`INSERT INTO ${AUDIT_KEYS_TABLE} (key_id, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [Buffer.from(signer.keyId), Buffer.from(signer.publicKey)]);
    } catch (error) {
      throw databaseError(error, `cannot publish the audit public key (run sifredb schema sql --audit first)`);
    }
    return new AuditedTable(table, db, signer, options.now ?? Date.now);
  }

  /** Inserts `rows` (encrypted by the table) and signs one record per row; returns the stored rows. */
  async insert(rows: readonly PlainRowInput<T>[], options: AuditedWriteOptions): Promise<Row[]> {
    const actor = checkActor(options);
    const stored = this.table.encryptRows(rows);
    if (stored.length === 0) return [];
    return this.#transaction(async (session, chain) => {
      const written: Row[] = [];
      for (const row of stored) {
        const columns = Object.keys(row);
        const sql = `INSERT INTO ${this.#sqlName} (${columns.map(quoteIdent).join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`;
        const { rows: [result] } = await session.query<Row>(sql, columns.map((c) => row[c]));
        chain.append('insert', result!);
        written.push(result!);
      }
      return written;
    }, actor);
  }

  /**
   * Updates the row `id` with `changes` (encrypted by the table; include the tenant column when the
   * table has one) and signs a record of the row as it is afterwards. Returns the stored row, or
   * `undefined` when there is no such row (nothing is signed).
   */
  async update(id: string | number | bigint, changes: PlainRowInput<T>, options: AuditedWriteOptions): Promise<Row | undefined> {
    const actor = checkActor(options);
    const idColumn = this.table.schema.id;
    rowIdText(id, 'id');
    const [stored] = this.table.encryptRows([{ ...changes, [idColumn]: id } as PlainRowInput<T>]) as [StoredRow];
    const columns = Object.keys(stored).filter((c) => c !== idColumn);
    if (columns.length === 0) throw new SifreDBError(ERROR_CODES.input, 'update needs at least one column to change');
    return this.#transaction(async (session, chain) => {
      const sql = `UPDATE ${this.#sqlName} SET ${columns.map((c, i) => `${quoteIdent(c)} = $${i + 1}`).join(', ')} WHERE ${quoteIdent(idColumn)} = $${columns.length + 1} RETURNING *`;
      const { rows } = await session.query<Row>(sql, [...columns.map((c) => stored[c]), id]);
      if (rows[0] === undefined) return undefined;
      chain.append('update', rows[0]);
      return rows[0];
    }, actor);
  }

  /** Deletes the row `id` and signs a delete record; `false` when there was no such row. */
  async delete(id: string | number | bigint, options: AuditedWriteOptions): Promise<boolean> {
    const actor = checkActor(options);
    rowIdText(id, 'id');
    const idColumn = this.table.schema.id;
    return this.#transaction(async (session, chain) => {
      const { rows } = await session.query<Row>(`DELETE FROM ${this.#sqlName} WHERE ${quoteIdent(idColumn)} = $1 RETURNING ${quoteIdent(idColumn)}`, [id]);
      if (rows[0] === undefined) return false;
      chain.append('delete', rows[0]);
      return true;
    }, actor);
  }

  /** The record columns of a stored row: every encrypted column of the schema. */
  #columns(row: Row): AuditColumn[] {
    const schema = this.table.schema;
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

  /**
   * Runs `work` in one transaction holding the table's chain head; `work` appends records through
   * the chain it is given. The records and the new head are written in one statement before
   * COMMIT (fewer round trips: the head lock is held for as short a time as the writes allow).
   */
  #transaction<R>(work: (session: DbSession, chain: Chain) => Promise<R>, actor: string): Promise<R> {
    const table = this.table.schema.table;
    const lockHead = (session: DbSession) =>
      session.query<{ seq: unknown; head_hash: Uint8Array }>(`SELECT seq, head_hash FROM ${AUDIT_HEAD_TABLE} WHERE table_name = $1 FOR UPDATE`, [table]);
    return this.db.withSession(async (session) => {
      try {
        await session.query('BEGIN');
        let { rows: [head] } = await lockHead(session);
        if (head === undefined) {
          // The table's first audited write: create its head (two first writers race here; the
          // loser's insert does nothing and both then queue on the same row lock).
          await session.query(`INSERT INTO ${AUDIT_HEAD_TABLE} (table_name, seq, head_hash) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING`, [table, Buffer.from(GENESIS_HASH)]);
          [head] = (await lockHead(session)).rows;
        }
        const pending: unknown[][] = [];
        const chain: Chain = {
          sequence: BigInt(String(head!.seq)),
          hash: new Uint8Array(head!.head_hash),
          append: (operation, row) => {
            const rowId = rowIdText(row[this.table.schema.id], `${table}.${this.table.schema.id}`);
            chain.sequence += 1n;
            const record = encodeAuditRecord({
              operation,
              keyId: this.#signer.keyId,
              sequence: chain.sequence,
              timestamp: BigInt(Math.trunc(this.#now())),
              previousHash: chain.hash,
              table,
              idColumn: this.table.schema.id,
              rowId,
              actor,
              columns: operation === 'delete' ? [] : this.#columns(row),
            });
            pending.push([table, chain.sequence.toString(), rowId, operation, Buffer.from(this.#signer.keyId), Buffer.from(record), this.#signer.sign(record)]);
            chain.hash = auditHash(record);
          },
        };
        const result = await work(session, chain);
        if (pending.length > 0) {
          for (let at = 0; at < pending.length; at += AUDIT_ROWS_PER_STATEMENT) {
            const chunk = pending.slice(at, at + AUDIT_ROWS_PER_STATEMENT);
            const values = chunk.map((_, i) => `(${Array.from({ length: 7 }, (_, j) => `$${i * 7 + j + 1}`).join(', ')})`).join(', ');
            const insert = `INSERT INTO ${AUDIT_TABLE} (table_name, seq, row_id, operation, key_id, record, signature) VALUES ${values}`;
            const last = at + AUDIT_ROWS_PER_STATEMENT >= pending.length;
            const n = chunk.length * 7;
            await session.query(
              last ? `WITH records AS (${insert} RETURNING 1) UPDATE ${AUDIT_HEAD_TABLE} SET seq = $${n + 1}, head_hash = $${n + 2} WHERE table_name = $${n + 3}` : insert,
              last ? [...chunk.flat(), chain.sequence.toString(), Buffer.from(chain.hash), table] : chunk.flat(),
            );
          }
        }
        await session.query('COMMIT');
        return result;
      } catch (error) {
        await session.query('ROLLBACK').catch(() => undefined);
        throw databaseError(error, `audited write to ${table} failed (rolled back)`);
      }
    });
  }
}

/** Tenants whose context bytes are kept; the cache starts over beyond this. */
const MAX_CACHED_TENANTS = 1024;

/** Audit rows per INSERT: 7 parameters each, well under PostgreSQL's 65,535. */
const AUDIT_ROWS_PER_STATEMENT = 1000;

interface Chain {
  sequence: bigint;
  hash: Uint8Array;
  append(operation: AuditOperation, row: Row): void;
}
