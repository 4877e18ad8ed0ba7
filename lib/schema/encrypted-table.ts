/**
 * {@link EncryptedTable}: rows through a {@link TableSchema} — plain rows to stored rows (ciphertexts
 * and every lookup column) and back, in batches, and equality queries on encrypted columns.
 */
import { Buffer } from 'node:buffer';
import { BlindIndex, type BlindIndexValue } from '../blind-index/blind-index.js';
import { EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { indexedError } from '../backend/batch.js';
import type { BatchOptions } from '../backend/types.js';
import { isEncrypted } from '../format/inspect.js';
import { toText } from '../format/text.js';
import type { EncryptableValue } from '../format/value-codec.js';
import { Keyring, type KeyringOptions, type KeySource } from '../keys/keyring.js';
import type { BaseVault } from '../vault/base-vault.js';
import { DeterministicVault } from '../vault/deterministic-vault.js';
import { Vault } from '../vault/vault.js';
import { assertDatabase, type DbSession } from '../db/database.js';
import { describeTable, parseTableName, quoteIdent } from '../db/schema.js';
import { decryptColumn, decryptColumnAsync } from './decrypt-column.js';
import { schemaRecords } from './settings.js';
import { compareSettings, readRecordedSettings } from './sql.js';
import {
  type ColumnValueType,
  type PlainValueOf,
  type ResolvedBlindIndex,
  type ResolvedColumn,
  type TableSchema,
  type TableSchemaInit,
} from './definition.js';

/** The plain values of a declared table: each encrypted column in its declared JS type (or null). */
export type PlainColumns<T extends TableSchemaInit> = {
  -readonly [K in keyof T['columns']]: PlainValueOf<T['columns'][K]['type']> | null;
};

/** A row as the application sees it: encrypted columns typed, other columns as they are. */
export type PlainRow<T extends TableSchemaInit> = PlainColumns<T> & Record<string, unknown>;

/** A row to write: any subset of the encrypted columns (an UPDATE sets some), other columns as they are. */
export type PlainRowInput<T extends TableSchemaInit> = Partial<PlainColumns<T>> & Record<string, unknown>;

/** A row as stored: ciphertexts (`sdb1:` text or BYTEA `Buffer`) and lookup terms. */
export type StoredRow = Record<string, unknown>;

/** An equality condition on an encrypted column, ready to bind (`WHERE ${sql('$1')}` with `[terms]`). */
export interface EqualityQuery {
  /** The column to compare: the deterministic column itself, or its lookup column. */
  readonly column: string;
  /** The stored form of every term the value may have (one per active key version), for `= ANY($1)`. */
  readonly terms: readonly unknown[];
  /** Whether rows can come back that do not hold the value (a blind index): filter them with {@link matches}. */
  readonly approximate: boolean;
  /** `"col" = ANY(<placeholder>)`. */
  sql(placeholder: string): string;
  /** True when a decrypted row holds the value (a blind index's false positives give false). */
  matches(row: Record<string, unknown>): boolean;
}

/** Options of {@link EncryptedTable.where}. */
export interface WhereOptions {
  /**
   * The tenant of the rows searched; required (a string or integer id, or `null` for rows without one)
   * when the table has a tenant column. Ids are compared as their text, as rows are written.
   */
  tenant?: string | number | bigint | null;
  /** The blind index (by name) or lookup column to search with, when the column has several. */
  index?: string;
}

/** Operators an encrypted column may be able to answer, and the ones it can never answer. */
export type QueryOperator = '=' | 'in' | '<>' | '!=' | '<' | '<=' | '>' | '>=' | 'like' | 'ilike' | 'between' | 'order by' | (string & {});

interface ColumnRuntime {
  readonly spec: ResolvedColumn;
  readonly vault: BaseVault;
  readonly context: EncryptionContext;
  readonly blindIndexes: readonly { readonly spec: ResolvedBlindIndex; readonly index: BlindIndex }[];
  readonly deterministicLookups: readonly { readonly column: string; readonly storage: 'text' | 'bytea'; readonly context: EncryptionContext }[];
  /** Computes `deterministicLookups` (present when there are any). */
  readonly lookupVault: DeterministicVault | undefined;
}

/**
 * A table's encrypted columns, opened on the keys. Rows go through it both ways in batches (one
 * backend call per column and context), and every lookup column is written with its value, so the
 * application, the CLI jobs and `schema check` compute the same terms from the same schema.
 *
 * @example
 * ```ts
 * const users = await EncryptedTable.open(keyring, usersSchema);
 * await db.query('INSERT INTO users (id, email, email_idx) VALUES ($1, $2, $3)', Object.values(users.encryptRow({ id: 1, email: 'a@x.io' })));
 * const q = users.where('email', 'A@x.io ');
 * const found = users.decryptRows((await db.query(`SELECT * FROM users WHERE ${q.sql('$1')}`, [q.terms])).rows).filter(q.matches);
 * ```
 */
export class EncryptedTable<T extends TableSchemaInit = TableSchemaInit> {
  readonly schema: TableSchema<T>;
  readonly keyring: Keyring;
  readonly #columns: ReadonlyMap<string, ColumnRuntime>;

  private constructor(schema: TableSchema<T>, keyring: Keyring, columns: Map<string, ColumnRuntime>) {
    this.schema = schema;
    this.keyring = keyring;
    this.#columns = columns;
    Object.freeze(this);
  }

  /**
   * Opens the vaults and blind indexes of `schema` on `source` (a provider, router or shared `Keyring`).
   * @throws `ERR_SIFREDB_KEY` when the keys cannot be loaded.
   */
  static async open<T extends TableSchemaInit>(source: KeySource, schema: TableSchema<T>, options: KeyringOptions = {}): Promise<EncryptedTable<T>> {
    const keyring = await Keyring.from(source, options);
    const columnSpecs = [...schema.columns.values()];
    const vaults = new Map<string, BaseVault>();
    const vaultFor = async (algorithm: ResolvedColumn['algorithm']): Promise<BaseVault> => {
      let vault = vaults.get(algorithm);
      if (vault === undefined) {
        vault = algorithm === 'aes-256-siv' ? await DeterministicVault.open(keyring) : await Vault.open(keyring, { algorithm });
        vaults.set(algorithm, vault);
      }
      return vault;
    };
    const columns = new Map<string, ColumnRuntime>();
    for (const spec of columnSpecs) {
      const context = new EncryptionContext(spec.context);
      const blindIndexes = await Promise.all(
        spec.blindIndexes.map(async (b) => ({
          spec: b,
          index: await openBlindIndex(keyring, b),
        })),
      );
      const deterministicLookups = spec.deterministicLookups.map((d) => ({
        column: d.column,
        storage: d.storage,
        context: new EncryptionContext({ ...spec.context, column: d.contextColumn }),
      }));
      const lookupVault = deterministicLookups.length > 0 ? ((await vaultFor('aes-256-siv')) as DeterministicVault) : undefined;
      columns.set(spec.name, Object.freeze({ spec, vault: await vaultFor(spec.algorithm), context, blindIndexes, deterministicLookups, lookupVault }));
    }
    return new EncryptedTable(schema, keyring, columns);
  }

  /**
   * Compares the schema with the settings recorded in `db` (`sifredb_schema`, written by
   * `sifredb schema sql`): call it at start-up so that an application whose schema differs from the
   * data's — other bits, transforms, context, tenant column — refuses to write instead of storing
   * terms its own queries, or the jobs, would not find. Columns not recorded yet pass.
   * @throws `ERR_SIFREDB_SCHEMA` listing every difference; `ERR_SIFREDB_DATABASE` when `db` cannot be read.
   */
  async verifySettings(db: DbSession): Promise<void> {
    assertDatabase(db, 'verifySettings');
    const recorded = await readRecordedSettings(db, this.schema.table, await describeTable(db, parseTableName(this.schema.table)));
    if (recorded === undefined) return;
    const mismatches = compareSettings(recorded, schemaRecords(this.schema), [...this.schema.columns.keys()]);
    if (mismatches.length > 0) {
      throw new SifreDBError(
        ERROR_CODES.schema,
        `the schema of ${this.schema.table} differs from the settings its data was written with: ${mismatches.map((m) => m.message).join('; ')}`,
      );
    }
  }

  /** {@link encryptRows} of one row. */
  encryptRow(row: PlainRowInput<T>): StoredRow {
    return this.encryptRows([row])[0]!;
  }

  /**
   * Plain rows → stored rows: every encrypted column present in a row is encrypted with the row's
   * context (tenant, row id when bound) and its lookup columns are computed; columns the schema does
   * not encrypt are copied as they are. A column absent from a row (a partial UPDATE) is left out,
   * with its lookups. `null` stays `null`, lookups too.
   * @throws `ERR_SIFREDB_INPUT` naming `rows[i].column`: a value of another type than declared, a
   *   lookup column given by the caller, a missing tenant or row id, or a compound index whose fields
   *   are only partly present.
   */
  encryptRows(rows: readonly PlainRowInput<T>[]): StoredRow[] {
    const out = this.#prepareWrite(rows);
    for (const column of this.#columns.values()) {
      for (const [ctx, members] of this.#groupPresent(rows, column)) {
        const values = members.map((i) => rows[i]![column.spec.name] as EncryptableValue);
        const aad = column.spec.rowBinding ? members.map((i) => this.#rowId(rows[i]!, i)) : undefined;
        let sealed: Buffer[];
        try {
          sealed = column.vault.encryptMany(values, ctx, aad === undefined ? undefined : { aad });
        } catch (error) {
          throw renameIndex(error, members, `.${column.spec.name}`);
        }
        members.forEach((rowIndex, j) => {
          out[rowIndex]![column.spec.name] = stored(sealed[j]!, column.spec.storage);
        });
        this.#writeLookups(column, ctx, members, rows, out);
      }
      this.#writeNullLookups(column, rows, out);
    }
    this.#writeCompoundLookups(rows, out);
    return out;
  }

  /** {@link decryptRows} of one row. */
  decryptRow(row: StoredRow): PlainRow<T> {
    return this.decryptRows([row])[0]!;
  }

  /**
   * Stored rows → plain rows: each encrypted column decrypted to its declared type (one backend call
   * per column and context); lookup columns are dropped, other columns copied.
   * @throws `ERR_SIFREDB_AUTH` / `ERR_SIFREDB_FORMAT` / `ERR_SIFREDB_KEY` as the vaults do, and
   *   `ERR_SIFREDB_SCHEMA` when a value is of another type than declared; the error names
   *   `rows[i].column`.
   */
  decryptRows(rows: readonly StoredRow[]): PlainRow<T>[] {
    const out = this.#prepareRead(rows);
    for (const column of this.#columns.values()) {
      for (const [ctx, members] of this.#groupPresent(rows, column)) {
        let values: unknown[];
        try {
          values = decryptColumn(column.vault, this.#cipherInputs(rows, members, column), ctx, column.spec.type, this.#rowAds(rows, members, column));
        } catch (error) {
          throw renameIndex(error, members, `.${column.spec.name}`);
        }
        this.#assign(out, members, column, values);
      }
    }
    return out as PlainRow<T>[];
  }

  /** Async form of {@link decryptRows} for large result sets: the ciphers run on the thread pool. */
  async decryptRowsAsync(rows: readonly StoredRow[], options?: BatchOptions): Promise<PlainRow<T>[]> {
    const out = this.#prepareRead(rows);
    for (const column of this.#columns.values()) {
      for (const [ctx, members] of this.#groupPresent(rows, column)) {
        let values: unknown[];
        try {
          values = await decryptColumnAsync(
            column.vault,
            this.#cipherInputs(rows, members, column),
            ctx,
            column.spec.type,
            this.#rowAds(rows, members, column),
            options,
          );
        } catch (error) {
          throw renameIndex(error, members, `.${column.spec.name}`);
        }
        this.#assign(out, members, column, values);
      }
    }
    return out as PlainRow<T>[];
  }

  /**
   * An equality query for `column` = `value` across every active key version: the deterministic
   * column's own terms, a deterministic lookup column's, or a blind index's (then `approximate`:
   * filter the decrypted rows with `matches`). Bind `terms` as one array parameter.
   * @throws `ERR_SIFREDB_INPUT` when the column cannot answer equality (no deterministic mode or
   *   lookup), is row-bound and deterministic, or the tenant is missing.
   */
  where<K extends keyof T['columns'] & string>(column: K, value: PlainValueOf<T['columns'][K]['type']> | BlindIndexValue, options?: WhereOptions): EqualityQuery {
    return this.query(column, '=', value, options);
  }

  /**
   * A condition on an encrypted column. Only `=` (and `in`, with an array of values) can be answered
   * on ciphertext; any other operator — ranges, `LIKE`, ordering — is refused with
   * `ERR_SIFREDB_INPUT` naming the column and the operator, never answered with an empty result.
   */
  query(column: string, operator: QueryOperator, value: unknown, options?: WhereOptions | null): EqualityQuery {
    options ??= {};
    const runtime = this.#column(column);
    const op = String(operator).trim().toLowerCase();
    if (op !== '=' && op !== 'in') {
      throw new SifreDBError(
        ERROR_CODES.input,
        `${this.schema.table}.${column} is encrypted and cannot answer ${JSON.stringify(String(operator))}: only equality (= and IN) is searchable, through its deterministic mode or lookup columns`,
      );
    }
    const values = op === 'in' ? valuesOf(value, column) : [value];
    const ctx = this.#queryContext(runtime, options);
    const plan = this.#equalityPlan(runtime, options.index);
    const terms: unknown[] = [];
    const seen = new Set<string>();
    for (const v of values) {
      for (const term of plan.terms(v, ctx)) {
        const key = Buffer.isBuffer(term) ? `b:${term.toString('hex')}` : `${typeof term}:${String(term)}`;
        if (!seen.has(key)) {
          seen.add(key);
          terms.push(term);
        }
      }
    }
    const lookupColumn = plan.column;
    const name = runtime.spec.name;
    const keys = values.map((v) => plan.key(v));
    const tenantColumn = this.schema.tenant;
    return Object.freeze({
      column: lookupColumn,
      terms: Object.freeze(terms),
      approximate: plan.approximate,
      sql: (placeholder: string) => `${quoteIdent(lookupColumn)} = ANY(${placeholder})`,
      matches: (row: Record<string, unknown>) => {
        if (typeof row !== 'object' || row === null || !(name in row)) {
          throw new SifreDBError(ERROR_CODES.input, `matches() needs rows with column ${name}, decrypted (decryptRows)`);
        }
        const held = row[name];
        if (held === null || held === undefined) return false;
        if (runtime.spec.type !== 'bytes' && isEncrypted(held)) {
          throw new SifreDBError(ERROR_CODES.input, `matches() was given a row whose ${name} is still a ciphertext; filter the rows decryptRows returns`);
        }
        // Another tenant's row may share a blind-index term and hold the same value: it is not a
        // match, whatever the query's SQL said about tenants.
        if (tenantColumn !== undefined) {
          if (!(tenantColumn in row)) throw new SifreDBError(ERROR_CODES.input, `matches() needs rows with the tenant column ${tenantColumn}`);
          const rowTenant = row[tenantColumn] === null || row[tenantColumn] === undefined ? undefined : String(row[tenantColumn]);
          if (rowTenant !== ctx.tenant) return false;
        }
        const key = plan.key(held);
        return keys.some((k) => k === key);
      },
    });
  }

  #column(name: string): ColumnRuntime {
    const runtime = this.#columns.get(name);
    if (runtime === undefined) this.schema.column(name);
    return runtime!;
  }

  #queryContext(runtime: ColumnRuntime, options: WhereOptions): EncryptionContext {
    if (this.schema.tenant === undefined) {
      if (options.tenant !== undefined && options.tenant !== null) {
        throw new SifreDBError(ERROR_CODES.input, `${this.schema.table} has no tenant column; do not pass a tenant`);
      }
      return runtime.context;
    }
    if (options.tenant === undefined) {
      throw new SifreDBError(
        ERROR_CODES.input,
        `${this.schema.table} has a tenant column (${this.schema.tenant}): pass { tenant } (or tenant: null for rows without one)`,
      );
    }
    // A tenant is written as its text (see #rowContext): a numeric tenant id finds the same rows.
    const tenant = options.tenant as unknown;
    if (tenant === null) return runtime.context;
    if (typeof tenant !== 'string' && typeof tenant !== 'number' && typeof tenant !== 'bigint') {
      throw new SifreDBError(ERROR_CODES.input, `tenant must be a string, an integer or null`);
    }
    return tenantContext(runtime.context, String(tenant));
  }

  #equalityPlan(
    runtime: ColumnRuntime,
    wanted: string | undefined,
  ): { column: string; approximate: boolean; terms(value: unknown, ctx: EncryptionContext): unknown[]; key(value: unknown): string } {
    const name = `${this.schema.table}.${runtime.spec.name}`;
    const exactKey = (value: unknown) => exactKeyOf(value, runtime.spec.type, name);
    if (runtime.spec.mode === 'deterministic' && (wanted === undefined || wanted === runtime.spec.name)) {
      if (runtime.spec.rowBinding) {
        throw new SifreDBError(ERROR_CODES.input, `${name} is deterministic but row-bound: equal values differ between rows, so it cannot be searched across rows`);
      }
      const vault = runtime.vault as DeterministicVault;
      return {
        column: runtime.spec.name,
        approximate: false,
        terms: (value, ctx) => vault.queryTerms(checkedValue(value, runtime.spec.type, name), ctx).map((t) => stored(t, runtime.spec.storage)),
        key: exactKey,
      };
    }
    const lookup = runtime.deterministicLookups.find((d) => wanted === undefined || wanted === d.column);
    if (lookup !== undefined) {
      const vault = runtime.lookupVault!;
      return {
        column: lookup.column,
        approximate: false,
        terms: (value, ctx) =>
          vault
            .queryTerms(checkedValue(value, runtime.spec.type, name), ctx.tenant === undefined ? lookup.context : tenantContext(lookup.context, ctx.tenant))
            .map((t) => stored(t, lookup.storage)),
        key: exactKey,
      };
    }
    const blind = runtime.blindIndexes.find((b) => (wanted === undefined ? b.spec.fields.length === 0 : wanted === b.spec.name || wanted === b.spec.column));
    if (blind !== undefined) {
      if (blind.spec.fields.length > 0) {
        throw new SifreDBError(ERROR_CODES.input, `blind index ${blind.spec.name} is compound; query it with the fields' values through BlindIndex.queryTerms`);
      }
      return {
        column: blind.spec.column,
        approximate: true,
        terms: (value, ctx) => blind.index.queryTerms(value as BlindIndexValue, ctx).map((t) => termForm(t, blind.spec)),
        key: (value) => JSON.stringify(blind.index.normalize(value as BlindIndexValue)),
      };
    }
    throw new SifreDBError(
      ERROR_CODES.input,
      wanted === undefined
        ? `${name} cannot answer "=": it is randomized and has no deterministic lookup or single-field blind index (add one to the schema)`
        : `${name} has no lookup ${JSON.stringify(wanted)}`,
    );
  }

  /** Copies of the rows with the schema's checks done: no lookup column given, tenant and id present where needed. */
  #prepareWrite(rows: readonly PlainRowInput<T>[]): StoredRow[] {
    if (!Array.isArray(rows)) throw new SifreDBError(ERROR_CODES.input, 'rows must be an array');
    return rows.map((row, i) => {
      if (typeof row !== 'object' || row === null) throw new SifreDBError(ERROR_CODES.input, `rows[${i}] must be an object`);
      for (const key of Object.keys(row)) {
        const owner = this.schema.lookupOwners.get(key);
        if (owner !== undefined) {
          throw new SifreDBError(ERROR_CODES.input, `rows[${i}].${key} is a lookup column of ${owner}; it is computed from ${owner}, do not set it`);
        }
      }
      for (const column of this.#columns.values()) {
        const value = row[column.spec.name];
        if (value === undefined || value === null) continue;
        checkedValue(value, column.spec.type, `rows[${i}].${column.spec.name}`);
      }
      return { ...row };
    });
  }

  #prepareRead(rows: readonly StoredRow[]): Record<string, unknown>[] {
    if (!Array.isArray(rows)) throw new SifreDBError(ERROR_CODES.input, 'rows must be an array');
    return rows.map((row, i) => {
      if (typeof row !== 'object' || row === null) throw new SifreDBError(ERROR_CODES.input, `rows[${i}] must be an object`);
      const copy: Record<string, unknown> = { ...row };
      for (const lookup of this.schema.lookupOwners.keys()) delete copy[lookup];
      return copy;
    });
  }

  /** Indexes of the rows holding a value of `column`, grouped by the row's encryption context. */
  #groupPresent(rows: readonly Record<string, unknown>[], column: ColumnRuntime): Map<EncryptionContext, number[]> {
    const groups = new Map<string, { ctx: EncryptionContext; members: number[] }>();
    rows.forEach((row, i) => {
      const value = row[column.spec.name];
      if (value === undefined || value === null) return;
      const ctx = this.#rowContext(row, column, i);
      const group = groups.get(ctx.key);
      if (group === undefined) groups.set(ctx.key, { ctx, members: [i] });
      else group.members.push(i);
    });
    return new Map([...groups.values()].map((g) => [g.ctx, g.members]));
  }

  #rowContext(row: Record<string, unknown>, column: ColumnRuntime, index: number): EncryptionContext {
    const tenantColumn = this.schema.tenant;
    if (tenantColumn === undefined) return column.context;
    if (!(tenantColumn in row)) {
      throw new SifreDBError(ERROR_CODES.input, `rows[${index}] has no ${tenantColumn} (the tenant column): its encrypted columns need the row's tenant`);
    }
    const tenant = row[tenantColumn];
    if (tenant === null) return column.context;
    if (typeof tenant !== 'string' && typeof tenant !== 'number' && typeof tenant !== 'bigint') {
      throw new SifreDBError(ERROR_CODES.input, `rows[${index}].${tenantColumn} must be a string or an integer`);
    }
    return tenantContext(column.context, String(tenant));
  }

  #rowId(row: Record<string, unknown>, index: number): string {
    const id = row[this.schema.id];
    if (typeof id === 'string' || typeof id === 'bigint' || (typeof id === 'number' && Number.isSafeInteger(id))) return String(id);
    throw new SifreDBError(
      ERROR_CODES.input,
      `rows[${index}].${this.schema.id} (the row id) must be a string or an integer: a row-bound column is bound to it`,
    );
  }

  #rowAds(rows: readonly StoredRow[], members: readonly number[], column: ColumnRuntime): string[] | undefined {
    return column.spec.rowBinding ? members.map((i) => this.#rowId(rows[i]!, i)) : undefined;
  }

  #cipherInputs(rows: readonly StoredRow[], members: readonly number[], column: ColumnRuntime): (string | Uint8Array)[] {
    return members.map((i) => {
      const value = rows[i]![column.spec.name];
      if (typeof value === 'string' || value instanceof Uint8Array) return value;
      throw new SifreDBError(ERROR_CODES.input, `rows[${i}].${column.spec.name} must be a ciphertext (sdb1: text or bytes), got ${typeof value}`);
    });
  }

  #assign(out: Record<string, unknown>[], members: readonly number[], column: ColumnRuntime, values: readonly unknown[]): void {
    members.forEach((rowIndex, j) => (out[rowIndex]![column.spec.name] = values[j]));
  }

  #writeLookups(column: ColumnRuntime, ctx: EncryptionContext, members: readonly number[], rows: readonly Record<string, unknown>[], out: StoredRow[]): void {
    const values = members.map((i) => rows[i]![column.spec.name]);
    for (const { spec, index } of column.blindIndexes) {
      if (spec.fields.length > 0) continue;
      let terms;
      try {
        terms = index.computeMany(values as BlindIndexValue[], ctx);
      } catch (error) {
        throw renameIndex(error, members, `.${column.spec.name}`);
      }
      members.forEach((rowIndex, j) => (out[rowIndex]![spec.column] = termForm(terms[j]!, spec)));
    }
    if (column.deterministicLookups.length > 0) {
      const vault = column.lookupVault!;
      for (const lookup of column.deterministicLookups) {
        const lctx = ctx.tenant === undefined ? lookup.context : tenantContext(lookup.context, ctx.tenant);
        const sealed = vault.encryptMany(values as EncryptableValue[], lctx);
        members.forEach((rowIndex, j) => (out[rowIndex]![lookup.column] = stored(sealed[j]!, lookup.storage)));
      }
    }
  }

  /** A column set to null clears its lookups. */
  #writeNullLookups(column: ColumnRuntime, rows: readonly Record<string, unknown>[], out: StoredRow[]): void {
    rows.forEach((row, i) => {
      if (row[column.spec.name] !== null) return;
      for (const { spec } of column.blindIndexes) if (spec.fields.length === 0) out[i]![spec.column] = null;
      for (const lookup of column.deterministicLookups) out[i]![lookup.column] = null;
    });
  }

  /** Compound indexes: computed when all their fields are in the row, refused when only some are. */
  #writeCompoundLookups(rows: readonly Record<string, unknown>[], out: StoredRow[]): void {
    for (const column of this.#columns.values()) {
      for (const { spec, index } of column.blindIndexes) {
        if (spec.fields.length === 0) continue;
        rows.forEach((row, i) => {
          const present = spec.fields.filter((f) => row[f.column] !== undefined);
          if (present.length === 0) return;
          if (present.length < spec.fields.length) {
            const missing = spec.fields.filter((f) => row[f.column] === undefined).map((f) => f.column);
            throw new SifreDBError(
              ERROR_CODES.input,
              `rows[${i}] sets part of compound blind index ${spec.name} (${spec.column}); it also needs ${missing.join(', ')}, or its term would go stale`,
            );
          }
          if (spec.fields.some((f) => row[f.column] === null)) {
            out[i]![spec.column] = null;
            return;
          }
          const values: Record<string, string | number | bigint> = {};
          for (const f of spec.fields) values[f.column] = row[f.column] as string;
          try {
            out[i]![spec.column] = termForm(index.compute(values, this.#rowContext(row, column, i)), spec);
          } catch (error) {
            throw indexedError(error, 'rows', i);
          }
        });
      }
    }
  }
}

/**
 * Per-tenant contexts of each column context, built once: a context validates and encodes its
 * fields, which cost more than the encryption of a short value when done per row. Bounded: a table
 * with more live tenants than this rebuilds some.
 */
const TENANT_CONTEXTS = new WeakMap<EncryptionContext, Map<string, EncryptionContext>>();
const MAX_CACHED_TENANTS = 10_000;

function tenantContext(base: EncryptionContext, tenant: string): EncryptionContext {
  let byTenant = TENANT_CONTEXTS.get(base);
  if (byTenant === undefined) {
    byTenant = new Map();
    TENANT_CONTEXTS.set(base, byTenant);
  }
  let ctx = byTenant.get(tenant);
  if (ctx === undefined) {
    ctx = base.withTenant(tenant);
    if (byTenant.size >= MAX_CACHED_TENANTS) byTenant.clear();
    byTenant.set(tenant, ctx);
  }
  return ctx;
}

/**
 * The {@link BlindIndex} a schema's blind index stands for: a compound index's fields are named by
 * their columns, so a job or a check can hand it the row's values by column.
 */
export function openBlindIndex(keyring: Keyring, spec: ResolvedBlindIndex): Promise<BlindIndex> {
  return BlindIndex.open(keyring, {
    name: spec.name,
    bits: spec.bits,
    ...(spec.fields.length > 0 ? { fields: spec.fields.map((f) => ({ name: f.column, transforms: f.transforms })) } : { transforms: spec.transforms }),
  });
}

/** A ciphertext in its column's form. */
function stored(envelope: Buffer, storage: 'text' | 'bytea'): string | Buffer {
  return storage === 'text' ? toText(envelope) : envelope;
}

/** A blind-index term in its column's form: an integer (a number up to 53 bits, else decimal text), bytes or hex. */
export function termForm(term: { bytes: Buffer; hex: string; int: number | bigint }, spec: { storage: 'integer' | 'bytea' | 'text' }): unknown {
  if (spec.storage === 'integer') return typeof term.int === 'bigint' ? term.int.toString() : term.int;
  return spec.storage === 'bytea' ? term.bytes : term.hex;
}

const TYPE_CHECKS: Readonly<Record<ColumnValueType, (v: unknown) => boolean>> = {
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number',
  bigint: (v) => typeof v === 'bigint',
  boolean: (v) => typeof v === 'boolean',
  date: (v) => v instanceof Date,
  bytes: (v) => v instanceof Uint8Array,
  json: (v) => typeof v === 'object' && v !== null && !(v instanceof Date) && !(v instanceof Uint8Array),
};

/** `value` if it has the declared type, else `ERR_SIFREDB_INPUT` naming `where` (never the value). */
function checkedValue(value: unknown, type: ColumnValueType, where: string): EncryptableValue {
  if (!TYPE_CHECKS[type](value)) {
    const got = value === null ? 'null' : value instanceof Date ? 'a Date' : value instanceof Uint8Array ? 'bytes' : `a ${typeof value}`;
    throw new SifreDBError(ERROR_CODES.input, `${where} is declared ${type} but got ${got}`);
  }
  return value as EncryptableValue;
}

/** A key equal for equal values of `type` (Dates by time, bytes by content, JSON by text). */
function exactKeyOf(value: unknown, type: ColumnValueType, where: string): string {
  checkedValue(value, type, where);
  if (value instanceof Date) return `d:${value.getTime()}`;
  if (value instanceof Uint8Array) return `b:${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  if (typeof value === 'bigint') return `n:${value}`;
  return `${typeof value}:${JSON.stringify(value)}`;
}

function valuesOf(value: unknown, column: string): unknown[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new SifreDBError(ERROR_CODES.input, `IN on ${column} needs a non-empty array of values`);
  }
  return value;
}

/** Re-labels a batch error `values[j]` as `rows[members[j]]<suffix>`. */
function renameIndex(error: unknown, members: readonly number[], suffix: string): SifreDBError {
  const j = (error as { index?: unknown })?.index;
  if (typeof j === 'number' && members[j] !== undefined) {
    const message = (error as Error).message.replace(/^(values|ciphertexts)\[\d+\]: /, '');
    const renamed = new SifreDBError((error as SifreDBError).code ?? ERROR_CODES.input, `rows[${members[j]}]${suffix}: ${message}`);
    (renamed as unknown as { index: number }).index = members[j]!;
    return renamed;
  }
  return error instanceof SifreDBError ? error : new SifreDBError(ERROR_CODES.input, (error as Error)?.message ?? 'invalid input');
}
