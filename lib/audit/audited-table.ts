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
import { assertDatabase, databaseError, type Database, type DbSession } from '../db/database.js';
import { parseTableName, quoteIdent } from '../db/schema.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { AuditSigner } from '../keys/audit-keys.js';
import type { EncryptedTable, PlainRowInput, StoredRow } from '../schema/encrypted-table.js';
import type { TableSchemaInit } from '../schema/definition.js';
import { type AuditChain, AuditChainWriter, type AuditedWriteOptions, checkActor, publishAuditKey, rowIdText } from './chain.js';

export type { AuditedWriteOptions } from './chain.js';

/** Options of {@link AuditedTable.open}. */
export interface AuditedTableOptions {
  /** The clock of record timestamps, in ms since the Unix epoch (default `Date.now`). */
  now?: () => number;
}

type Row = Record<string, unknown>;

/** An {@link EncryptedTable} whose writes are signed into the table's audit chain. */
export class AuditedTable<T extends TableSchemaInit = TableSchemaInit> {
  readonly table: EncryptedTable<T>;
  readonly db: Database;
  readonly #writer: AuditChainWriter;
  readonly #sqlName: string;

  private constructor(table: EncryptedTable<T>, db: Database, signer: AuditSigner, now: () => number) {
    this.table = table;
    this.db = db;
    this.#writer = new AuditChainWriter(table.schema, signer, now);
    this.#sqlName = parseTableName(table.schema.table).sql;
    Object.freeze(this);
  }

  /**
   * Audits `table`'s writes on `db`, signed by `signer` (from `AuditKeyFile.signer()`). Publishes the
   * signer's public key in `sifredb_audit_keys`. The audit tables must exist (`sifredb schema sql --audit`).
   */
  static async open<T extends TableSchemaInit>(table: EncryptedTable<T>, db: Database, signer: AuditSigner, options: AuditedTableOptions = {}): Promise<AuditedTable<T>> {
    assertDatabase(db, 'AuditedTable.open', true);
    await publishAuditKey(db, signer);
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

  /**
   * Runs `work` in one transaction holding the table's chain head (locked before any data row);
   * `work` appends records through the chain it is given, which are written before COMMIT.
   */
  #transaction<R>(work: (session: DbSession, chain: AuditChain) => Promise<R>, actor: string): Promise<R> {
    return this.db.withSession(async (session) => {
      try {
        await session.query('BEGIN');
        const chain = await this.#writer.lock(session, actor);
        const result = await work(session, chain);
        await chain.flush();
        await session.query('COMMIT');
        return result;
      } catch (error) {
        await session.query('ROLLBACK').catch(() => undefined);
        throw databaseError(error, `audited write to ${this.table.schema.table} failed (rolled back)`);
      }
    });
  }
}
