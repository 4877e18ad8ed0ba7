/**
 * Identifier quoting and the catalog look-ups the jobs make before touching any row: column types
 * (to pick text or binary ciphertexts and the form of index terms) and the uniqueness of the id column
 * (keyset pagination needs a unique, ordered key).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { databaseError, type DbSession } from './database.js';

/** A double-quoted SQL identifier (names are taken literally: `Users` is `"Users"`, not `users`). */
export function quoteIdent(name: string): string {
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new SifreDBError(ERROR_CODES.input, 'SQL identifiers must be non-empty strings without NUL');
  }
  return `"${name.replace(/"/g, '""')}"`;
}

/** PostgreSQL's longest identifier, in bytes. */
const MAX_IDENTIFIER_BYTES = 63;

/**
 * A name for an object SifreDB creates (constraint, index) from `parts` joined with `_` and `suffix`:
 * as is when it fits PostgreSQL's 63 bytes, else a prefix cut on a character boundary plus a short
 * hash of the full name, so two long names that share a prefix never get the same object.
 */
export function objectName(parts: readonly string[], suffix: string): string {
  const full = `${parts.join('_')}_${suffix}`;
  if (Buffer.byteLength(full, 'utf8') <= MAX_IDENTIFIER_BYTES) return full;
  const tail = `_${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 10)}_${suffix}`;
  let prefix = '';
  for (const ch of parts.join('_')) {
    if (Buffer.byteLength(prefix + ch + tail, 'utf8') > MAX_IDENTIFIER_BYTES) break;
    prefix += ch;
  }
  return prefix + tail;
}

/** A table name, optionally schema-qualified (`schema.table`). */
export interface TableName {
  readonly schema: string | undefined;
  readonly name: string;
  /** Quoted for SQL: `"schema"."table"`. */
  readonly sql: string;
}

/** Splits `schema.table` at its first dot (a table name with a dot needs an explicit schema: `public.a.b`). */
export function parseTableName(table: string): TableName {
  if (typeof table !== 'string' || table === '') throw new SifreDBError(ERROR_CODES.input, 'table must be a non-empty string');
  const dot = table.indexOf('.');
  const schema = dot < 0 ? undefined : table.slice(0, dot);
  const name = dot < 0 ? table : table.slice(dot + 1);
  if (schema === '' || name === '') throw new SifreDBError(ERROR_CODES.input, `invalid table name ${JSON.stringify(table)}`);
  return { schema, name, sql: schema === undefined ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}` };
}

/** What a column's SQL type means to the jobs. */
export type ColumnKind = 'text' | 'bytea' | 'integer' | 'other';

/** One column of the table. */
export interface ColumnInfo {
  readonly name: string;
  /** `format_type` without modifiers, e.g. `character varying`, `bigint`; used for `$n::type[]` casts. */
  readonly type: string;
  readonly kind: ColumnKind;
  /** For integer kinds: the largest number of bits an unsigned value may have (15, 31, 63). */
  readonly intBits: number;
}

const TEXT_TYPES = new Set(['text', 'character varying', 'character', 'citext']);
const INT_BITS: Readonly<Record<string, number>> = { smallint: 15, integer: 31, bigint: 63 };

function kindOf(type: string): ColumnKind {
  if (TEXT_TYPES.has(type)) return 'text';
  if (type === 'bytea') return 'bytea';
  if (type in INT_BITS) return 'integer';
  return 'other';
}

/** The table's columns and which single columns have a unique index. */
export interface TableInfo {
  readonly table: TableName;
  readonly columns: ReadonlyMap<string, ColumnInfo>;
  readonly uniqueColumns: ReadonlySet<string>;
}

/**
 * Reads the catalog for `table`.
 * @throws `ERR_SIFREDB_INPUT` when the table does not exist; `ERR_SIFREDB_DATABASE` on other errors.
 */
export async function describeTable(db: DbSession, table: TableName): Promise<TableInfo> {
  let rows: Array<{ name: string; type: string; is_unique: boolean }>;
  try {
    ({ rows } = await db.query<{ name: string; type: string; is_unique: boolean }>(
      `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type,
              EXISTS (SELECT 1 FROM pg_index i
                       WHERE i.indrelid = a.attrelid AND i.indisunique AND i.indpred IS NULL
                         AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum) AS is_unique
         FROM pg_attribute a
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
      [table.sql],
    ));
  } catch (error) {
    throw databaseError(error, `cannot read the columns of ${table.sql}`);
  }
  if (rows.length === 0) throw new SifreDBError(ERROR_CODES.input, `table ${table.sql} does not exist (or has no columns)`);
  const columns = new Map<string, ColumnInfo>();
  const unique = new Set<string>();
  for (const row of rows) {
    columns.set(row.name, { name: row.name, type: row.type, kind: kindOf(row.type), intBits: INT_BITS[row.type] ?? 0 });
    if (row.is_unique) unique.add(row.name);
  }
  return { table, columns, uniqueColumns: unique };
}

/** The column `name` of `info`, or `ERR_SIFREDB_INPUT` naming what it was wanted for. */
export function requireColumn(info: TableInfo, name: string, role: string): ColumnInfo {
  const column = info.columns.get(name);
  if (column === undefined) {
    throw new SifreDBError(ERROR_CODES.input, `${role} column ${quoteIdent(name)} does not exist in ${info.table.sql}`);
  }
  return column;
}
