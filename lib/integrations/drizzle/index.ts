/**
 * `sifredb/drizzle`: a SifreDB table schema on a Drizzle (pg-core) table. Writes go through
 * {@link EncryptedDrizzleTable.encrypt} (ciphertexts and every lookup column, with each row's tenant
 * and row binding), {@link EncryptedDrizzleTable.update} / {@link EncryptedDrizzleTable.upsert}
 * (which cannot move a row to another tenant or id), reads through {@link EncryptedDrizzleTable.select}
 * or {@link EncryptedDrizzleTable.decrypt}, and conditions on encrypted columns through its
 * `eq` / `inArray` helpers; its other operators throw on an encrypted column, and `select` refuses a
 * condition that reaches one otherwise. Drizzle's own operators in a plain `db.select()` are not
 * intercepted (the CHECK constraints guard writes only). docs/integrations/drizzle.md.
 *
 * The SifreDB schema stays the single source of truth (the CLI jobs and `sifredb schema sql/check`
 * read it too); the Drizzle table only has to hold its columns, which {@link encryptedTable} checks.
 */
// Registers how the default backend is chosen (native addon, else pure JS) for this entry point.
import '../../backend/index.js';
import {
  Column,
  Param,
  SQL,
  type SQLWrapper,
  StringChunk,
  asc as drizzleAsc,
  between as drizzleBetween,
  desc as drizzleDesc,
  eq as drizzleEq,
  gt as drizzleGt,
  gte as drizzleGte,
  ilike as drizzleIlike,
  inArray as drizzleInArray,
  is,
  isNull,
  like as drizzleLike,
  lt as drizzleLt,
  lte as drizzleLte,
  ne as drizzleNe,
  notIlike as drizzleNotIlike,
  notInArray as drizzleNotInArray,
  notLike as drizzleNotLike,
  and as drizzleAnd,
  sql,
} from 'drizzle-orm';
import { PgColumn, PgTable, getTableConfig } from 'drizzle-orm/pg-core';
import type { PgQueryResultHKT, PgUpdateBuilder } from 'drizzle-orm/pg-core';
import { ERROR_CODES, SifreDBError } from '../../errors.js';
import { Keyring, type KeyringOptions, type KeySource } from '../../keys/keyring.js';
import type { BatchOptions } from '../../backend/types.js';
import { parseTableName } from '../../db/schema.js';
import type { TableSchema, TableSchemaInit } from '../../schema/definition.js';
import { EncryptedTable, type EqualityQuery, type PlainRowInput, type QueryOperator, type WhereOptions } from '../../schema/encrypted-table.js';
import type { DecryptedRow, PlainInsert, PlainUpdate } from './types.js';
import type { DbSession } from '../../db/database.js';
import type { AuditSigner } from '../../keys/audit-keys.js';
import { AuditChainWriter, type AuditedWriteOptions, checkActor, publishAuditKey } from '../../audit/chain.js';

export type { DbNameOf, DecryptedRow, LookupColumns, PlainInsert, PlainUpdate } from './types.js';

/** What Drizzle's `db.select()` needs: any pg-core database (node-postgres, PGlite, postgres-js…). */
export interface DrizzleSelectable {
  select(): { from(table: PgTable): { where(condition: SQL | undefined): PromiseLike<unknown[]> } };
}

/** What {@link EncryptedDrizzleTable.upsert} needs: `db.insert(table).values(…).onConflictDoUpdate(…).returning()`. */
export interface DrizzleInsertable {
  insert(table: PgTable): {
    values(rows: Record<string, unknown>[]): {
      onConflictDoUpdate(config: { target: PgColumn | PgColumn[]; set: Record<string, unknown>; setWhere?: SQL }): { returning(): PromiseLike<unknown[]> };
    };
  };
}

/** Auditing of an {@link EncryptedDrizzleTable}'s writes (docs/AUDIT.md): who signs them. */
export interface DrizzleAuditOptions {
  /** The audit signer (`AuditKeyFile.signer()`), as `AuditedTable.open` takes it. */
  signer: AuditSigner;
  /** The clock of record timestamps, in ms since the Unix epoch (default `Date.now`). */
  now?: () => number;
}

/** Options of {@link encryptedTable}: the keyring's, and `audit` to sign every write. */
export interface EncryptedDrizzleTableOptions extends KeyringOptions {
  /**
   * Sign every write into the table's audit chain: writes then go through `signedInsert`,
   * `signedUpdate` and `signedDelete` (each in one Drizzle transaction, the chain head locked before
   * any data row), and the unsigned helpers (`encrypt`, `encryptUpdate`, `update`, `upsert`) throw
   * `ERR_SIFREDB_AUDIT_UNSIGNED`.
   */
  audit?: DrizzleAuditOptions;
}

/** What the signed writes need: a pg-core database with transactions (`db.transaction(async (tx) => …)`). */
export interface DrizzleTransactable {
  transaction<R>(work: (tx: never) => Promise<R>): Promise<R>;
}

/** {@link EncryptedDrizzleTable.encryptUpdate}'s result: what to `.set()`, and the WHERE that keeps it on its row(s). */
export interface EncryptedUpdate<TTable extends PgTable> {
  /** The values to set, the tenant and id taken out (they are the context, not values to change). */
  readonly set: Partial<TTable['$inferInsert']>;
  /** `tenant = $1` (and `id = $2` when the id was given): the rows the ciphertexts were encrypted for. */
  readonly where: SQL | undefined;
}

/**
 * The SQL of a blind-index condition, which matches rows that do not hold the value (the index's
 * false positives). It renders only while {@link EncryptedDrizzleTable.select} builds its query, so
 * such a condition cannot reach a plain `db.select()` (rows nobody filters) or an UPDATE / DELETE
 * (rows changed that do not hold the value): it throws there instead of silently over-matching.
 */
class ApproximateCondition implements SQLWrapper {
  /** Set by `select` around the synchronous build of its query. */
  armed = false;
  constructor(
    readonly inner: SQL,
    readonly name: string,
  ) {}

  getSQL(): SQL {
    if (!this.armed) {
      throw new SifreDBError(
        ERROR_CODES.input,
        `the condition on ${this.name} uses a blind index, which also matches rows that do not hold the value: read with select(db, where), which drops them (for an UPDATE or DELETE, select the rows first and write by id), or query a deterministic column or lookup`,
      );
    }
    return this.inner;
  }
}

/** An encrypted condition built by `eq` / `inArray`, remembered so that reads can drop false positives. */
interface Registered {
  readonly owner: EncryptedDrizzleTable<PgTable, TableSchemaInit>;
  readonly query: EqualityQuery;
  /** Present for a blind-index condition. */
  readonly approximate: ApproximateCondition | undefined;
  /** Built on a column of `alias(table, …)`, which `select` (FROM the table itself) cannot name. */
  readonly aliased: boolean;
}
const conditions = new WeakMap<SQL, Registered>();

// Drizzle's table symbols (drizzle-orm/table.js, registered with Symbol.for): an alias proxy answers
// its alias to Name but the real table's name to OriginalName.
const ORIGINAL_NAME = Symbol.for('drizzle:OriginalName');
const SCHEMA = Symbol.for('drizzle:Schema');
const IS_ALIAS = Symbol.for('drizzle:IsAlias');

/**
 * A Drizzle table with a SifreDB schema on it. Property names (Drizzle's) go in and come out; the
 * schema, like the database, speaks column names, and this class maps between them.
 */
export class EncryptedDrizzleTable<TTable extends PgTable, T extends TableSchemaInit = TableSchemaInit> {
  /** The Drizzle table. */
  readonly table: TTable;
  /** The SifreDB table the rows go through (database column names). */
  readonly encrypted: EncryptedTable<T>;
  /** Property → database column name, for every column of the Drizzle table. */
  readonly #dbName: ReadonlyMap<string, string>;
  /** Database column name → property. */
  readonly #property: ReadonlyMap<string, string>;
  /** Database column name → Drizzle column. */
  readonly #column: ReadonlyMap<string, PgColumn>;
  /** Database names of the encrypted and lookup columns: no operator but these helpers' may touch them. */
  readonly #guarded: ReadonlyMap<string, string>;

  /** Signs the writes when the table is audited. */
  readonly #audit: AuditChainWriter | undefined;
  readonly #signer: AuditSigner | undefined;
  /** The signer's public key, published once per database (outside the write transactions). */
  readonly #published = new WeakMap<object, Promise<void>>();

  /** Use {@link encryptedTable}. */
  constructor(table: TTable, encrypted: EncryptedTable<T>, audit?: DrizzleAuditOptions) {
    this.table = table;
    this.encrypted = encrypted;
    this.#signer = audit?.signer;
    this.#audit = audit === undefined ? undefined : new AuditChainWriter(encrypted.schema, audit.signer, audit.now ?? Date.now);
    const { name, schema: pgSchema, columns } = getTableConfig(table);
    const schema = encrypted.schema;
    const declared = parseTableName(schema.table);
    if (declared.name !== name || (declared.schema ?? 'public') !== (pgSchema ?? 'public')) {
      throw new SifreDBError(ERROR_CODES.schema, `the Drizzle table ${pgSchema === undefined ? name : `${pgSchema}.${name}`} is not the schema's table ${schema.table}`);
    }
    const dbName = new Map<string, string>();
    const property = new Map<string, string>();
    const byName = new Map<string, PgColumn>();
    const columnProps = new Map<PgColumn, string>();
    for (const [prop, column] of Object.entries(table as unknown as Record<string, unknown>)) {
      if (is(column, PgColumn)) columnProps.set(column, prop);
    }
    for (const column of columns) {
      const prop = columnProps.get(column)!;
      dbName.set(prop, column.name);
      property.set(column.name, prop);
      byName.set(column.name, column);
    }
    this.#dbName = dbName;
    this.#property = property;
    this.#column = byName;
    // Every encrypted column (its own owner) and every lookup column (owned by its encrypted column).
    this.#guarded = new Map([...[...schema.columns.keys()].map((name) => [name, name] as const), ...schema.lookupOwners]);
    this.#checkColumns();
    Object.freeze(this);
  }

  /** Whether the table's writes are signed (opened with `audit`). */
  get audited(): boolean {
    return this.#audit !== undefined;
  }

  /**
   * Plain rows (Drizzle property names) → rows to insert: each encrypted column encrypted with its
   * row's context (tenant, row id when bound) and every lookup column computed. Pass the result to
   * `db.insert(table).values(…)`, or as `set` of `onConflictDoUpdate` (the row is complete, so its
   * context is known).
   * @throws `ERR_SIFREDB_INPUT` naming `rows[i].column`: a value of another type than declared, a
   *   lookup column given, a missing tenant or row id.
   */
  encrypt(rows: readonly PlainInsert<TTable, T>[]): TTable['$inferInsert'][];
  encrypt(row: PlainInsert<TTable, T>): TTable['$inferInsert'];
  encrypt(rows: PlainInsert<TTable, T> | readonly PlainInsert<TTable, T>[]): TTable['$inferInsert'] | TTable['$inferInsert'][] {
    this.#refuseUnsigned('encrypt', 'signedInsert');
    if (Array.isArray(rows)) return this.#encrypt(rows as readonly Record<string, unknown>[]) as TTable['$inferInsert'][];
    return this.#encrypt([rows as Record<string, unknown>])[0] as TTable['$inferInsert'];
  }

  /**
   * An UPDATE of one tenant's rows (of one row when `values` holds the id): `set`, the columns given
   * with each encrypted one encrypted for that tenant (and id) and its lookups; `where`, the condition
   * that keeps the UPDATE on those rows. The tenant and the id are the ciphertexts' context, not
   * values to write: writing them would move the row to another tenant or id, where its other
   * encrypted columns no longer open, so they are left out of `set`. Use it as
   * `db.update(t).set(u.set).where(and(u.where, more))`, or call {@link update}.
   * @throws `ERR_SIFREDB_INPUT` when the tenant (schemas with a tenant column) is missing, the id is
   *   missing for a row-bound column, nothing is left to set, or as {@link encrypt}.
   */
  encryptUpdate(values: PlainUpdate<TTable, T>): EncryptedUpdate<TTable> {
    this.#refuseUnsigned('encryptUpdate', 'signedUpdate');
    return this.#encryptUpdate(values);
  }

  #encryptUpdate(values: PlainUpdate<TTable, T>): EncryptedUpdate<TTable> {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new SifreDBError(ERROR_CODES.input, 'values must be an object');
    const schema = this.encrypted.schema;
    const idProp = this.#property.get(schema.id)!;
    const tenantProp = schema.tenant === undefined ? undefined : this.#property.get(schema.tenant)!;
    const given = values as Record<string, unknown>;
    if (tenantProp !== undefined && (!Object.hasOwn(given, tenantProp) || given[tenantProp] === undefined)) {
      // Without it the UPDATE could reach any tenant's rows, whose ciphertexts are not this context's.
      throw new SifreDBError(ERROR_CODES.input, `encryptUpdate needs ${tenantProp} (the tenant column ${schema.tenant}): it selects the rows the values are encrypted for`);
    }
    const stored = this.#encrypt([given])[0]!;
    const set: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(stored)) if (key !== idProp && key !== tenantProp) set[key] = value;
    if (Object.keys(set).length === 0) throw new SifreDBError(ERROR_CODES.input, `encryptUpdate has nothing to set: the tenant and the id only select the row`);
    const conditions: SQL[] = [];
    if (tenantProp !== undefined) {
      const tenant = this.#column.get(schema.tenant!)!;
      conditions.push(given[tenantProp] === null ? isNull(tenant) : drizzleEq(tenant, given[tenantProp]));
    }
    if (Object.hasOwn(given, idProp) && given[idProp] !== undefined) {
      const id = this.#column.get(schema.id)!;
      conditions.push(given[idProp] === null ? isNull(id) : drizzleEq(id, given[idProp]));
    }
    return { set: set as Partial<TTable['$inferInsert']>, where: drizzleAnd(...conditions) };
  }

  /**
   * `db.update(table).set(set).where(and(where, extraWhere))` of {@link encryptUpdate}: the UPDATE
   * reaches only rows of the tenant (and id) the values were encrypted for. Returns Drizzle's builder
   * (await it, or chain `.returning()`).
   * @throws as {@link encryptUpdate}; `ERR_SIFREDB_INPUT` when `extraWhere` uses an encrypted or lookup
   *   column other than through `eq` / `inArray` ({@link select}).
   */
  update<Q extends PgQueryResultHKT>(
    db: { update(table: TTable): PgUpdateBuilder<TTable, Q> },
    values: PlainUpdate<TTable, T>,
    extraWhere?: SQL,
  ): ReturnType<ReturnType<PgUpdateBuilder<TTable, Q>['set']>['where']> {
    this.#refuseUnsigned('update', 'signedUpdate');
    const { set, where } = this.#encryptUpdate(values);
    if (extraWhere !== undefined) this.#refuseRawColumns(extraWhere);
    return db.update(this.table).set(set as never).where(drizzleAnd(where, extraWhere));
  }

  /**
   * `INSERT … ON CONFLICT (id) DO UPDATE` of whole rows, encrypted as {@link encrypt}: an existing row
   * takes every column given (`excluded.<column>`, the new ciphertexts and their lookup terms) but
   * never a new tenant or id, and only when it belongs to the same tenant (`setWhere`). A row whose id
   * is another tenant's is neither inserted nor updated, and is reported. Returns the written rows,
   * decrypted.
   * @throws `ERR_SIFREDB_INPUT` when the rows do not all give the same columns (a column missing from
   *   one row would be set to its default), or, after the statement, naming `rows[i]` when its id is
   *   held by another tenant's row (the other rows are written); as {@link encrypt}.
   */
  async upsert(db: DrizzleInsertable, rows: readonly PlainInsert<TTable, T>[]): Promise<DecryptedRow<TTable, T>[]> {
    this.#refuseUnsigned('upsert', 'signedInsert and signedUpdate');
    if (!Array.isArray(rows) || rows.length === 0) throw new SifreDBError(ERROR_CODES.input, 'rows must be a non-empty array');
    const schema = this.encrypted.schema;
    const idProp = this.#property.get(schema.id)!;
    const tenantProp = schema.tenant === undefined ? undefined : this.#property.get(schema.tenant)!;
    const stored = this.#encrypt(rows as readonly Record<string, unknown>[]);
    const keys = Object.keys(stored[0]!).sort().join();
    stored.forEach((row, i) => {
      if (Object.keys(row).sort().join() !== keys) {
        throw new SifreDBError(ERROR_CODES.input, `rows[${i}] gives other columns than rows[0]: upsert sets the same columns on every row (split the call)`);
      }
      if (!Object.hasOwn(row, idProp) || row[idProp] === undefined || row[idProp] === null) throw new SifreDBError(ERROR_CODES.input, `rows[${i}] has no ${idProp} (the row id): upsert conflicts on it`);
      // The tenant decides which existing row may be updated: it is never left to the column's default.
      if (tenantProp !== undefined && (!Object.hasOwn(row, tenantProp) || row[tenantProp] === undefined)) {
        throw new SifreDBError(ERROR_CODES.input, `rows[${i}] has no ${tenantProp} (the tenant column ${schema.tenant}): upsert only updates that tenant's row`);
      }
    });
    const set: Record<string, unknown> = {};
    for (const key of Object.keys(stored[0]!)) {
      if (key === idProp || key === tenantProp) continue;
      set[key] = sql`excluded.${sql.identifier(this.#dbName.get(key) ?? key)}`;
    }
    const id = this.#column.get(schema.id)!;
    let setWhere: SQL | undefined;
    if (schema.tenant !== undefined) {
      // The conflicting row may be another tenant's (ids are unique across tenants): it is left alone.
      setWhere = sql`${this.#column.get(schema.tenant)!} is not distinct from excluded.${sql.identifier(schema.tenant)}`;
    }
    if (Object.keys(set).length === 0) {
      // Only the id and tenant given: there is nothing to update, but the row must still be written when new.
      set[idProp] = sql`excluded.${sql.identifier(schema.id)}`;
    }
    const written = await db.insert(this.table).values(stored).onConflictDoUpdate({ target: id, set, ...(setWhere === undefined ? {} : { setWhere }) }).returning();
    const back = new Set((written as Record<string, unknown>[]).map((r) => String(r[idProp])));
    const skipped = stored.findIndex((row) => !back.has(String(row[idProp])));
    if (skipped >= 0) {
      throw new SifreDBError(ERROR_CODES.input, `rows[${skipped}]: its id is held by a row of another tenant, which upsert does not change (the other rows were written)`);
    }
    return this.decryptAsync(written as Record<string, unknown>[]);
  }

  /**
   * Inserts `rows` (encrypted as {@link encrypt}) and signs one audit record per row, in one
   * transaction that locks the table's chain head first. Returns the written rows, decrypted.
   * @throws `ERR_SIFREDB_INPUT` when the table is not audited or `actor` is missing; as {@link encrypt};
   *   `ERR_SIFREDB_DATABASE` when a statement fails (nothing is written).
   */
  async signedInsert(db: DrizzleTransactable, rows: readonly PlainInsert<TTable, T>[], options: AuditedWriteOptions): Promise<DecryptedRow<TTable, T>[]> {
    if (!Array.isArray(rows) || rows.length === 0) throw new SifreDBError(ERROR_CODES.input, 'rows must be a non-empty array');
    const stored = this.#encrypt(rows as readonly Record<string, unknown>[]);
    const written = await this.#signed(db, options, 'insert', (tx) => tx.insert(this.table).values(stored).returning());
    return this.decryptAsync(written);
  }

  /**
   * {@link update} signed: the rows of the tenant (and id) `values` selects, narrowed by `extraWhere`,
   * updated and one audit record signed per updated row (the row as it is afterwards), in one
   * transaction that locks the table's chain head before any row. Returns the updated rows, decrypted.
   * @throws as {@link encryptUpdate} and {@link signedInsert}; `ERR_SIFREDB_INPUT` for an `extraWhere` {@link update} refuses.
   */
  async signedUpdate(db: DrizzleTransactable, values: PlainUpdate<TTable, T>, options: AuditedWriteOptions & { where?: SQL }): Promise<DecryptedRow<TTable, T>[]> {
    const { set, where } = this.#encryptUpdate(values);
    if (options?.where !== undefined) this.#refuseRawColumns(options.where);
    const written = await this.#signed(db, options, 'update', (tx) => tx.update(this.table).set(set).where(drizzleAnd(where, options.where)).returning());
    return this.decryptAsync(written);
  }

  /**
   * `DELETE FROM table WHERE where`, one delete record signed per deleted row, in one transaction that
   * locks the table's chain head first. `where` may use the `eq` / `inArray` helpers on a
   * deterministic column or lookup (a blind-index condition throws: it would delete rows that do not
   * hold the value). Returns the number of rows deleted.
   * @throws as {@link signedInsert}; `ERR_SIFREDB_INPUT` when `where` is missing or reaches an
   *   encrypted column other than through `eq` / `inArray`.
   */
  async signedDelete(db: DrizzleTransactable, where: SQL, options: AuditedWriteOptions): Promise<number> {
    if (where === undefined || where === null) throw new SifreDBError(ERROR_CODES.input, 'signedDelete needs a where condition (a delete of every row is not signed by accident)');
    this.#refuseRawColumns(where);
    const id = this.#column.get(this.encrypted.schema.id)!;
    const written = await this.#signed(db, options, 'delete', (tx) => tx.delete(this.table).where(where).returning({ [this.#property.get(this.encrypted.schema.id)!]: id }));
    return written.length;
  }

  /**
   * Runs `write` (one statement with `returning()` of every column the record needs) in a Drizzle
   * transaction after locking the chain head, signs a record of each returned row and writes the
   * records before COMMIT: the data and its records commit or roll back together.
   */
  async #signed(
    db: DrizzleTransactable,
    options: AuditedWriteOptions,
    operation: 'insert' | 'update' | 'delete',
    write: (tx: DrizzleWriter) => PromiseLike<unknown[]>,
  ): Promise<Record<string, unknown>[]> {
    const audit = this.#audit;
    if (audit === undefined) {
      throw new SifreDBError(ERROR_CODES.input, `${this.encrypted.schema.table} is not audited: open it with encryptedTable(…, { audit: { signer } }) to sign its writes`);
    }
    const actor = checkActor(options);
    if (typeof (db as DrizzleTransactable | null)?.transaction !== 'function') throw new SifreDBError(ERROR_CODES.input, 'db must be a Drizzle pg-core database (db.transaction)');
    let published = this.#published.get(db);
    if (published === undefined) {
      published = db.transaction(async (tx) => publishAuditKey(drizzleSession(tx), this.#signer!));
      this.#published.set(db, published);
      // A failure is reported to this call and retried by the next.
      published.catch(() => this.#published.delete(db));
    }
    await published;
    return db.transaction(async (tx: never) => {
      const chain = await audit.lock(drizzleSession(tx), actor);
      const rows = (await write(tx as DrizzleWriter)) as Record<string, unknown>[];
      for (const row of this.#toDb(rows)) chain.append(operation, row);
      await chain.flush();
      return rows;
    });
  }

  /** Throws when the table is audited: `helper` would write rows no record signs. */
  #refuseUnsigned(helper: string, instead: string): void {
    if (this.#audit === undefined) return;
    throw new SifreDBError(
      ERROR_CODES.auditUnsigned,
      `${this.encrypted.schema.table} is audited: ${helper} would write rows no audit record signs; write through ${instead} (signed in the data's transaction)`,
    );
  }

  /**
   * Selected (or `returning()`) rows → plain rows in the declared types, lookup columns dropped;
   * one backend call per encrypted column and context.
   * @throws `ERR_SIFREDB_AUTH` (a ciphertext moved to another row or tenant), `ERR_SIFREDB_FORMAT`,
   *   `ERR_SIFREDB_SCHEMA` (a value of another type), naming `rows[i].column`.
   */
  decrypt(rows: readonly Record<string, unknown>[]): DecryptedRow<TTable, T>[] {
    return this.#finish(this.encrypted.decryptRows(this.#toDb(rows)), []);
  }

  /** {@link decrypt} with the ciphers on the thread pool, for large result sets. */
  async decryptAsync(rows: readonly Record<string, unknown>[], options?: BatchOptions): Promise<DecryptedRow<TTable, T>[]> {
    return this.#finish(await this.encrypted.decryptRowsAsync(this.#toDb(rows), options), []);
  }

  /**
   * `SELECT * FROM table WHERE where`, decrypted (on the thread pool), and the false positives of
   * this table's blind-index conditions in `where` dropped. The only query a blind-index condition
   * renders in: the read that cannot forget the filter.
   * @throws `ERR_SIFREDB_INPUT`, before anything is sent, when a blind-index condition is anywhere but
   *   at the top or under AND (under OR / NOT / any other SQL it could not be applied row by row), or
   *   when `where` uses an encrypted or lookup column of this table other than through `eq` /
   *   `inArray` (Drizzle's own `eq` would compare a plaintext with ciphertexts); the errors of {@link decrypt}.
   */
  async select(db: DrizzleSelectable, where?: SQL): Promise<DecryptedRow<TTable, T>[]> {
    this.#refuseRawColumns(where);
    const filters = this.#filters(where);
    let pending: PromiseLike<unknown[]>;
    // Drizzle builds the SQL synchronously when the query starts (`then` → execute → prepare), so
    // the blind-index conditions render here and nowhere else.
    for (const f of filters) f.approximate!.armed = true;
    try {
      pending = db.select().from(this.table).where(where).then((rows) => rows);
    } finally {
      for (const f of filters) f.approximate!.armed = false;
    }
    const rows = await this.encrypted.decryptRowsAsync(this.#toDb((await pending) as Record<string, unknown>[]));
    return this.#finish(rows, filters.map((f) => f.query));
  }

  /**
   * `column = value`. On an encrypted column: its stored terms under every active key version
   * (deterministic column or lookup: exact; blind index: approximate, filtered on read), and the
   * tenant's rows only when the schema has a tenant column. On another column: Drizzle's `eq`.
   * @throws `ERR_SIFREDB_INPUT` when the column cannot answer equality or the tenant is missing.
   */
  eq(column: PgColumn, value: unknown, options?: WhereOptions): SQL {
    return this.#condition(column, '=', value, options) ?? drizzleEq(column, value);
  }

  /** `column IN (values)`, on an encrypted column as {@link eq} with every value's terms. */
  inArray(column: PgColumn, values: readonly unknown[], options?: WhereOptions): SQL {
    return this.#condition(column, 'in', values, options) ?? drizzleInArray(column, values as unknown[]);
  }

  /**
   * Throws `ERR_SIFREDB_INPUT` naming the column and the operator when `column` is encrypted (or a
   * lookup column) and `operator` is not `=` / `in`: a ciphertext cannot be ordered, ranged or matched
   * by pattern, and a query that silently returned nothing would be worse than an error.
   */
  assertQueryable(column: PgColumn, operator: QueryOperator): void {
    const name = this.#guardedName(column);
    if (name === undefined) return;
    const op = String(operator).trim().toLowerCase();
    const owner = this.#guarded.get(name)!;
    if (name !== owner) {
      throw new SifreDBError(
        ERROR_CODES.input,
        `${this.encrypted.schema.table}.${name} is a lookup column of ${owner} and cannot be queried with ${JSON.stringify(String(operator))}; use eq/inArray on ${owner}`,
      );
    }
    if (op !== '=' && op !== 'in') this.encrypted.query(owner, operator, undefined);
  }

  // Drizzle's own operators, refused on an encrypted column (or its lookup column) and passed
  // through on any other: a ciphertext cannot prove inequality, order, range or pattern.
  /** Drizzle's `ne`. */
  readonly ne = this.#refusing('<>', drizzleNe);
  /** Drizzle's `gt`. */
  readonly gt = this.#refusing('>', drizzleGt);
  /** Drizzle's `gte`. */
  readonly gte = this.#refusing('>=', drizzleGte);
  /** Drizzle's `lt`. */
  readonly lt = this.#refusing('<', drizzleLt);
  /** Drizzle's `lte`. */
  readonly lte = this.#refusing('<=', drizzleLte);
  /** Drizzle's `between`. */
  readonly between = this.#refusing('between', drizzleBetween);
  /** Drizzle's `like`. */
  readonly like = this.#refusing('like', drizzleLike);
  /** Drizzle's `notLike`. */
  readonly notLike = this.#refusing('not like', drizzleNotLike);
  /** Drizzle's `ilike`. */
  readonly ilike = this.#refusing('ilike', drizzleIlike);
  /** Drizzle's `notIlike`. */
  readonly notIlike = this.#refusing('not ilike', drizzleNotIlike);
  /** Drizzle's `notInArray`. */
  readonly notInArray = this.#refusing('not in', drizzleNotInArray);
  /** Drizzle's `asc`, for `orderBy`. */
  readonly asc = this.#refusing('order by', drizzleAsc);
  /** Drizzle's `desc`, for `orderBy`. */
  readonly desc = this.#refusing('order by', drizzleDesc);

  /** `operator` of Drizzle, checked against the column first ({@link assertQueryable}). */
  #refusing<A extends unknown[]>(operator: QueryOperator, operation: (column: PgColumn, ...rest: A) => SQL): (column: PgColumn, ...rest: A) => SQL {
    return (column, ...rest) => {
      this.assertQueryable(column, operator);
      return operation(column, ...rest);
    };
  }

  /** The condition of an encrypted column, registered for the read-side filter; undefined for another column. */
  #condition(column: PgColumn, operator: '=' | 'in', value: unknown, options: WhereOptions | undefined): SQL | undefined {
    const name = this.#guardedName(column);
    if (name === undefined) return undefined;
    const owner = this.#guarded.get(name)!;
    if (owner !== name) {
      throw new SifreDBError(ERROR_CODES.input, `${this.encrypted.schema.table}.${name} is a lookup column of ${owner}; query ${owner} with eq/inArray`);
    }
    const query = this.encrypted.query(owner, operator, value, options);
    // On an alias (`alias(users, 'u2')`) the lookup and tenant conditions name the alias's columns.
    const lookup = this.#sibling(column, query.column);
    // The terms are bound as ONE array parameter with its type: Drizzle would expand a bare JS array
    // into a row of parameters (`= ANY(($1, $2))`, "malformed array literal").
    let condition = sql`${lookup} = ANY(${new Param(query.terms)}::${sql.raw(arrayType(lookup))})`;
    const tenantColumn = this.encrypted.schema.tenant;
    if (tenantColumn !== undefined) {
      // A blind-index term of another tenant can collide with this one's, and its row can hold the
      // same value: the tenant's own rows only, or the read-side filter would let it through.
      const tenant = this.#sibling(column, tenantColumn);
      const sameTenant = options?.tenant === null ? isNull(tenant) : drizzleEq(tenant, String(options!.tenant));
      condition = sql`(${condition} and ${sameTenant})`;
    }
    const approximate = query.approximate ? new ApproximateCondition(condition, `${this.encrypted.schema.table}.${owner}`) : undefined;
    if (approximate !== undefined) condition = new SQL([approximate]);
    const aliased = (column.table as unknown as Record<symbol, unknown>)[IS_ALIAS] === true;
    conditions.set(condition, { owner: this as unknown as EncryptedDrizzleTable<PgTable, TableSchemaInit>, query, approximate, aliased });
    return condition;
  }

  /** The database name of `column` when it is encrypted or a lookup column of this table (or of an alias of it). */
  #guardedName(column: PgColumn): string | undefined {
    if (!is(column, PgColumn)) throw new SifreDBError(ERROR_CODES.input, 'column must be a column of the Drizzle table');
    if (!this.#isOurs(column)) return undefined;
    return this.#guarded.has(column.name) ? column.name : undefined;
  }

  /**
   * Whether `column` is a column of this table's database table: the same Drizzle column, a column of
   * `alias(table, …)` (a proxy of it, so not identical) or of another Drizzle declaration of the same
   * table. Compared by the table's real name and schema, as the database sees them; a column of another
   * table with the same column name is not ours to refuse.
   */
  #isOurs(column: Column): boolean {
    if (this.#column.get(column.name) === column) return true;
    const table = column.table as unknown as Record<symbol, unknown>;
    const ours = this.table as unknown as Record<symbol, unknown>;
    return (
      table !== undefined &&
      table[ORIGINAL_NAME] === ours[ORIGINAL_NAME] &&
      (table[SCHEMA] ?? 'public') === (ours[SCHEMA] ?? 'public') &&
      this.#column.has(column.name)
    );
  }

  /** The column `name` of the table (or alias) `column` belongs to. */
  #sibling(column: PgColumn, name: string): PgColumn {
    const own = this.#column.get(name)!;
    if (this.#column.get(column.name) === column) return own;
    const sibling = (column.table as unknown as Record<string, unknown>)[this.#property.get(name)!];
    return is(sibling, PgColumn) ? sibling : own;
  }

  /**
   * Refuses a `where` that reaches an encrypted or lookup column of this table other than through a
   * condition `eq` / `inArray` built: Drizzle's `eq(users.ssn, 's1')` or sql`${users.email} = ${x}`
   * compares a plaintext with ciphertexts and returns nothing (or wrong rows) without an error.
   */
  #refuseRawColumns(where: SQL | undefined): void {
    const seen = new Set<unknown>();
    const walk = (node: unknown): void => {
      if (node === null || typeof node !== 'object' || seen.has(node)) return;
      seen.add(node);
      if (Array.isArray(node)) {
        for (const item of node) walk(item);
        return;
      }
      if (is(node, Column)) {
        if (this.#isOurs(node) && this.#guarded.has(node.name)) {
          const owner = this.#guarded.get(node.name)!;
          throw new SifreDBError(
            ERROR_CODES.input,
            `${this.encrypted.schema.table}.${node.name} is ${owner === node.name ? 'encrypted' : `a lookup column of ${owner}`} and is used in the condition other than through eq/inArray of this table: a plaintext compared with ciphertexts finds nothing or the wrong rows`,
          );
        }
        return;
      }
      if (is(node, SQL)) {
        // A condition the helpers built: its columns are compared with terms, as they should be.
        if (conditions.has(node)) return;
        for (const chunk of node.queryChunks) walk(chunk);
        return;
      }
      if (is(node, SQL.Aliased)) walk(node.sql);
    };
    walk(where);
  }

  /**
   * The blind-index conditions in `where`, to arm while the query is built and to apply on read.
   * One that a row must satisfy can be applied row by row; any other (under OR or NOT, or inside SQL
   * whose meaning is not known here) could drop rows another branch matches, so it is refused. Fail
   * closed: a blind-index condition is accepted only at the top of `where`, or inside SQL whose own
   * text (including nested text-only SQL, as `sql.raw(' or ')` or a sql`…` separator of `sql.join`
   * is) is nothing but `and`, parentheses and whitespace — what Drizzle's `and(...)` builds.
   */
  #filters(where: SQL | undefined): Registered[] {
    const found: Registered[] = [];
    const walk = (node: unknown, conjunctive: boolean): void => {
      if (Array.isArray(node)) {
        // An array interpolated into sql`…` is a comma-separated list: not a conjunction.
        for (const item of node) walk(item, false);
        return;
      }
      if (is(node, SQL.Aliased)) {
        walk(node.sql, false);
        return;
      }
      if (!is(node, SQL)) return;
      const registered = conditions.get(node);
      if (registered !== undefined) {
        if (registered.approximate !== undefined) {
          if (registered.owner !== (this as unknown)) {
            throw new SifreDBError(ERROR_CODES.input, `the blind-index condition on ${registered.approximate.name} belongs to another table; select from that table`);
          }
          if (registered.aliased) {
            throw new SifreDBError(ERROR_CODES.input, `the blind-index condition on ${registered.approximate.name} was built on an alias, which select() (from the table itself) cannot read; build it on the table's column`);
          }
          if (!conjunctive) {
            throw new SifreDBError(
              ERROR_CODES.input,
              `the blind-index condition on ${registered.approximate.name} is under OR/NOT or other SQL than and(...): its false positives cannot be filtered; use it in and(...) or run one query per branch`,
            );
          }
          found.push(registered);
        }
        return;
      }
      const joinsWithAnd = node.queryChunks.every((chunk) => {
        if (is(chunk, StringChunk)) return onlyAnd(chunk.value.join(' '));
        if (is(chunk, SQL)) {
          const text = textOnly(chunk);
          // A sub-expression (it holds more than text) is walked below; a text-only one is a separator.
          return text === undefined || onlyAnd(text);
        }
        // A parameter, column or anything else beside the condition: its meaning is not known here.
        return false;
      });
      for (const chunk of node.queryChunks) walk(chunk, conjunctive && joinsWithAnd);
    };
    walk(where, true);
    return found;
  }

  #finish(rows: Record<string, unknown>[], filters: readonly EqualityQuery[]): DecryptedRow<TTable, T>[] {
    const kept = filters.length === 0 ? rows : rows.filter((row) => filters.every((q) => q.matches(row)));
    return kept.map((row) => this.#rename(row, this.#property)) as DecryptedRow<TTable, T>[];
  }

  #encrypt(rows: readonly Record<string, unknown>[]): Record<string, unknown>[] {
    return this.encrypted.encryptRows(this.#toDb(rows) as PlainRowInput<T>[]).map((row) => this.#rename(row, this.#property));
  }

  #toDb(rows: readonly Record<string, unknown>[]): Record<string, unknown>[] {
    if (!Array.isArray(rows)) throw new SifreDBError(ERROR_CODES.input, 'rows must be an array');
    return rows.map((row, i) => {
      if (typeof row !== 'object' || row === null) throw new SifreDBError(ERROR_CODES.input, `rows[${i}] must be an object`);
      return this.#rename(row, this.#dbName);
    });
  }

  /** `row` with its keys renamed by `names` (others kept); a kept key that collides with a renamed one is an error. */
  #rename(row: Record<string, unknown>, names: ReadonlyMap<string, string>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(row)) {
      const target = names.get(key) ?? key;
      if (Object.hasOwn(out, target)) {
        throw new SifreDBError(ERROR_CODES.input, `row key ${key} collides with column ${target} of ${this.encrypted.schema.table}`);
      }
      out[target] = value;
    }
    return out;
  }

  /** Every column the schema reads must be in the Drizzle table, with a type its values fit. */
  #checkColumns(): void {
    const schema = this.encrypted.schema;
    const table = schema.table;
    const need = (name: string, role: string, accept?: (c: PgColumn) => string | undefined): void => {
      const column = this.#column.get(name);
      if (column === undefined) {
        throw new SifreDBError(ERROR_CODES.schema, `the Drizzle table for ${table} has no column ${name} (${role}); declare it with that database name`);
      }
      const problem = accept?.(column);
      if (problem !== undefined) {
        throw new SifreDBError(ERROR_CODES.schema, `${table}.${name} (${role}) is ${column.getSQLType()} in the Drizzle table but ${problem}`);
      }
    };
    const ciphertext = (storage: 'text' | 'bytea') => (c: PgColumn) =>
      storage === 'bytea' ? (sqlType(c) === 'bytea' ? undefined : 'holds BYTEA ciphertexts (bytea customType)') : isText(c) ? undefined : 'holds sdb1: text (text or varchar)';
    need(schema.id, 'the row id');
    if (schema.tenant !== undefined) need(schema.tenant, 'the tenant column');
    for (const c of schema.columns.values()) {
      need(c.name, `encrypted ${c.type}`, ciphertext(c.storage));
      for (const b of c.blindIndexes) {
        need(b.column, `blind index ${b.name}`, (col) => {
          if (b.storage === 'bytea') return sqlType(col) === 'bytea' ? undefined : 'holds bytea terms';
          if (b.storage === 'text') return isText(col) ? undefined : 'holds hex text terms';
          const type = sqlType(col);
          if (type === 'bigint' && b.bits > 53 && col.columnType === 'PgBigInt53') return `holds ${b.bits}-bit terms: bigint({ mode: 'number' }) would round them, use mode 'bigint' or 'string'`;
          if (type === 'bigint' || (type === 'integer' && b.bits <= 31)) return undefined;
          return `holds ${b.bits}-bit integer terms (${b.bits <= 31 ? 'integer or bigint' : 'bigint'})`;
        });
      }
      for (const d of c.deterministicLookups) need(d.column, `deterministic lookup of ${c.name}`, ciphertext(d.storage));
    }
  }
}

/**
 * Opens `schema` on the keys and checks it against the Drizzle table: every encrypted, lookup, id
 * and tenant column of the schema must be a column of `table` (by database name) with a type its
 * stored values fit.
 * @throws `ERR_SIFREDB_SCHEMA` naming the missing or mismatched column; `ERR_SIFREDB_KEY` when the keys cannot be loaded.
 * @example
 * ```ts
 * const enc = await encryptedTable(keyring, users, usersSchema);
 * await db.insert(users).values(enc.encrypt({ id: 1, tenantId: 't1', email: 'a@x.io' }));
 * const found = await enc.select(db, enc.eq(users.email, 'a@x.io', { tenant: 't1' }));
 * ```
 */
export async function encryptedTable<TTable extends PgTable, T extends TableSchemaInit>(
  source: KeySource,
  table: TTable,
  schema: TableSchema<T>,
  options?: EncryptedDrizzleTableOptions,
): Promise<EncryptedDrizzleTable<TTable, T>> {
  if (!is(table, PgTable)) throw new SifreDBError(ERROR_CODES.input, 'table must be a Drizzle pg-core table (pgTable)');
  const { audit, ...keyringOptions } = options ?? {};
  if (audit !== undefined && (typeof audit !== 'object' || audit === null || typeof audit.signer?.sign !== 'function')) {
    throw new SifreDBError(ERROR_CODES.input, 'options.audit.signer must be an audit signer (AuditKeyFile.signer())');
  }
  return new EncryptedDrizzleTable(table, await EncryptedTable.open(source, schema, keyringOptions), audit);
}

/** The tables of {@link encryptedTables}: each a `[drizzleTable, schema]` pair. */
export type TablePairs = Record<string, readonly [PgTable, TableSchema<TableSchemaInit>]>;

/** {@link encryptedTable} of each pair, on one keyring. */
export async function encryptedTables<P extends TablePairs>(
  source: KeySource,
  tables: P,
  options?: KeyringOptions,
): Promise<{ [K in keyof P]: P[K] extends readonly [infer D extends PgTable, TableSchema<infer T>] ? EncryptedDrizzleTable<D, T> : never }> {
  // One keyring for every table: the keys are loaded once.
  const keyring = await Keyring.from(source, options);
  const out: Record<string, unknown> = {};
  for (const [key, [table, schema]] of Object.entries(tables)) out[key] = await encryptedTable(keyring, table, schema);
  return out as { [K in keyof P]: P[K] extends readonly [infer D extends PgTable, TableSchema<infer T>] ? EncryptedDrizzleTable<D, T> : never };
}

/** The Drizzle statements a signed write runs inside its transaction. */
interface DrizzleWriter {
  insert(table: PgTable): { values(rows: Record<string, unknown>[]): { returning(): PromiseLike<unknown[]> } };
  update(table: PgTable): { set(values: Record<string, unknown>): { where(condition: SQL | undefined): { returning(): PromiseLike<unknown[]> } } };
  delete(table: PgTable): { where(condition: SQL): { returning(fields: Record<string, PgColumn>): PromiseLike<unknown[]> } };
  execute(query: SQL): PromiseLike<unknown>;
}

/**
 * A {@link DbSession} on a Drizzle transaction, for the audit chain's statements: `$n` placeholders
 * become bound parameters of Drizzle's `sql` (the driver binds them; nothing is interpolated).
 */
function drizzleSession(tx: unknown): DbSession {
  const writer = tx as DrizzleWriter;
  return {
    query: async <R>(text: string, params: readonly unknown[] = []) => {
      const parts = text.split(/\$(\d+)/);
      const chunks: SQL[] = [];
      parts.forEach((part, i) => chunks.push(i % 2 === 0 ? sql.raw(part) : new SQL([new Param(params[Number(part) - 1])])));
      const result = (await writer.execute(sql.join(chunks))) as { rows?: R[]; rowCount?: number; affectedRows?: number } | R[];
      const rows = Array.isArray(result) ? result : (result.rows ?? []);
      return { rows, rowCount: Array.isArray(result) ? rows.length : (result.rowCount ?? result.affectedRows ?? rows.length) };
    },
  };
}

/** Whether `text` is only `and`, parentheses and whitespace (the text of Drizzle's `and(...)`). */
function onlyAnd(text: string): boolean {
  return text
    .toLowerCase()
    .split(/[\s()]+/)
    .every((word) => word === '' || word === 'and');
}

/** The text of `node` when it is made only of text (nested included), as `sql.raw(' or ')`; otherwise undefined. */
function textOnly(node: SQL): string | undefined {
  let text = '';
  for (const chunk of node.queryChunks) {
    if (is(chunk, StringChunk)) text += ` ${chunk.value.join(' ')}`;
    else if (is(chunk, SQL)) {
      const inner = textOnly(chunk);
      if (inner === undefined) return undefined;
      text += ` ${inner}`;
    } else return undefined;
  }
  return text;
}

function sqlType(column: PgColumn): string {
  return column.getSQLType().toLowerCase();
}

function isText(column: PgColumn): boolean {
  const type = sqlType(column);
  return type === 'text' || type.startsWith('varchar') || type.startsWith('character varying');
}

/** The array type to cast the terms parameter to, from the lookup column's type. */
function arrayType(column: PgColumn): string {
  const type = sqlType(column);
  if (type === 'bytea' || type === 'integer' || type === 'bigint') return `${type}[]`;
  return 'text[]';
}
