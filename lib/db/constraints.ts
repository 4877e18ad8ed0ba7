/**
 * PostgreSQL CHECK constraints that make the database refuse anything but a SifreDB ciphertext in an
 * encrypted column, so that no code path can store plaintext by mistake (fail closed at the database).
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { databaseError, type DbSession } from './database.js';
import { describeTable, objectName, parseTableName, quoteIdent, requireColumn } from './schema.js';

/**
 * What a v1 text-form value must look like: `sdb1:`, then base64url whose first characters encode
 * magic `0x53` and format `0x01` (`UwE`), then algorithm 1–3 (`B`, `C`, `D`); with at least
 * {@link MIN_TEXT_CIPHERTEXT_LENGTH} characters in all (the 24 bytes of the shortest envelope, AES-SIV
 * of an empty value). The length is a separate test: a counted repetition (`{28,}`) in the pattern
 * made PostgreSQL's regex engine several times slower per row.
 */
export const TEXT_CIPHERTEXT_PATTERN = '^sdb1:UwE[BCD][A-Za-z0-9_-]+$';

/** The shortest text form: `sdb1:` and the 32 base64url characters of a 24-byte envelope. */
export const MIN_TEXT_CIPHERTEXT_LENGTH = 37;

/** One constraint, as SQL. */
export interface ColumnConstraint {
  readonly table: string;
  readonly column: string;
  /** `text` or `bytea`, from the column's type. */
  readonly form: 'text' | 'bytea';
  readonly name: string;
  /** The `CHECK (…)` expression. */
  readonly check: string;
  /** An idempotent `ALTER TABLE` that (re)creates the constraint. */
  readonly sql: string;
}

/** Options of {@link columnConstraints}. */
export interface ColumnConstraintsOptions {
  /** Table, optionally `schema.table`. */
  table: string;
  /** Encrypted columns (TEXT/VARCHAR or BYTEA). */
  columns: readonly string[];
  /**
   * Add the constraints `NOT VALID`: new writes are checked at once, existing rows only by a later
   * `ALTER TABLE … VALIDATE CONSTRAINT` (after `encrypt-column`). Default false: rows are checked now.
   */
  notValid?: boolean;
}

/** The CHECK expression for a column of `form`. Exported for schema tools and tests. */
export function ciphertextCheck(column: string, form: 'text' | 'bytea'): string {
  const c = quoteIdent(column);
  if (form === 'text') return `${c} IS NULL OR (${c} ~ '${TEXT_CIPHERTEXT_PATTERN}' AND length(${c}) >= ${MIN_TEXT_CIPHERTEXT_LENGTH})`;
  // Magic, format version, a key version other than 0, a known algorithm and at least its header,
  // nonce, tag and type byte (docs/FORMAT.md). CASE fixes the evaluation order (no get_byte past the
  // end) and turns an unknown algorithm into false rather than NULL, which a CHECK would accept.
  return (
    `${c} IS NULL OR CASE WHEN octet_length(${c}) < 24 THEN false ELSE` +
    ` get_byte(${c}, 0) = 83 AND get_byte(${c}, 1) = 1 AND substring(${c} from 4 for 4) <> '\\x00000000'::bytea AND` +
    ` CASE get_byte(${c}, 2) WHEN 1 THEN octet_length(${c}) >= 36 WHEN 2 THEN octet_length(${c}) >= 48 WHEN 3 THEN true ELSE false END END`
  );
}

/**
 * The constraint for one column whose form is known (no database needed). Its name is
 * `<table>_<column>_sifredb_check`, or when that is longer than PostgreSQL's 63 bytes a prefix of it
 * with a hash of the table and column (see `objectName`).
 */
export function constraintFor(table: string, column: string, form: 'text' | 'bytea', notValid = false): ColumnConstraint {
  const t = parseTableName(table);
  const name = objectName([t.name, column], 'sifredb_check');
  const check = ciphertextCheck(column, form);
  const quoted = quoteIdent(name);
  const sql =
    `ALTER TABLE ${t.sql} DROP CONSTRAINT IF EXISTS ${quoted}, ` +
    `ADD CONSTRAINT ${quoted} CHECK (${check})${notValid ? ' NOT VALID' : ''};`;
  return { table: t.sql, column, form, name, check, sql };
}

/**
 * Builds the constraints for `columns`, reading their types from the database.
 * @throws `ERR_SIFREDB_INPUT` for a missing table or column, or one that is neither text nor bytea.
 */
export async function columnConstraints(db: DbSession, options: ColumnConstraintsOptions): Promise<ColumnConstraint[]> {
  const table = parseTableName(options.table);
  if (!Array.isArray(options.columns) || options.columns.length === 0) {
    throw new SifreDBError(ERROR_CODES.input, 'name at least one column');
  }
  const info = await describeTable(db, table);
  return options.columns.map((name) => {
    const column = requireColumn(info, name, 'encrypted');
    if (column.kind !== 'text' && column.kind !== 'bytea') {
      throw new SifreDBError(ERROR_CODES.input, `column ${quoteIdent(name)} is ${column.type}; encrypted columns are TEXT/VARCHAR or BYTEA`);
    }
    return constraintFor(options.table, name, column.kind, options.notValid === true);
  });
}

/**
 * Applies {@link columnConstraints} in one transaction.
 * @throws `ERR_SIFREDB_DATABASE` when a row already violates a constraint (encrypt the column first,
 *   or use `notValid`); nothing is changed then.
 */
export async function applyColumnConstraints(
  db: { withSession<T>(fn: (s: DbSession) => Promise<T>): Promise<T> },
  options: ColumnConstraintsOptions,
): Promise<ColumnConstraint[]> {
  return db.withSession(async (session) => {
    const constraints = await columnConstraints(session, options);
    await session.query('BEGIN');
    try {
      for (const constraint of constraints) await session.query(constraint.sql);
      await session.query('COMMIT');
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      const state = (error as { code?: unknown })?.code;
      throw state === '23514'
        ? new SifreDBError(
            ERROR_CODES.database,
            `some rows of ${constraints[0]!.table} are not SifreDB ciphertexts; run encrypt-column first, or add the constraints NOT VALID`,
          )
        : databaseError(error, 'cannot add the constraints');
    }
    return constraints;
  });
}
