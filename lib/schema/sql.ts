/**
 * The schema in the database: the DDL a migration needs (`sifredb schema sql`) and the recorded
 * settings table, `sifredb_schema`, that every writer compares its configuration with.
 */
import { AUDIT_DDL } from '../audit/sql.js';
import { constraintFor } from '../db/constraints.js';
import { assertDatabase, databaseError, type DbSession } from '../db/database.js';
import { describeTable, objectName, parseTableName, quoteIdent, type TableInfo } from '../db/schema.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { TableSchema } from './definition.js';
import { canonicalJson, diffSettings, schemaRecords, type SettingsRecord, settingsFingerprint, type StoredColumnSettings } from './settings.js';

/**
 * The table of recorded settings, schema-qualified so that every writer finds the same one whatever
 * its `search_path`.
 */
export const SETTINGS_TABLE = 'public.sifredb_schema';

const SETTINGS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS ${SETTINGS_TABLE} (
  schema_name text NOT NULL,
  table_name text NOT NULL,
  column_name text NOT NULL,
  settings jsonb NOT NULL,
  fingerprint text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema_name, table_name, column_name)
);`;

/** The schema and name of the relation `table` resolves to (by the session's `search_path` when unqualified). */
const RESOLVE_TABLE = `SELECT n.nspname AS schema_name, c.relname AS table_name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`;

/** Options of {@link schemaSql}. */
export interface SchemaSqlOptions {
  /** Add the CHECK constraints `NOT VALID` (while plaintext is still in the columns; `VALIDATE` later). */
  notValid?: boolean;
  /** Add the audit tables (`sifredb_audit`, its chain heads and public keys; docs/AUDIT.md). */
  audit?: boolean;
}

/** SQL string literal. */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** SQL type of a stored column. */
function sqlType(storage: 'text' | 'bytea' | 'integer', bits = 0): string {
  if (storage === 'integer') return bits <= 31 ? 'integer' : 'bigint';
  return storage;
}

/**
 * The statements that bring a database to `table`'s schema, each idempotent: the settings table; the
 * encrypted and lookup columns (`ADD COLUMN IF NOT EXISTS`, nullable); an index on every column
 * searched by equality; the CHECK constraints that refuse anything but ciphertexts; and the settings
 * records (`ON CONFLICT DO NOTHING`: recorded settings are never overwritten, see {@link applySchema}).
 */
export function schemaSql(table: TableSchema, options: SchemaSqlOptions = {}): string[] {
  const t = parseTableName(table.table);
  const statements = [SETTINGS_TABLE_DDL];
  if (options.audit === true) statements.push(...AUDIT_DDL);
  for (const column of table.columns.values()) {
    statements.push(`ALTER TABLE ${t.sql} ADD COLUMN IF NOT EXISTS ${quoteIdent(column.name)} ${sqlType(column.storage)};`);
    for (const b of column.blindIndexes) {
      statements.push(`ALTER TABLE ${t.sql} ADD COLUMN IF NOT EXISTS ${quoteIdent(b.column)} ${sqlType(b.storage, b.bits)};`);
    }
    for (const d of column.deterministicLookups) {
      statements.push(`ALTER TABLE ${t.sql} ADD COLUMN IF NOT EXISTS ${quoteIdent(d.column)} ${sqlType(d.storage)};`);
    }
  }
  for (const column of table.searchedColumns) {
    statements.push(`CREATE INDEX IF NOT EXISTS ${quoteIdent(objectName([t.name, column], 'sifredb_idx'))} ON ${t.sql} (${quoteIdent(column)});`);
  }
  // Added only when missing: an existing constraint is neither re-checked against the whole table
  // (under an exclusive lock) nor turned back into NOT VALID after a VALIDATE.
  for (const { column, storage } of table.ciphertextColumns) {
    const c = constraintFor(table.table, column, storage, options.notValid === true);
    statements.push(
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(${literal(t.sql)}) AND conname = ${literal(c.name)}) THEN ` +
        `ALTER TABLE ${t.sql} ADD CONSTRAINT ${quoteIdent(c.name)} CHECK (${c.check})${options.notValid === true ? ' NOT VALID' : ''}; END IF; END $$;`,
    );
  }
  for (const record of schemaRecords(table)) {
    statements.push(
      `INSERT INTO ${SETTINGS_TABLE} (schema_name, table_name, column_name, settings, fingerprint) ` +
        `SELECT n.nspname, c.relname, ${literal(record.column)}, ${literal(canonicalJson(record.settings))}::jsonb, ${literal(settingsFingerprint(record.settings))} ` +
        `FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(${literal(t.sql)}) ON CONFLICT DO NOTHING;`,
    );
  }
  return statements;
}

/**
 * The recorded settings of `table`'s stored columns, by column name; `undefined` when the database
 * has no settings table.
 */
export async function readRecordedSettings(
  db: DbSession,
  table: string,
  /** When given, records of columns the table no longer has (a dropped lookup column) are left out. */
  info?: TableInfo,
): Promise<Map<string, StoredColumnSettings> | undefined> {
  assertDatabase(db, 'reading the recorded settings');
  const t = parseTableName(table);
  try {
    const { rows: exists } = await db.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [SETTINGS_TABLE]);
    if (exists[0]?.present !== true) return undefined;
    const { rows: resolved } = await db.query<{ schema_name: string; table_name: string }>(RESOLVE_TABLE, [t.sql]);
    if (resolved[0] === undefined) return new Map();
    const { rows } = await db.query<{ column_name: string; settings: unknown }>(
      `SELECT column_name, settings FROM ${SETTINGS_TABLE} WHERE schema_name = $1 AND table_name = $2`,
      [resolved[0].schema_name, resolved[0].table_name],
    );
    return new Map(
      rows
        .filter((r) => info === undefined || info.columns.has(r.column_name))
        .map((r) => [r.column_name, (typeof r.settings === 'string' ? JSON.parse(r.settings) : r.settings) as StoredColumnSettings]),
    );
  } catch (error) {
    throw databaseError(error, `cannot read the recorded settings of ${t.sql}`);
  }
}

/** One disagreement between configured and recorded settings. */
export interface SettingsMismatch {
  readonly column: string;
  readonly message: string;
}

/**
 * Compares `configured` records with the recorded ones: a recorded column configured differently,
 * and (with `lookupsOf`) a recorded lookup of those encrypted columns that the configuration does
 * not write — its terms would go stale. Columns not recorded yet are not mismatches.
 */
export function compareSettings(
  recorded: ReadonlyMap<string, StoredColumnSettings>,
  configured: readonly SettingsRecord[],
  lookupsOf: readonly string[] = [],
): SettingsMismatch[] {
  const mismatches: SettingsMismatch[] = [];
  const names = new Set(configured.map((r) => r.column));
  for (const record of configured) {
    const before = recorded.get(record.column);
    if (before === undefined) continue;
    const differences = diffSettings(before, record.settings);
    if (differences.length > 0) mismatches.push({ column: record.column, message: `${record.column}: ${differences.join('; ')}` });
  }
  for (const [column, settings] of recorded) {
    if (settings.kind !== 'value' && lookupsOf.includes(settings.of) && !names.has(column)) {
      mismatches.push({
        column,
        message: `${column}: recorded as a ${settings.kind === 'blind-index' ? `blind index (${settings.name})` : 'deterministic lookup'} of ${settings.of}, but not configured: its terms would go stale`,
      });
    }
  }
  return mismatches;
}

/**
 * Runs {@link schemaSql} in one transaction, after checking that no recorded setting differs from the
 * schema (changing the settings of stored data needs a migration: docs/MIGRATION.md).
 * @throws `ERR_SIFREDB_SCHEMA` listing every difference (nothing is changed);
 *   `ERR_SIFREDB_DATABASE` when a statement fails (rolled back).
 */
export async function applySchema(
  db: { withSession<T>(fn: (s: DbSession) => Promise<T>): Promise<T> },
  table: TableSchema,
  options: SchemaSqlOptions = {},
): Promise<string[]> {
  assertDatabase(db, 'applySchema', true);
  return db.withSession(async (session) => {
    const statements = schemaSql(table, options);
    await session.query('BEGIN');
    try {
      // READ COMMITTED, so that the records read after the lock include those of an apply that held it.
      await session.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      // Two deployments applying at once would race on CREATE TABLE IF NOT EXISTS (a unique
      // violation in the catalog) and on the records: one at a time.
      await session.query(`SELECT pg_advisory_xact_lock(hashtext('${SETTINGS_TABLE}'))`);
      const info = await describeTable(session, parseTableName(table.table));
      await session.query(SETTINGS_TABLE_DDL);
      // Records of columns the table no longer has (a dropped lookup column) describe no data;
      // removed before the comparison, so that a column dropped and declared anew starts afresh.
      await session.query(
        `DELETE FROM ${SETTINGS_TABLE} r USING pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ` +
          `WHERE c.oid = to_regclass($1) AND r.schema_name = n.nspname AND r.table_name = c.relname AND NOT EXISTS ` +
          `(SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = r.column_name AND a.attnum > 0 AND NOT a.attisdropped)`,
        [parseTableName(table.table).sql],
      );
      const recorded = await readRecordedSettings(session, table.table, info);
      const mismatches = recorded === undefined ? [] : compareSettings(recorded, schemaRecords(table));
      if (mismatches.length > 0) {
        throw new SifreDBError(
          ERROR_CODES.schema,
          `the schema of ${table.table} differs from the settings its data was written with (nothing applied): ${mismatches.map((m) => m.message).join(' | ')}. ` +
            'To change a lookup, add a new lookup column (docs/MIGRATION.md)',
        );
      }
      for (const statement of statements) await session.query(statement);
      await session.query('COMMIT');
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      if (error instanceof SifreDBError) throw error;
      const state = (error as { code?: unknown })?.code;
      throw state === '23514'
        ? new SifreDBError(ERROR_CODES.database, `some rows of ${table.table} are not SifreDB ciphertexts yet; apply with notValid (--not-valid), then VALIDATE after encrypt-column`)
        : databaseError(error, `cannot apply the schema of ${table.table}`);
    }
    return statements;
  });
}

/**
 * Replaces the record of `column` of `table` (after a job changed what its data depends on, e.g. a
 * row-binding migration that finished). Does nothing when there is no such record.
 */
export async function updateRecordedSettings(db: DbSession, table: string, column: string, settings: StoredColumnSettings): Promise<void> {
  const t = parseTableName(table);
  try {
    await db.query(
      `UPDATE ${SETTINGS_TABLE} r SET settings = $2::jsonb, fingerprint = $3, recorded_at = now() FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ` +
        `WHERE c.oid = to_regclass($1) AND r.schema_name = n.nspname AND r.table_name = c.relname AND r.column_name = $4`,
      [t.sql, canonicalJson(settings), settingsFingerprint(settings), column],
    );
  } catch (error) {
    throw databaseError(error, `cannot update the recorded settings of ${t.sql}.${column}`);
  }
}
