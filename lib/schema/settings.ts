/**
 * The settings stored data depends on, one record per stored column: an encrypted column (its
 * context, mode, row binding, tenant column, type) or a lookup column (its index name, bits,
 * transforms; or its deterministic context). The records live in the database (`sifredb_schema`,
 * see `sql.ts`), so the application, every job and `schema check` compare their configuration with
 * what the data was written with before they write.
 *
 * The randomized algorithm is not recorded: each ciphertext's header names it, and re-encryption
 * may change it on purpose.
 */
import { createHash } from 'node:crypto';
import type { ColumnValueType, TableSchema, TermStorage, CiphertextStorage } from './definition.js';
import { transformName } from './definition.js';

/** What the values of an encrypted column depend on. */
export interface ValueColumnSettings {
  readonly kind: 'value';
  /** `null` when the writer does not know it (a CLI job without a schema). */
  readonly type: ColumnValueType | null;
  readonly mode: 'randomized' | 'deterministic';
  readonly storage: CiphertextStorage;
  readonly rowBinding: boolean;
  readonly tenantColumn: string | null;
  readonly context: { readonly table: string; readonly column: string; readonly version: number };
}

/** What the terms of a blind-index column depend on. */
export interface BlindIndexColumnSettings {
  readonly kind: 'blind-index';
  /** The encrypted column it indexes. */
  readonly of: string;
  readonly name: string;
  readonly bits: number;
  readonly transforms: readonly string[];
  readonly fields: readonly { readonly column: string; readonly transforms: readonly string[] }[];
  readonly storage: TermStorage;
}

/** What a deterministic lookup column depends on. */
export interface DeterministicLookupSettings {
  readonly kind: 'deterministic-lookup';
  readonly of: string;
  readonly contextColumn: string;
  readonly storage: CiphertextStorage;
}

export type StoredColumnSettings = ValueColumnSettings | BlindIndexColumnSettings | DeterministicLookupSettings;

/** The settings of one stored column. */
export interface SettingsRecord {
  readonly column: string;
  readonly settings: StoredColumnSettings;
}

/** Every stored column of `table`: each encrypted column, then its lookup columns. */
export function schemaRecords(table: TableSchema): SettingsRecord[] {
  const records: SettingsRecord[] = [];
  for (const column of table.columns.values()) {
    records.push({
      column: column.name,
      settings: {
        kind: 'value',
        type: column.type,
        mode: column.mode,
        storage: column.storage,
        rowBinding: column.rowBinding,
        tenantColumn: table.tenant ?? null,
        context: { ...column.context },
      },
    });
    for (const b of column.blindIndexes) {
      records.push({
        column: b.column,
        settings: {
          kind: 'blind-index',
          of: column.name,
          name: b.name,
          bits: b.bits,
          transforms: b.transforms.map(transformName),
          fields: b.fields.map((f) => ({ column: f.column, transforms: f.transforms.map(transformName) })),
          storage: b.storage,
        },
      });
    }
    for (const d of column.deterministicLookups) {
      records.push({ column: d.column, settings: { kind: 'deterministic-lookup', of: column.name, contextColumn: d.contextColumn, storage: d.storage } });
    }
  }
  return records;
}

/** SHA-256 (hex) of the canonical JSON of `settings`: equal exactly when the settings are. */
export function settingsFingerprint(settings: StoredColumnSettings): string {
  return createHash('sha256').update(canonicalJson(settings)).digest('hex');
}

/** JSON with object keys sorted, so that equal settings have equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .sort()
      .filter((k) => record[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const show = (value: unknown): string => {
  if (value === null || value === undefined) return 'none';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map((v) => (typeof v === 'object' ? canonicalJson(v) : String(v))).join(',');
  if (typeof value === 'object') return canonicalJson(value);
  return String(value);
};

const FIELD_NAMES: Readonly<Record<string, string>> = {
  tenantColumn: 'tenant column',
  rowBinding: 'row binding',
  contextColumn: 'context column',
};

/**
 * How `configured` differs from `recorded`, one phrase per field (`bits 18 recorded, 16 configured`);
 * empty when they agree. A `type` the configuration does not know (`null`) is not compared.
 */
export function diffSettings(recorded: StoredColumnSettings, configured: StoredColumnSettings): string[] {
  if (recorded.kind !== configured.kind) return [`recorded as a ${recorded.kind} column, configured as a ${configured.kind} column`];
  const differences: string[] = [];
  const a = recorded as unknown as Record<string, unknown>;
  const b = configured as unknown as Record<string, unknown>;
  for (const key of Object.keys(a)) {
    if (key === 'kind') continue;
    if (key === 'type' && b[key] === null) continue;
    if (key === 'context') {
      const ra = a[key] as Record<string, unknown>;
      const rb = b[key] as Record<string, unknown>;
      for (const part of ['table', 'column', 'version']) {
        if (ra[part] !== rb?.[part]) differences.push(`context ${part} ${show(ra[part])} recorded, ${show(rb?.[part])} configured`);
      }
      continue;
    }
    if (canonicalJson(a[key]) !== canonicalJson(b[key])) differences.push(`${FIELD_NAMES[key] ?? key} ${show(a[key])} recorded, ${show(b[key])} configured`);
  }
  return differences;
}
