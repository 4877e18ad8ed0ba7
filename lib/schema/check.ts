/**
 * `sifredb schema check`: does the database match the schema? Columns and their types, constraints,
 * the recorded settings, and — with keys — a sample of rows: they decrypt to the declared types and
 * their stored lookup terms are what the schema computes.
 */
import type { BlindIndexValue } from '../blind-index/blind-index.js';
import { EncryptionContext } from '../context.js';
import { columnConstraints } from '../db/constraints.js';
import { assertDatabase, databaseError, type DbSession } from '../db/database.js';
import { type ColumnInfo, describeTable, parseTableName, quoteIdent, type TableInfo } from '../db/schema.js';
import { asSifreDBError, SifreDBError } from '../errors.js';
import { parseHeader } from '../format/envelope.js';
import { envelopeBytes } from '../format/inspect.js';
import { sameValue } from '../format/value-codec.js';
import type { Keyring } from '../keys/keyring.js';
import { type ResolvedBlindIndex, type ResolvedColumn, TableSchema } from './definition.js';
import { EncryptedTable, openBlindIndex } from './encrypted-table.js';
import { compareSettings, readRecordedSettings, SETTINGS_TABLE } from './sql.js';
import { schemaRecords } from './settings.js';
import { describeIndex, diagnoseTerms, sameTerm, type TermSample } from './term-check.js';

/** What a finding is about. */
export type FindingKind =
  | 'missing-table'
  | 'missing-column'
  | 'column-type'
  | 'missing-constraint'
  | 'constraint-not-valid'
  | 'missing-index'
  | 'unrecorded'
  | 'settings'
  | 'undecryptable'
  | 'lookup-mismatch';

/** One way the database differs from the schema. */
export interface SchemaFinding {
  readonly kind: FindingKind;
  /** The column concerned (`null` for the table). */
  readonly column: string | null;
  /** One line for humans; never a value or a key. */
  readonly message: string;
}

/** Options of {@link checkSchema}. */
export interface CheckSchemaOptions {
  /** The keys: with them a sample of rows is decrypted and its lookup terms recomputed. */
  keyring?: Keyring;
  /** Rows sampled (the first by id; default 200). */
  sampleSize?: number;
}

/**
 * Compares the database with `table`'s schema. An empty result means they agree.
 * @throws `ERR_SIFREDB_DATABASE` when the database cannot be read.
 */
export async function checkSchema(db: DbSession, table: TableSchema, options: CheckSchemaOptions = {}): Promise<SchemaFinding[]> {
  assertDatabase(db, 'checkSchema');
  const findings: SchemaFinding[] = [];
  const add = (kind: FindingKind, column: string | null, message: string) => findings.push({ kind, column, message });
  const t = parseTableName(table.table);
  let info: TableInfo;
  try {
    info = await describeTable(db, t);
  } catch (error) {
    if (asSifreDBError(error).code === 'ERR_SIFREDB_DATABASE') throw error;
    add('missing-table', null, `table ${t.sql} does not exist`);
    return findings;
  }

  const present = checkColumns(table, info, add);
  await checkConstraints(db, table, info, present, add);
  await checkIndexes(db, table, info, add);
  await checkRecords(db, table, info, add);
  if (options.keyring !== undefined && present.size > 0) {
    await checkSample(db, table, info, present, options.keyring, options.sampleSize ?? 200, add);
  }
  return findings;
}

type Add = (kind: FindingKind, column: string | null, message: string) => void;

/** Columns and their SQL types; returns the encrypted columns whose own column and lookups are all usable. */
function checkColumns(table: TableSchema, info: TableInfo, add: Add): Set<string> {
  const usable = new Set<string>();
  const need = (name: string, role: string): ColumnInfo | undefined => {
    const column = info.columns.get(name);
    if (column === undefined) add('missing-column', name, `${role} column ${name} does not exist in ${info.table.sql}`);
    return column;
  };
  const id = need(table.id, 'id');
  if (id !== undefined && !info.uniqueColumns.has(id.name)) add('column-type', id.name, `id column ${id.name} has no unique index`);
  if (table.tenant !== undefined) need(table.tenant, 'tenant');
  const ciphertext = (column: ColumnInfo, storage: 'text' | 'bytea', role: string): boolean => {
    if (column.kind === storage) return true;
    add('column-type', column.name, `${role} column ${column.name} is ${column.type}; the schema stores ${storage === 'text' ? 'the sdb1: text form (TEXT/VARCHAR)' : 'the binary envelope (BYTEA)'}`);
    return false;
  };
  for (const spec of table.columns.values()) {
    let ok = true;
    const own = need(spec.name, 'encrypted');
    ok = own !== undefined && ciphertext(own, spec.storage, 'encrypted') && ok;
    for (const b of spec.blindIndexes) {
      const column = need(b.column, `blind-index (${b.name})`);
      if (column === undefined) ok = false;
      else if (!termColumnFits(column, b)) {
        add('column-type', b.column, `blind-index column ${b.column} is ${column.type}; ${b.storage} terms of ${b.bits} bits need ${expectedTermType(b)}`);
        ok = false;
      }
      for (const f of b.fields) if (!table.columns.has(f.column)) ok = need(f.column, `field (${b.name})`) !== undefined && ok;
    }
    for (const d of spec.deterministicLookups) {
      const column = need(d.column, 'deterministic lookup');
      ok = column !== undefined && ciphertext(column, d.storage, 'deterministic lookup') && ok;
    }
    if (ok) usable.add(spec.name);
  }
  return usable;
}

function termColumnFits(column: ColumnInfo, b: ResolvedBlindIndex): boolean {
  if (b.storage === 'integer') return column.kind === 'integer' && column.intBits >= b.bits;
  return column.kind === b.storage;
}

function expectedTermType(b: ResolvedBlindIndex): string {
  if (b.storage === 'integer') return b.bits <= 31 ? 'INTEGER or BIGINT' : 'BIGINT';
  return b.storage === 'bytea' ? 'BYTEA' : 'TEXT';
}

/** The CHECK constraint of every ciphertext column, present and validated. */
async function checkConstraints(db: DbSession, table: TableSchema, info: TableInfo, present: Set<string>, add: Add): Promise<void> {
  const columns = table.ciphertextColumns.filter((c) => present.has(c.of)).map((c) => c.column);
  if (columns.length === 0) return;
  const expected = await columnConstraints(db, { table: table.table, columns });
  let rows: { name: string; validated: boolean; columns: string[] }[];
  try {
    ({ rows } = await db.query<{ name: string; validated: boolean; columns: string[] }>(
      `SELECT c.conname AS name, c.convalidated AS validated,
              ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)) AS columns
         FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'c'`,
      [info.table.sql],
    ));
  } catch (error) {
    throw databaseError(error, `cannot read the constraints of ${info.table.sql}`);
  }
  // A constraint counts for a column only if it is on that column alone: a name is no proof.
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const c of expected) {
    const found = byName.get(c.name);
    const validated = found === undefined || found.columns.length !== 1 || found.columns[0] !== c.column ? undefined : found.validated;
    if (validated === undefined) add('missing-constraint', c.column, `column ${c.column} has no CHECK constraint ${c.name} (plaintext could be written to it; see sifredb schema sql)`);
    else if (!validated) add('constraint-not-valid', c.column, `constraint ${c.name} is NOT VALID: existing rows are unchecked until ALTER TABLE … VALIDATE CONSTRAINT`);
  }
}

/** An index on every column searched by equality (a lookup without one reads the whole table). */
async function checkIndexes(db: DbSession, table: TableSchema, info: TableInfo, add: Add): Promise<void> {
  let rows: { column: string }[];
  try {
    ({ rows } = await db.query<{ column: string }>(
      `SELECT a.attname::text AS column FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = to_regclass($1)`,
      [info.table.sql],
    ));
  } catch (error) {
    throw databaseError(error, `cannot read the indexes of ${info.table.sql}`);
  }
  const indexed = new Set(rows.map((r) => r.column));
  for (const name of table.searchedColumns) {
    if (info.columns.has(name) && !indexed.has(name)) add('missing-index', name, `lookup column ${name} has no index: every lookup reads the whole table (see sifredb schema sql)`);
  }
}

/** The recorded settings: present, and equal to the schema's. */
async function checkRecords(db: DbSession, table: TableSchema, info: TableInfo, add: Add): Promise<void> {
  const recorded = await readRecordedSettings(db, table.table, info);
  const records = schemaRecords(table);
  if (recorded === undefined) {
    add('unrecorded', null, `the database has no ${SETTINGS_TABLE} table: the settings the data was written with are not recorded (apply sifredb schema sql)`);
    return;
  }
  for (const record of records) {
    if (!recorded.has(record.column) && info.columns.has(record.column)) add('unrecorded', record.column, `the settings of ${record.column} are not recorded in ${SETTINGS_TABLE} (apply sifredb schema sql)`);
  }
  for (const mismatch of compareSettings(recorded, records, [...table.columns.keys()])) add('settings', mismatch.column, mismatch.message);
}

/** A sample of rows: each encrypted value decrypts to its type, and each stored lookup is what the schema computes. */
async function checkSample(
  db: DbSession,
  table: TableSchema,
  info: TableInfo,
  present: Set<string>,
  keyring: Keyring,
  sampleSize: number,
  add: Add,
): Promise<void> {
  const encrypted = await EncryptedTable.open(keyring, table);
  const columns = [...table.columns.values()].filter((c) => present.has(c.name));
  const selected = new Set<string>([table.id, ...(table.tenant === undefined ? [] : [table.tenant])]);
  for (const c of columns) {
    selected.add(c.name);
    for (const b of c.blindIndexes) {
      selected.add(b.column);
      for (const f of b.fields) selected.add(f.column);
    }
    for (const d of c.deterministicLookups) selected.add(d.column);
  }
  const anyValue = columns.map((c) => `${quoteIdent(c.name)} IS NOT NULL`).join(' OR ');
  let rows: Record<string, unknown>[];
  try {
    ({ rows } = await db.query<Record<string, unknown>>(
      `SELECT ${[...selected].map(quoteIdent).join(', ')} FROM ${info.table.sql} WHERE ${anyValue} ORDER BY ${quoteIdent(table.id)} LIMIT $1`,
      [sampleSize],
    ));
  } catch (error) {
    throw databaseError(error, `cannot read a sample of ${info.table.sql}`);
  }
  const plains = rows.map((row) => decryptEach(encrypted, table, row, columns));
  for (const column of columns) {
    const failures = plains.map((p, i) => ({ error: p.errors.get(column.name), id: rows[i]![table.id] })).filter((f) => f.error !== undefined);
    const sampled = rows.filter((row) => row[column.name] !== null && row[column.name] !== undefined).length;
    if (failures.length > 0) {
      const first = failures[0]!;
      add(
        'undecryptable',
        column.name,
        `${column.name}: ${failures.length} of ${sampled} sampled values do not read under the schema (row ${String(first.id)}: ${first.error!.code}: ${first.error!.message})` +
          (first.error!.code === 'ERR_SIFREDB_AUTH' ? '; the context (tenant column, context table/column/version), row binding or key store may differ' : ''),
      );
    }
    for (const b of column.blindIndexes) await checkBlindIndex(keyring, table, column, b, rows, plains, add);
    for (const d of column.deterministicLookups) {
      const lookup = await EncryptedTable.open(keyring, lookupTable(table, column, d.column, d.contextColumn, d.storage));
      let wrong = 0;
      let compared = 0;
      rows.forEach((row, i) => {
        const value = plains[i]!.values.get(column.name);
        if (value === undefined || value === null || row[d.column] === null || row[d.column] === undefined) return;
        compared += 1;
        try {
          const copy = lookup.decryptRow({ ...tenantOf(table, row), [d.column]: row[d.column] })[d.column];
          if (!sameValue(copy, value)) wrong += 1;
        } catch {
          wrong += 1;
        }
      });
      if (wrong > 0) {
        add('lookup-mismatch', d.column, `${d.column}: ${wrong} of ${compared} sampled deterministic lookups are not ${column.name}'s value under context column ${d.contextColumn} (another context column, tenant column or key store?)`);
      }
    }
  }
}

interface RowPlain {
  readonly values: Map<string, unknown>;
  readonly errors: Map<string, SifreDBError>;
}

function decryptEach(encrypted: EncryptedTable, table: TableSchema, row: Record<string, unknown>, columns: readonly ResolvedColumn[]): RowPlain {
  const values = new Map<string, unknown>();
  const errors = new Map<string, SifreDBError>();
  for (const column of columns) {
    const stored = row[column.name];
    if (stored === null || stored === undefined) continue;
    try {
      values.set(column.name, encrypted.decryptRow({ ...tenantOf(table, row), [table.id]: row[table.id], [column.name]: stored })[column.name]);
    } catch (error) {
      const e = asSifreDBError(error);
      errors.set(column.name, new SifreDBError(e.code, e.message.replace(/^rows\[0\]\.[^:]*: /, '')));
    }
  }
  return { values, errors };
}

function tenantOf(table: TableSchema, row: Record<string, unknown>): Record<string, unknown> {
  return table.tenant === undefined ? {} : { [table.tenant]: row[table.tenant] };
}

/** A one-column table reading a deterministic lookup copy as a deterministic column. */
function lookupTable(table: TableSchema, column: ResolvedColumn, name: string, contextColumn: string, storage: 'text' | 'bytea'): TableSchema {
  const init = {
    table: table.table,
    id: table.id,
    ...(table.tenant === undefined ? {} : { tenant: table.tenant }),
    columns: { [name]: { type: column.type, mode: 'deterministic' as const, storage, context: { ...column.context, column: contextColumn } } },
  };
  return new TableSchema(init);
}


async function checkBlindIndex(
  keyring: Keyring,
  table: TableSchema,
  column: ResolvedColumn,
  spec: ResolvedBlindIndex,
  rows: readonly Record<string, unknown>[],
  plains: readonly RowPlain[],
  add: Add,
): Promise<void> {
  const compound = spec.fields.length > 0;
  const index = await openBlindIndex(keyring, spec);
  const base = new EncryptionContext(column.context);
  const mismatches: TermSample[] = [];
  let compared = 0;
  rows.forEach((row, i) => {
    const stored = row[spec.column];
    const ciphertext = row[column.name];
    if (stored === null || stored === undefined || ciphertext === null || ciphertext === undefined) return;
    const value = compound ? fieldValues(spec, row, plains[i]!) : plains[i]!.values.get(column.name);
    if (value === undefined) return;
    let version: number;
    try {
      version = parseHeader(envelopeBytes(ciphertext)).keyVersion;
    } catch {
      return;
    }
    const tenant = table.tenant === undefined ? null : row[table.tenant];
    const ctx = tenant === null || tenant === undefined ? base : base.withTenant(String(tenant));
    compared += 1;
    try {
      if (sameTerm(index.computeAt(value as BlindIndexValue, ctx, version), stored, spec.storage)) return;
    } catch {
      // A value the index cannot hash counts as a mismatch.
    }
    mismatches.push({ value: value as BlindIndexValue, ctx, version, stored });
  });
  if (mismatches.length === 0) return;
  const why = compound ? 'check the fields and their transforms' : await diagnoseTerms(keyring, spec, mismatches.slice(0, 4), spec.storage);
  add(
    'lookup-mismatch',
    spec.column,
    `${spec.column}: ${mismatches.length} of ${compared} sampled terms differ from blind index ${spec.name} (${describeIndex(spec.bits, spec.transforms)}): ${why}`,
  );
}

function fieldValues(spec: ResolvedBlindIndex, row: Record<string, unknown>, plain: RowPlain): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const f of spec.fields) {
    const value = plain.values.has(f.column) ? plain.values.get(f.column) : row[f.column];
    if (value === null || value === undefined) return undefined;
    out[f.column] = value;
  }
  return out;
}
