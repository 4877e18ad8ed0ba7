/**
 * The table schema: one description of a table's encrypted columns, declared in TypeScript with
 * {@link defineTable} or loaded from a JSON file with {@link loadSchema}, that the application, the
 * CLI jobs and the database (`sifredb schema sql`) all read. docs/SCHEMA.md documents the fields.
 */
import { readFile } from 'node:fs/promises';
import { Buffer } from 'node:buffer';
import type { BlindIndexTransform } from '../blind-index/blind-index.js';
import { EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { ValueOf, ValueType } from '../format/value-codec.js';
import { parseTableName } from '../db/schema.js';
import type { RandomizedAlgorithm } from '../vault/vault.js';

/** The JS type a column holds (`string`, `date`, …); `decryptRows` gives it back as {@link PlainValueOf} that type. */
export type ColumnValueType = ValueType;

/** The JS type of a {@link ColumnValueType}: `Date` for `date`, `JsonValue` for `json`, `Buffer` for `bytes`. */
export type PlainValueOf<T extends ValueType> = ValueOf<T>;

/** How a ciphertext is stored: the `sdb1:` text form in TEXT/VARCHAR, or the binary envelope in BYTEA. */
export type CiphertextStorage = 'text' | 'bytea';

/** How a blind-index term is stored: an integer (INTEGER ≤ 31 bits, BIGINT ≤ 63), BYTEA, or hex TEXT. */
export type TermStorage = 'integer' | 'bytea' | 'text';

/** One field of a compound blind index: a column of the same row (encrypted or not). */
export interface BlindIndexFieldSpec {
  readonly column: string;
  readonly transforms?: readonly BlindIndexTransform[];
}

/** A blind index of an encrypted column, stored in `column` of the same row. */
export interface BlindIndexSpec {
  /** Index name: part of its key derivation (two indexes of a column with other names are unrelated). */
  readonly name: string;
  /** The column holding the term. */
  readonly column: string;
  /** Term length in bits, 8..256 (default 16); size it with `planBlindIndex`. */
  readonly bits?: number;
  /** Transforms of a single-field index (applied in order before hashing). */
  readonly transforms?: readonly BlindIndexTransform[];
  /** A compound index: its fields in order, each a column of the row; replaces `transforms`. */
  readonly fields?: readonly BlindIndexFieldSpec[];
  /** Default: `integer` up to 63 bits, `bytea` above. */
  readonly storage?: TermStorage;
}

/** A deterministic (AES-SIV) copy of the value in `column`, for exact lookups of a randomized column. */
export interface DeterministicLookupSpec {
  readonly column: string;
  /** Column name in the copy's encryption context; default the encrypted column's context column. */
  readonly contextColumn?: string;
  /** Default: the encrypted column's storage. */
  readonly storage?: CiphertextStorage;
}

/** Overrides of the encryption context of a column (defaults: the table without its schema, the column, 1). */
export interface ContextSpec {
  readonly table?: string;
  readonly column?: string;
  readonly version?: number;
}

/** One encrypted column. */
export interface EncryptedColumnSpec {
  /** The JS type of its values. */
  readonly type: ColumnValueType;
  /** `randomized` (default: a Vault, paired with blind indexes for lookups) or `deterministic` (AES-SIV). */
  readonly mode?: 'randomized' | 'deterministic';
  /** Randomized algorithm of new values (default `chacha20-poly1305`). */
  readonly algorithm?: RandomizedAlgorithm;
  /** Default `text`. */
  readonly storage?: CiphertextStorage;
  /** Bind each ciphertext to its row's id (SECURITY.md, "Row binding"). Default false. */
  readonly rowBinding?: boolean;
  readonly context?: ContextSpec;
  readonly blindIndexes?: readonly BlindIndexSpec[];
  readonly deterministicLookups?: readonly DeterministicLookupSpec[];
}

/** What {@link defineTable} takes, and one entry of a schema file's `tables`. */
export interface TableSchemaInit {
  /** The table, optionally schema-qualified (`app.users`). Names are taken literally. */
  readonly table: string;
  /** The unique key (default `id`): row binding's row id, and the jobs' keyset. */
  readonly id?: string;
  /** A column holding each row's tenant id, which goes into the row's encryption context. */
  readonly tenant?: string;
  readonly columns: Readonly<Record<string, EncryptedColumnSpec>>;
}

/** A blind index with every default filled in. */
export interface ResolvedBlindIndex {
  readonly name: string;
  readonly column: string;
  readonly bits: number;
  /** Empty for a single-field index. */
  readonly fields: readonly { readonly column: string; readonly transforms: readonly BlindIndexTransform[] }[];
  /** Transforms of a single-field index. */
  readonly transforms: readonly BlindIndexTransform[];
  readonly storage: TermStorage;
}

/** A deterministic lookup with every default filled in. */
export interface ResolvedDeterministicLookup {
  readonly column: string;
  readonly contextColumn: string;
  readonly storage: CiphertextStorage;
}

/** An encrypted column with every default filled in. */
export interface ResolvedColumn {
  readonly name: string;
  readonly type: ColumnValueType;
  readonly mode: 'randomized' | 'deterministic';
  /** `aes-256-siv` for a deterministic column. */
  readonly algorithm: RandomizedAlgorithm | 'aes-256-siv';
  readonly storage: CiphertextStorage;
  readonly rowBinding: boolean;
  readonly context: { readonly table: string; readonly column: string; readonly version: number };
  readonly blindIndexes: readonly ResolvedBlindIndex[];
  readonly deterministicLookups: readonly ResolvedDeterministicLookup[];
}

/**
 * A validated table schema. `T` is the declaration, kept for the row types of `EncryptedTable`;
 * `columns` holds every setting with its default filled in.
 */
export class TableSchema<T extends TableSchemaInit = TableSchemaInit> {
  /** The declaration as given (frozen). */
  readonly init: T;
  /** The table as given, e.g. `app.users`. */
  readonly table: string;
  readonly id: string;
  readonly tenant: string | undefined;
  /** Encrypted columns, in declaration order. */
  readonly columns: ReadonlyMap<string, ResolvedColumn>;
  /** Each lookup column (blind index or deterministic lookup) → the encrypted column it belongs to. */
  readonly lookupOwners: ReadonlyMap<string, string>;
  /** Every column holding ciphertexts — each encrypted column and its deterministic lookups — with its storage and owner. */
  readonly ciphertextColumns: readonly { readonly column: string; readonly storage: CiphertextStorage; readonly of: string }[];
  /** Every column searched by equality, hence indexed: unbound deterministic columns and all lookup columns. */
  readonly searchedColumns: readonly string[];

  /** Use {@link defineTable} or {@link loadSchema}. */
  constructor(init: T, where = 'schema') {
    const resolved = resolveTable(init, where);
    this.init = deepFreeze(structuredClone(init));
    this.table = resolved.table;
    this.id = resolved.id;
    this.tenant = resolved.tenant;
    this.columns = resolved.columns;
    const owners = new Map<string, string>();
    const ciphertexts: { column: string; storage: CiphertextStorage; of: string }[] = [];
    const searched: string[] = [];
    for (const c of resolved.columns.values()) {
      ciphertexts.push({ column: c.name, storage: c.storage, of: c.name });
      if (c.mode === 'deterministic' && !c.rowBinding) searched.push(c.name);
      for (const b of c.blindIndexes) {
        owners.set(b.column, c.name);
        searched.push(b.column);
      }
      for (const d of c.deterministicLookups) {
        owners.set(d.column, c.name);
        ciphertexts.push({ column: d.column, storage: d.storage, of: c.name });
        searched.push(d.column);
      }
    }
    this.lookupOwners = owners;
    this.ciphertextColumns = Object.freeze(ciphertexts.map((c) => Object.freeze(c)));
    this.searchedColumns = Object.freeze(searched);
    Object.freeze(this);
  }

  /** The column `name`, or `ERR_SIFREDB_INPUT` naming the table's encrypted columns. */
  column(name: string): ResolvedColumn {
    const column = this.columns.get(name);
    if (column === undefined) {
      throw new SifreDBError(
        ERROR_CODES.input,
        `${JSON.stringify(name)} is not an encrypted column of ${this.table} (encrypted: ${[...this.columns.keys()].join(', ')})`,
      );
    }
    return column;
  }

  /** The declaration as JSON (what a schema file holds for this table). */
  toJSON(): T {
    return this.init;
  }
}

/**
 * Declares a table's encrypted columns. The declaration's literal types flow into the row types:
 * a `type: 'date'` column reads back as `Date`.
 * @throws `ERR_SIFREDB_INPUT` naming the field at fault (e.g. `users.columns.email.blindIndexes[0].bits`).
 * @example
 * ```ts
 * const users = defineTable({
 *   table: 'users', tenant: 'tenant_id',
 *   columns: {
 *     email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }] },
 *     born: { type: 'date' },
 *   },
 * });
 * ```
 */
export function defineTable<const T extends TableSchemaInit>(init: T): TableSchema<T> {
  return new TableSchema(init);
}

/** A schema file: `{ "version": 1, "tables": [ … ] }`. */
export class Schema {
  readonly tables: readonly TableSchema[];

  constructor(tables: readonly TableSchema[]) {
    const names = new Set<string>();
    for (const table of tables) {
      if (names.has(table.table)) throw new SifreDBError(ERROR_CODES.input, `schema: table ${table.table} is declared twice`);
      names.add(table.table);
    }
    this.tables = Object.freeze([...tables]);
    Object.freeze(this);
  }

  /** The table `name` (as declared, e.g. `app.users`; a name without schema also finds `app.users` when unique). */
  table(name?: string): TableSchema {
    if (name === undefined) {
      if (this.tables.length === 1) return this.tables[0]!;
      throw new SifreDBError(ERROR_CODES.input, `the schema declares ${this.tables.length} tables; name one (${this.tableNames()})`);
    }
    const exact = this.tables.find((t) => t.table === name);
    if (exact !== undefined) return exact;
    const bare = this.tables.filter((t) => parseTableName(t.table).name === name);
    if (bare.length === 1) return bare[0]!;
    throw new SifreDBError(ERROR_CODES.input, `the schema has no table ${JSON.stringify(name)} (tables: ${this.tableNames()})`);
  }

  toJSON(): { version: 1; tables: TableSchemaInit[] } {
    return { version: 1, tables: this.tables.map((t) => t.init) };
  }

  private tableNames(): string {
    return this.tables.map((t) => t.table).join(', ') || 'none';
  }
}

/** Validates a parsed schema file (`{ version: 1, tables: [...] }`, or one table object). */
export function parseSchema(json: unknown, where = 'schema'): Schema {
  if (!isObject(json)) throw invalid(where, 'must be an object { "version": 1, "tables": [ … ] }');
  if ('tables' in json) {
    checkKeys(json, ['version', 'tables', '$schema', 'description'], where);
    if (json.version !== 1) throw invalid(`${where}.version`, 'must be 1');
    if (!Array.isArray(json.tables)) throw invalid(`${where}.tables`, 'must be an array');
    return new Schema(json.tables.map((t, i) => new TableSchema(t as TableSchemaInit, `${where}.tables[${i}]`)));
  }
  return new Schema([new TableSchema(json as unknown as TableSchemaInit, where)]);
}

/**
 * Reads and validates a schema file (JSON).
 * @throws `ERR_SIFREDB_INPUT` for a missing or unreadable file, invalid JSON, or an invalid schema
 *   (the message names the field).
 */
export async function loadSchema(path: string): Promise<Schema> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as { code?: unknown })?.code;
    throw new SifreDBError(ERROR_CODES.input, `cannot read schema file ${path}${typeof reason === 'string' ? ` (${reason})` : ''}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SifreDBError(ERROR_CODES.input, `schema file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseSchema(json, path);
}

/** A transform as the CLI and the recorded settings write it: `trim`, `last4`. */
export function transformName(transform: BlindIndexTransform): string {
  return typeof transform === 'string' ? transform : `last${transform.lastN}`;
}

/** The transform a name stands for (see {@link transformName}). */
export function transformFromName(name: string, where: string): BlindIndexTransform {
  const last = /^last([1-9][0-9]*)$/.exec(name);
  if (last) return { lastN: Number(last[1]) };
  if (TRANSFORMS.has(name)) return name as BlindIndexTransform;
  throw invalid(where, `unknown transform ${JSON.stringify(name)} (lowercase, uppercase, trim, digits, nfc, lastN)`);
}

// --- validation -----------------------------------------------------------------------------------

const VALUE_TYPES = new Set<ColumnValueType>(['string', 'number', 'bigint', 'boolean', 'date', 'json', 'bytes']);
const ALGORITHMS = new Set(['chacha20-poly1305', 'xchacha20-poly1305']);
const TRANSFORMS = new Set(['lowercase', 'uppercase', 'trim', 'digits', 'nfc']);
/** Blind indexes hash text: these types have a text form that means the value. */
const INDEXABLE_TYPES = new Set<ColumnValueType>(['string', 'number', 'bigint']);

function invalid(where: string, what: string): SifreDBError {
  return new SifreDBError(ERROR_CODES.input, `${where} ${what}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(value)) {
    // A typo such as `blindIndex` would otherwise silently leave a column without its index.
    if (!allowed.includes(key)) throw invalid(`${where}.${key}`, `is not a known field (known: ${allowed.join(', ')})`);
  }
}

function name(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) throw invalid(where, 'must be a non-empty string');
  return value;
}

function optionalName(value: unknown, where: string): string | undefined {
  return value === undefined ? undefined : name(value, where);
}

function transforms(value: unknown, where: string): BlindIndexTransform[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(where, 'must be an array of transforms');
  return value.map((t, i) => {
    if (typeof t === 'string') return transformFromName(t, `${where}[${i}]`);
    if (isObject(t) && Object.keys(t).length === 1 && Number.isInteger(t.lastN) && (t.lastN as number) >= 1) {
      return { lastN: t.lastN as number };
    }
    throw invalid(`${where}[${i}]`, 'must be "lowercase", "uppercase", "trim", "digits", "nfc", "lastN" or { "lastN": n }');
  });
}

function resolveTable(init: unknown, where: string) {
  if (!isObject(init)) throw invalid(where, 'must be an object { table, id?, tenant?, columns }');
  checkKeys(init, ['table', 'id', 'tenant', 'columns', 'description'], where);
  const table = name(init.table, `${where}.table`);
  parseTableName(table);
  const at = `${where === 'schema' ? table : where}`;
  const id = optionalName(init.id, `${at}.id`) ?? 'id';
  const tenant = optionalName(init.tenant, `${at}.tenant`);
  if (!isObject(init.columns) || Object.keys(init.columns).length === 0) {
    throw invalid(`${at}.columns`, 'must be an object with at least one encrypted column');
  }
  const columns = new Map<string, ResolvedColumn>();
  for (const [columnName, spec] of Object.entries(init.columns)) {
    name(columnName, `${at}.columns[${JSON.stringify(columnName)}]: a column name`);
    columns.set(columnName, resolveColumn(table, columnName, spec, `${at}.columns.${columnName}`));
  }
  // Every column the schema writes must be its own: two writers of one column would silently
  // overwrite each other's values.
  const owners = new Map<string, string>([[id, 'the id column']]);
  if (tenant !== undefined) {
    if (tenant === id) throw invalid(`${at}.tenant`, 'must differ from the id column');
    owners.set(tenant, 'the tenant column');
  }
  const claim = (column: string, owner: string, path: string) => {
    const previous = owners.get(column);
    if (previous !== undefined) throw invalid(path, `names column ${JSON.stringify(column)}, which is already ${previous}`);
    owners.set(column, owner);
  };
  for (const column of columns.values()) claim(column.name, `encrypted column ${column.name}`, `${at}.columns.${column.name}`);
  for (const column of columns.values()) {
    column.blindIndexes.forEach((b, i) => claim(b.column, `a lookup column of ${column.name}`, `${at}.columns.${column.name}.blindIndexes[${i}].column`));
    column.deterministicLookups.forEach((d, i) =>
      claim(d.column, `a lookup column of ${column.name}`, `${at}.columns.${column.name}.deterministicLookups[${i}].column`),
    );
    column.blindIndexes.forEach((b, i) =>
      b.fields.forEach((f, j) => {
        const owner = owners.get(f.column);
        if (owner !== undefined && owner.startsWith('a lookup column')) {
          throw invalid(`${at}.columns.${column.name}.blindIndexes[${i}].fields[${j}].column`, `is ${owner}; index a value column`);
        }
        const fieldType = columns.get(f.column)?.type;
        if (fieldType !== undefined && !INDEXABLE_TYPES.has(fieldType)) {
          throw invalid(`${at}.columns.${column.name}.blindIndexes[${i}].fields[${j}].column`, `is a ${fieldType} column; blind indexes hash strings, numbers and bigints`);
        }
      }),
    );
  }
  return { table, id, tenant, columns };
}

function resolveColumn(table: string, columnName: string, spec: unknown, where: string): ResolvedColumn {
  if (!isObject(spec)) throw invalid(where, 'must be an object { type, mode?, storage?, … }');
  checkKeys(spec, ['type', 'mode', 'algorithm', 'storage', 'rowBinding', 'context', 'blindIndexes', 'deterministicLookups', 'description'], where);
  if (!VALUE_TYPES.has(spec.type as ColumnValueType)) throw invalid(`${where}.type`, `must be one of ${[...VALUE_TYPES].join(', ')}`);
  const type = spec.type as ColumnValueType;
  const mode = spec.mode ?? 'randomized';
  if (mode !== 'randomized' && mode !== 'deterministic') throw invalid(`${where}.mode`, 'must be "randomized" or "deterministic"');
  let algorithm: ResolvedColumn['algorithm'];
  if (mode === 'deterministic') {
    if (spec.algorithm !== undefined && spec.algorithm !== 'aes-256-siv') {
      throw invalid(`${where}.algorithm`, 'does not apply to a deterministic column (always AES-256-SIV)');
    }
    algorithm = 'aes-256-siv';
  } else {
    algorithm = (spec.algorithm ?? 'chacha20-poly1305') as RandomizedAlgorithm;
    if (!ALGORITHMS.has(algorithm)) throw invalid(`${where}.algorithm`, 'must be "chacha20-poly1305" or "xchacha20-poly1305"');
  }
  const storage = spec.storage ?? 'text';
  if (storage !== 'text' && storage !== 'bytea') throw invalid(`${where}.storage`, 'must be "text" or "bytea"');
  if (spec.rowBinding !== undefined && typeof spec.rowBinding !== 'boolean') throw invalid(`${where}.rowBinding`, 'must be true or false');
  const rowBinding = spec.rowBinding === true;

  const contextSpec = spec.context ?? {};
  if (!isObject(contextSpec)) throw invalid(`${where}.context`, 'must be an object { table?, column?, version? }');
  checkKeys(contextSpec, ['table', 'column', 'version'], `${where}.context`);
  const context = {
    table: optionalName(contextSpec.table, `${where}.context.table`) ?? parseTableName(table).name,
    column: optionalName(contextSpec.column, `${where}.context.column`) ?? columnName,
    version: (contextSpec.version ?? 1) as number,
  };
  try {
    new EncryptionContext(context);
  } catch (error) {
    throw invalid(`${where}.context`, `is not a valid encryption context: ${(error as Error).message}`);
  }

  const blindIndexes = listOf(spec.blindIndexes, `${where}.blindIndexes`).map((b, i) =>
    resolveBlindIndex(b, type, `${where}.blindIndexes[${i}]`),
  );
  const indexNames = new Set<string>();
  blindIndexes.forEach((b, i) => {
    if (indexNames.has(b.name)) throw invalid(`${where}.blindIndexes[${i}].name`, `repeats ${JSON.stringify(b.name)}; index names must differ`);
    indexNames.add(b.name);
  });
  const deterministicLookups = listOf(spec.deterministicLookups, `${where}.deterministicLookups`).map((d, i) => {
    const at = `${where}.deterministicLookups[${i}]`;
    if (!isObject(d)) throw invalid(at, 'must be an object { column, contextColumn?, storage? }');
    checkKeys(d, ['column', 'contextColumn', 'storage'], at);
    const lookupStorage = d.storage ?? storage;
    if (lookupStorage !== 'text' && lookupStorage !== 'bytea') throw invalid(`${at}.storage`, 'must be "text" or "bytea"');
    return {
      column: name(d.column, `${at}.column`),
      contextColumn: optionalName(d.contextColumn, `${at}.contextColumn`) ?? context.column,
      storage: lookupStorage as CiphertextStorage,
    };
  });
  if (mode === 'deterministic' && deterministicLookups.length > 0) {
    throw invalid(`${where}.deterministicLookups`, 'is for randomized columns; a deterministic column is its own lookup');
  }
  return Object.freeze({
    name: columnName,
    type,
    mode,
    algorithm,
    storage,
    rowBinding,
    context: Object.freeze(context),
    blindIndexes: Object.freeze(blindIndexes),
    deterministicLookups: Object.freeze(deterministicLookups),
  });
}

function listOf(value: unknown, where: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(where, 'must be an array');
  return value;
}

function resolveBlindIndex(spec: unknown, type: ColumnValueType, where: string): ResolvedBlindIndex {
  if (!isObject(spec)) throw invalid(where, 'must be an object { name, column, bits?, transforms?, fields?, storage? }');
  checkKeys(spec, ['name', 'column', 'bits', 'transforms', 'fields', 'storage'], where);
  const indexName = name(spec.name, `${where}.name`);
  if (Buffer.byteLength(indexName, 'utf8') > 255) throw invalid(`${where}.name`, 'must be at most 255 UTF-8 bytes');
  const column = name(spec.column, `${where}.column`);
  const bits = spec.bits ?? 16;
  if (!Number.isInteger(bits) || (bits as number) < 8 || (bits as number) > 256) throw invalid(`${where}.bits`, 'must be an integer in 8..256');
  let fields: ResolvedBlindIndex['fields'] = [];
  let single: BlindIndexTransform[] = [];
  if (spec.fields !== undefined) {
    if (spec.transforms !== undefined) throw invalid(`${where}.transforms`, 'goes on each field of a compound index (fields[i].transforms)');
    if (!Array.isArray(spec.fields) || spec.fields.length === 0) throw invalid(`${where}.fields`, 'must be a non-empty array of { column, transforms? }');
    fields = spec.fields.map((f, i) => {
      const at = `${where}.fields[${i}]`;
      if (!isObject(f)) throw invalid(at, 'must be an object { column, transforms? }');
      checkKeys(f, ['column', 'transforms'], at);
      return Object.freeze({ column: name(f.column, `${at}.column`), transforms: Object.freeze(transforms(f.transforms, `${at}.transforms`)) });
    });
    if (new Set(fields.map((f) => f.column)).size !== fields.length) throw invalid(`${where}.fields`, 'names a column twice');
  } else {
    if (!INDEXABLE_TYPES.has(type)) throw invalid(where, `indexes a ${type} column; blind indexes hash strings, numbers and bigints`);
    single = transforms(spec.transforms, `${where}.transforms`);
  }
  const storage = spec.storage ?? ((bits as number) <= 63 ? 'integer' : 'bytea');
  if (storage !== 'integer' && storage !== 'bytea' && storage !== 'text') throw invalid(`${where}.storage`, 'must be "integer", "bytea" or "text"');
  if (storage === 'integer' && (bits as number) > 63) throw invalid(`${where}.storage`, 'is integer, which holds at most 63 bits (BIGINT); use bytea');
  return Object.freeze({ name: indexName, column, bits: bits as number, fields: Object.freeze(fields), transforms: Object.freeze(single), storage });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
