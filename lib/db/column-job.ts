/**
 * The batch engine behind `sifredb reencrypt` and `sifredb encrypt-column`: walks a table by primary
 * key in batches, transforms each value (re-encrypt, or encrypt a plaintext), and writes the results
 * with one compare-and-set UPDATE per batch, refreshing the row's blind-index and deterministic lookup
 * columns in the same statement. docs/CLI.md states the guarantees; the comments here say how.
 */
import { Buffer } from 'node:buffer';
import { EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError, asSifreDBError } from '../errors.js';
import { inspect, isEncrypted } from '../format/inspect.js';
import { type EncryptableValue, sameValue } from '../format/value-codec.js';
import { toText } from '../format/text.js';
import type { BlindIndex, BlindIndexValue } from '../blind-index/blind-index.js';
import { EncryptedTable } from '../schema/encrypted-table.js';
import type { BaseVault } from '../vault/base-vault.js';
import { DeterministicVault } from '../vault/deterministic-vault.js';
import { ALGORITHM } from '../backend/types.js';
import { type Database, type DbSession, databaseError, openDatabase } from './database.js';
import { type ColumnInfo, describeTable, parseTableName, quoteIdent, requireColumn, type TableInfo } from './schema.js';
import type { TableSchema } from '../schema/definition.js';
import type { SettingsRecord, StoredColumnSettings, ValueColumnSettings } from '../schema/settings.js';
import { compareSettings, readRecordedSettings, SETTINGS_TABLE, updateRecordedSettings } from '../schema/sql.js';
import { describeIndex, diagnoseTerms, sameTerm, type TermSample } from '../schema/term-check.js';
import { transformName } from '../schema/definition.js';
import { optionsFromSchema } from './job-schema.js';
import { envelopeBytes } from '../format/inspect.js';
import { parseHeader } from '../format/envelope.js';
import { decodeUtf8 } from '../format/utf8.js';
import type { RustDeterministicVault } from '../rust-import/deterministic.js';
import type { RustKeyDirectory } from '../rust-import/key-directory.js';
import { openStoredRustValue, type RustTextEncoding } from '../rust-import/stored.js';
import { AuditChainWriter, hasAuditChain, publishAuditKey } from '../audit/chain.js';
import type { AuditSigner } from '../keys/audit-keys.js';

/** A blind index whose term is stored in `column` of the same row. */
export interface BlindIndexColumn {
  /**
   * The index (its name, bits and transforms). Terms are computed under the current key version. A
   * compound index's field names are column names of the table: the job's own column stands for its
   * plaintext, other columns are read with the row (an encrypted one only with `schema`, which says
   * how to decrypt it).
   */
  index: BlindIndex;
  /** Column holding the term: INTEGER/BIGINT/SMALLINT (the term as an integer), BYTEA (bytes) or TEXT (hex). */
  column: string;
}

/** A deterministic (AES-SIV) copy of the value, stored in `column` for exact lookups. */
export interface DeterministicColumn {
  /** The deterministic vault; open it on the same key source as the job's vault. */
  vault: DeterministicVault;
  /** TEXT/VARCHAR (`sdb1:` text form) or BYTEA (binary envelope) column. */
  column: string;
  /** Column name used in the value's encryption context; default the job's context column. */
  contextColumn?: string;
}

/** Counters of a running or finished job. */
export interface JobProgress {
  /** `scan`: the walk over the table; `sweep`: the second walk over rows that were locked during the scan. */
  readonly pass: 'scan' | 'sweep';
  /**
   * Rows read. A re-encryption that reads only the rows not on the current version (see docs/CLI.md)
   * counts the others, current at the start, as scanned and skipped without reading them.
   */
  readonly scanned: number;
  /** Rows written (or, in a dry run, that would be). */
  readonly updated: number;
  /**
   * Of `updated`, the rows already on the current key version whose empty lookup columns were filled
   * (their ciphertext kept): how a new lookup column is backfilled.
   */
  readonly lookupsFilled: number;
  /** Rows that needed nothing: already on the current key version, or (encrypt-column) already encrypted. */
  readonly skipped: number;
  /** Rows the application changed between read and write; left with the application's value. */
  readonly conflicts: number;
  /** Rows whose value could not be processed (reported with their id; left untouched). */
  readonly failed: number;
  /** Rows with a value when the job started (for a progress bar's ETA); `undefined` when not counted. */
  readonly total: number | undefined;
  readonly elapsedMs: number;
}

/** A row the job could not process. The message never contains the value. */
export interface RowFailure {
  /** The row's id, as text. */
  readonly id: string;
  readonly code: string;
  readonly message: string;
}

/** What a job did. */
export interface JobResult extends Omit<JobProgress, 'pass'> {
  /** The first {@link ColumnJobOptions.maxReportedFailures} failures. */
  readonly failures: readonly RowFailure[];
  readonly dryRun: boolean;
  /**
   * Whether the database records the settings of this column (`sifredb_schema`, see docs/SCHEMA.md)
   * and the job's were compared with them. False: only the rows' stored lookup terms were checked.
   */
  readonly settingsRecorded: boolean;
  /** True when the job stopped early because its `signal` was aborted; rerun it to finish. */
  readonly aborted: boolean;
  /** Rows written per second of wall time. */
  readonly rowsPerSecond: number;
  /**
   * Where the time went, summed over batches (pipelined batches overlap, so the sum can exceed
   * `elapsedMs`): `readMs` in the batch SELECTs, `transformMs` in decryption/encryption and index
   * terms, `writeMs` in the UPDATEs and COMMITs.
   */
  readonly timings: { readonly readMs: number; readonly transformMs: number; readonly writeMs: number };
}

/** How a job signs its writes into the table's audit chain (docs/AUDIT.md). */
export interface ColumnJobAudit {
  /** The current audit key (`AuditKeyFile.signer()`); the caller closes it after the job. */
  signer: AuditSigner;
  /** Who makes the writes, recorded and signed (the CLI: `sifredb-cli@<host>` unless `--actor`). */
  actor: string;
  /** The clock of record timestamps, in ms since the Unix epoch (default `Date.now`). */
  now?: () => number;
}

/** Options shared by {@link reencryptColumn} and {@link encryptColumn}. */
export interface ColumnJobOptions {
  /** An open {@link Database}, or a `postgres://` URL / PGlite directory to open (and close) for the job. */
  db: Database | string;
  /** Table, optionally `schema.table`. Names are taken literally (not case-folded). Optional with `schema`. */
  table?: string;
  /** Column holding the ciphertexts (reencrypt) or the plaintexts (encrypt-column). TEXT/VARCHAR or BYTEA. */
  column: string;
  /** Unique, ordered key used for keyset pagination (default `id`). */
  idColumn?: string;
  /**
   * Row binding (SECURITY.md): `'id'` binds each row's ciphertext to its id — the id column's text
   * form as PostgreSQL prints it (`id::text`) is the row AD — so ciphertexts swapped between rows fail
   * to decrypt. reencrypt then reads and writes bound values (rows that do not open under their id are
   * reported as failed; to bind an unbound column, see `previousRowBinding`); encrypt-column writes bound values. The application must read them with
   * `{ aad: String(row.id) }` (a number or bigint id gives the same bytes). Bound rows are processed
   * one at a time (no batch fast path). Lookup columns stay unbound (they must match across rows).
   * Default `'none'`.
   */
  rowBinding?: 'id' | 'none';
  /**
   * reencrypt only: how the stored values are bound now, when that differs from `rowBinding` — a
   * migration. `rowBinding: 'id', previousRowBinding: 'none'` binds an unbound column to its rows:
   * every row (even one already on the current key version) is decrypted unbound and re-encrypted
   * bound to its id. A row that does not open unbound but opens bound to its id is already done
   * (skipped), so a rerun after a crash resumes; anything else is reported as failed and left alone.
   * `rowBinding: 'none', previousRowBinding: 'id'` is the reverse (unbinding). A migration reads every
   * row and waits for row locks (no `skipLocked` sharing and no sweep). Default: `rowBinding`.
   */
  previousRowBinding?: 'id' | 'none';
  /** Column holding each row's tenant id; its value goes into the row's encryption context. */
  tenantColumn?: string;
  /** Table name in the encryption context (default: `table` without its schema). */
  contextTable?: string;
  /** Column name in the encryption context (default: the column the ciphertext is stored in). */
  contextColumn?: string;
  /** Context version (default 1). */
  contextVersion?: number;
  /**
   * The table schema (docs/SCHEMA.md): the job's table, id and tenant columns, context, row binding
   * and lookup columns come from it; an option that contradicts it is `ERR_SIFREDB_INPUT`. `column`
   * (encrypt-column: `targetColumn ?? column`) names the schema's encrypted column.
   */
  schema?: TableSchema;
  /**
   * Check each row's stored lookup terms against what the job computes for the row's plaintext under
   * the row's key version, before writing its batch (default true). A difference stops the job with
   * `ERR_SIFREDB_SCHEMA` and nothing of that batch is written. Turn off only to measure its cost.
   */
  verifyLookups?: boolean;
  /** Blind-index columns refreshed together with the ciphertext. */
  blindIndexes?: readonly BlindIndexColumn[];
  /** Deterministic lookup columns refreshed together with the ciphertext. */
  deterministicColumns?: readonly DeterministicColumn[];
  /** Rows per batch, i.e. per transaction and per UPDATE (default 2,000). */
  batchSize?: number;
  /** Batches in flight at once on PostgreSQL (default 2: one being read while the previous is written). PGlite: 1. */
  pipeline?: number;
  /**
   * Share the table with other processes running the same job: batches are read with
   * `FOR UPDATE SKIP LOCKED`, and a final sweep picks up rows that were locked during the scan.
   * Default true on PostgreSQL; PGlite is single-process. Not used where the sweep could not tell
   * pending rows from done ones in SQL (a row-binding migration, or a `TenantKeyRouter` vault with a
   * `tenantColumn`): those jobs make one pass that waits for row locks.
   */
  skipLocked?: boolean;
  /** Read and transform, write nothing; reports what would change and which rows fail. */
  dryRun?: boolean;
  /** Pause between batches, to leave room for the application's traffic (default 0). */
  pauseMs?: number;
  /** Count the rows first so that progress has a total (default true). */
  countRows?: boolean;
  /** Called after every batch. */
  onProgress?: (progress: JobProgress) => void;
  /** Stops the job after the batches in flight (they commit); the result says `aborted`. */
  signal?: AbortSignal;
  /** Failures kept in the result (default 100; all are counted). */
  maxReportedFailures?: number;
  /**
   * Sign the job's writes (docs/AUDIT.md): each batch's transaction locks the table's audit chain
   * head before the batch's rows and appends one signed `update` record per row written, with every
   * encrypted column of the row as it is after the write. Needs `schema` (a record lists all the
   * row's encrypted columns). Without it, a job on a table that has an audit chain is refused
   * (`ERR_SIFREDB_AUDIT_UNSIGNED`) before anything is written; a dry run writes nothing and needs no key.
   */
  audit?: ColumnJobAudit;
}

/** Options of {@link reencryptColumn}. */
export interface ReencryptColumnOptions extends ColumnJobOptions {
  /** The vault the column is written with: a `Vault` (randomized) or a `DeterministicVault`. */
  vault: BaseVault;
}

/** Options of {@link encryptColumn}. */
export interface EncryptColumnOptions extends ColumnJobOptions {
  /** The vault to encrypt with. */
  vault: BaseVault;
  /**
   * Write the ciphertext into this (existing, nullable) column instead of replacing the plaintext in
   * place; rows whose target is already set are skipped, so a rerun resumes.
   */
  targetColumn?: string;
}

/** Options of {@link importRustColumn}. */
export interface ImportRustColumnOptions extends ColumnJobOptions {
  /** The vault format v1 is written with: a `Vault` (randomized) or a `DeterministicVault`. */
  vault: BaseVault;
  /** Opens the column's values: SifreDB for Rust's `DeterministicVault` key. */
  rustVault: RustDeterministicVault;
  /**
   * The `v<version>` of the Rust context (`tenant|table|column|v<version>`; its table and column are
   * `contextTable` and `contextColumn`, its tenant the row's `tenantColumn`, `default` when NULL).
   * Default: `contextVersion`, else 1.
   */
  rustContextVersion?: number;
  /** TEXT columns: how the Rust ciphertexts are spelled (default `'auto'`, see `openStoredRustValue`). */
  rustTextEncoding?: RustTextEncoding;
  /**
   * What the Rust plaintext bytes become: `'string'` (UTF-8, strictly decoded; the default) or
   * `'bytes'`. With `schema`, the schema's type of the column (which must be one of these).
   */
  valueType?: 'string' | 'bytes';
  /**
   * A column of the Rust crates' legacy blind-index terms (BYTEA, or TEXT as hex), kept for Rust
   * readers during the move: filled where NULL and checked where set, from each row's plaintext,
   * with the directory's pepper and the context `tenant|table|column`.
   */
  rustBlindIndex?: { column: string; keyDirectory: RustKeyDirectory };
}

/** One row as read: `id`, the value `v`, the tenant `t`, and with row binding the id's text `k`. */
interface Row {
  id: unknown;
  v: unknown;
  t?: unknown;
  k?: unknown;
  /** The stored lookup values, `l0`, `l1`… in the order of {@link Plan.lookups}. */
  [lookup: `l${number}`]: unknown;
  /** Other columns that compound blind indexes hash, `f0`, `f1`… in the order of {@link Plan.fieldColumns}. */
  [field: `f${number}`]: unknown;
}

/** An error in the job's setup found on a row: it would fail every row alike, so the job stops. */
class JobSetupError extends SifreDBError {}

/** A row whose stored lookup term is not what the job computes: the job stops before writing. */
class LookupMismatch {
  constructor(
    readonly lookup: number,
    readonly sample: TermSample,
  ) {}
}

/** What to do with a row. */
type Outcome =
  | { readonly next: string | Buffer; readonly lookups: readonly unknown[]; readonly filled?: true }
  | 'skip'
  | SifreDBError
  | LookupMismatch;

interface Lookup {
  readonly column: ColumnInfo;
  /** The settings its stored values depend on, compared with the recorded ones (none: a legacy Rust column). */
  readonly settings: StoredColumnSettings | undefined;
  /** The stored form of the lookup of `value` (the row's plaintext) in `row`. */
  compute(value: unknown, ctx: EncryptionContext, row: Row): unknown;
  /** True when `stored` is what this lookup gives `value` under key `version` (no key: any active one). */
  holds(value: unknown, ctx: EncryptionContext, version: number | undefined, stored: unknown, row: Row): boolean;
  /** Why stored values differ from what this lookup computes, for the error message. */
  explain(samples: readonly TermSample[]): Promise<string>;
}

/** Everything a job needs, resolved once before the first batch. */
interface Plan {
  readonly db: Database;
  readonly info: TableInfo;
  readonly id: ColumnInfo;
  /** The column read (and compared) per row. */
  readonly source: ColumnInfo;
  /** The column written: `source` in place, or the target column. */
  readonly target: ColumnInfo;
  readonly tenant: ColumnInfo | undefined;
  /** Row binding (now or, in a migration, before): select `id::text AS k`. */
  readonly bindRows: boolean;
  /** A row-binding migration (`previousRowBinding` ≠ `rowBinding`): every row is read and rewritten. */
  readonly migrating: boolean;
  readonly lookups: readonly Lookup[];
  /** Columns besides the value that compound blind indexes hash, selected as `f0`, `f1`… */
  readonly fieldColumns: readonly ColumnInfo[];
  /** Extra `WHERE` of the read (besides the keyset condition), and of the sweep. */
  readonly scanFilter: string;
  readonly sweepFilter: string;
  readonly sweepParams: readonly unknown[];
  /**
   * The sweep's filter leaves out the rows already done, so a second walk is cheap and a re-encryption
   * can read pending rows only. False for a row-binding migration and for a re-encryption whose
   * current version differs per tenant (a TenantKeyRouter with a tenant column).
   */
  readonly pendingFilter: boolean;
  /** SQL of the batch UPDATE; `$1…` are arrays: ids, old values, new values, lookup values. */
  readonly updateSql: string;
  transform(rows: readonly Row[]): Promise<Outcome[]>;
  /** Whether the column's settings are recorded in the database (and were compared). */
  readonly settingsRecorded: boolean;
  /** After a row-binding migration that finished with no failure: records the new binding. */
  recordMigration(): Promise<void>;
  /**
   * The error that stops the job when a batch holds a row whose stored lookup differs from what the
   * job computes (its settings differ from the data's), else `undefined`.
   */
  lookupMismatch(outcomes: readonly Outcome[]): Promise<SifreDBError | undefined>;
  /** The error that stops the job when its first batch shows it was set up wrong, else `undefined`. */
  diagnose(rows: readonly Row[], outcomes: readonly Outcome[]): SifreDBError | undefined;
}

const DEFAULT_BATCH_SIZE = 2_000;
const RETRYABLE_STATES = new Set(['40001', '40P01']);
const MAX_BATCH_RETRIES = 3;
/**
 * Values of the first batch that must all fail the same way before the job stops with a diagnosis.
 * One failing value says nothing about the job (one corrupt row); every one of ten failing alike
 * points at its setup. Below this the rows are simply reported, which is no flood.
 */
const MIN_DIAGNOSED_VALUES = 10;

/**
 * Re-encrypts every value of a column that is not under the current key version (or not under the
 * vault's algorithm), refreshing the row's blind-index and deterministic lookup columns in the same
 * UPDATE.
 *
 * - Keyset pagination by `idColumn`, one transaction per batch, one UPDATE per batch.
 * - Compare-and-set: a row is written only where the column still holds the ciphertext that was read,
 *   so a value the application wrote meanwhile is never overwritten (counted as a conflict).
 * - Idempotent: rows already on the current version are skipped, so a job killed at any point is
 *   simply run again.
 * - Several processes can run it on one PostgreSQL table at once (`FOR UPDATE SKIP LOCKED`).
 * - A row that fails to decrypt is reported (id and error code) and left untouched; the job goes on.
 *   But when every value of the first batch (at least 10, rows already current aside) fails with
 *   `ERR_SIFREDB_AUTH`, or with `ERR_SIFREDB_FORMAT` because the values are of the other vault kind,
 *   the job writes nothing and throws that code with the likely causes: the job is set up wrong.
 *
 * @example
 * ```ts
 * await vault.refresh(); // after `keys rotate`
 * const result = await reencryptColumn({ db: process.env.DATABASE_URL!, table: 'users', column: 'email', vault,
 *   blindIndexes: [{ index: byEmail, column: 'email_idx' }] });
 * if (result.failed > 0) console.error(result.failures);
 * ```
 * @throws `ERR_SIFREDB_INPUT` for a bad table, column or option; `ERR_SIFREDB_DATABASE` when a
 *   statement fails (the batch in flight is rolled back; rerun to resume); `ERR_SIFREDB_AUTH` or
 *   `ERR_SIFREDB_FORMAT` when the first batch fails entirely (above).
 */
export async function reencryptColumn(options: ReencryptColumnOptions): Promise<JobResult> {
  return runJob(options, 'reencrypt');
}

/**
 * Encrypts a plaintext column, in place or into `targetColumn`, filling its blind-index and
 * deterministic lookup columns; values that already are SifreDB ciphertexts are skipped, never
 * encrypted twice. Same batching, compare-and-set, resumability and sharing as {@link reencryptColumn}.
 * TEXT values are encrypted as strings, BYTEA values as bytes.
 */
export async function encryptColumn(options: EncryptColumnOptions): Promise<JobResult> {
  return runJob(options, 'encrypt');
}

/**
 * Converts a column of SifreDB for Rust ciphertexts (`DeterministicVault`: BYTEA raw, TEXT hex or
 * base64) to format v1 in place, randomized or deterministic as `vault` is, filling the row's
 * lookup columns. Values already in format v1 that open under `vault` are skipped, so a rerun
 * resumes and a second run changes nothing; a value that opens neither way is reported and left as
 * it is. Same batching, compare-and-set and table sharing as {@link reencryptColumn}.
 */
export async function importRustColumn(options: ImportRustColumnOptions): Promise<JobResult> {
  if (typeof options !== 'object' || options === null) throw new SifreDBError(ERROR_CODES.input, 'options must be an object');
  if (typeof (options.rustVault as { decrypt?: unknown } | undefined)?.decrypt !== 'function') {
    throw new SifreDBError(ERROR_CODES.input, 'rustVault must be a RustDeterministicVault');
  }
  return runJob(options, 'import');
}

type JobMode = 'reencrypt' | 'encrypt' | 'import';

async function runJob(options: ReencryptColumnOptions | EncryptColumnOptions | ImportRustColumnOptions, mode: JobMode): Promise<JobResult> {
  if (typeof options !== 'object' || options === null) throw new SifreDBError(ERROR_CODES.input, 'options must be an object');
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1_000_000) {
    throw new SifreDBError(ERROR_CODES.input, 'batchSize must be an integer in 1..1000000');
  }
  const pauseMs = options.pauseMs ?? 0;
  if (!Number.isFinite(pauseMs) || pauseMs < 0) throw new SifreDBError(ERROR_CODES.input, 'pauseMs must be a number ≥ 0');
  const maxReported = options.maxReportedFailures ?? 100;

  // An import converts its column in place, as a re-encryption does.
  const { options: resolved } = await optionsFromSchema(options as ReencryptColumnOptions & { targetColumn?: string }, mode === 'import' ? 'reencrypt' : mode);
  options = resolved;
  const owned = typeof options.db === 'string';
  const db = typeof options.db === 'string' ? await openDatabase(options.db) : options.db;
  try {
    const dryRun = options.dryRun === true;
    const audit = await jobAudit(db, options, dryRun);
    const plan = await makePlan(db, options, mode);
    if (audit !== undefined) await publishAuditKey(db, options.audit!.signer);
    const pipeline = db.kind === 'pglite' ? 1 : Math.max(1, Math.min(options.pipeline ?? 2, db.maxSessions));
    // Without a filter for pending rows (a row-binding migration; per-tenant key versions) a sweep
    // would read, decrypt and count the whole table again: the job waits for row locks (FOR UPDATE)
    // in one pass instead, so it cannot share the table with other workers.
    const skipLocked = db.kind === 'postgres' && options.skipLocked !== false && plan.pendingFilter;
    const started = performance.now();
    const counters = { scanned: 0, updated: 0, lookupsFilled: 0, skipped: 0, conflicts: 0, failed: 0 };
    const failures: RowFailure[] = [];
    const failedIds = new Set<string>();
    const timings = { readMs: 0, transformMs: 0, writeMs: 0 };
    let total: number | undefined;
    if (options.countRows !== false) {
      const { rows } = await db
        .query<{ n: string | number }>(`SELECT count(*) AS n FROM ${plan.info.table.sql} WHERE ${plan.scanFilter}`)
        .catch((error: unknown) => Promise.reject(databaseError(error, 'cannot count the rows')));
      total = Number(rows[0]?.n ?? 0);
    }
    // A re-encryption scan reads only rows not yet on the current version (the sweep's filter), so a
    // worker that starts behind another one does not re-read the rows already done but goes straight
    // to rows still pending, skipping those another worker holds. Rows current at the start count as
    // skipped (and scanned, so that `scanned` reaches `total`). Row-bound jobs read everything: they
    // also verify the rows already current.
    const pendingOnly = mode === 'reencrypt' && !plan.bindRows && plan.pendingFilter;
    if (pendingOnly && total !== undefined) {
      const { rows } = await db
        .query<{ n: string | number }>(`SELECT count(*) AS n FROM ${plan.info.table.sql} WHERE ${plan.sweepFilter}`, plan.sweepParams)
        .catch((error: unknown) => Promise.reject(databaseError(error, 'cannot count the rows')));
      counters.skipped = total - Number(rows[0]?.n ?? 0);
      counters.scanned = counters.skipped;
    }
    let pass: JobProgress['pass'] = 'scan';
    const progress = (): JobProgress => ({ pass, ...counters, total, elapsedMs: performance.now() - started });

    const account = (rows: readonly Row[], outcomes: readonly Outcome[], written: number, attempted: number) => {
      counters.scanned += rows.length;
      counters.updated += written;
      // Only conflicts are not written; a filled row among them is the rare case this rounds down.
      counters.lookupsFilled += Math.min(written, outcomes.filter((o) => typeof o === 'object' && 'filled' in o).length);
      counters.conflicts += attempted - written;
      outcomes.forEach((outcome, i) => {
        if (outcome === 'skip') counters.skipped += 1;
        else if (outcome instanceof SifreDBError) {
          const id = String(rows[i]!.id);
          // The sweep meets rows the scan already reported; count each row once.
          if (failedIds.has(id)) return;
          failedIds.add(id);
          counters.failed += 1;
          if (failures.length < maxReported) failures.push({ id, code: outcome.code, message: outcome.message });
        }
      });
      options.onProgress?.(progress());
    };

    const walk = (filter: string, filterParams: readonly unknown[], lock: string, diagnoseFirst: boolean) =>
      walkTable(db, plan, {
        filter,
        filterParams,
        lock,
        batchSize,
        pipeline,
        pauseMs,
        dryRun,
        signal: options.signal,
        account,
        timings,
        diagnoseFirst,
        audit,
      });

    const lock = dryRun ? '' : skipLocked ? 'FOR UPDATE SKIP LOCKED' : 'FOR UPDATE';
    await (pendingOnly ? walk(plan.sweepFilter, plan.sweepParams, lock, true) : walk(plan.scanFilter, [], lock, true));
    // Rows another transaction held during the scan were skipped, not done: the application may have
    // been updating another column of them. The sweep waits for such locks instead, and its filter
    // makes the database return only rows that still need work, so it is cheap.
    if (skipLocked && !dryRun && options.signal?.aborted !== true) {
      pass = 'sweep';
      await walk(plan.sweepFilter, plan.sweepParams, 'FOR UPDATE', false);
    }
    // The data now depends on the new row binding: so must its record, or every later job and
    // check would refuse it. Only a complete migration (no failed row) changes the record.
    if (!dryRun && options.signal?.aborted !== true && counters.failed === 0) await plan.recordMigration();
    const elapsedMs = performance.now() - started;
    return {
      ...counters,
      total,
      elapsedMs,
      failures,
      dryRun,
      aborted: options.signal?.aborted === true,
      settingsRecorded: plan.settingsRecorded,
      rowsPerSecond: elapsedMs > 0 ? (counters.updated * 1000) / elapsedMs : 0,
      timings,
    };
  } finally {
    if (owned) await db.close().catch(() => undefined);
  }
}

interface WalkOptions {
  filter: string;
  filterParams: readonly unknown[];
  lock: string;
  batchSize: number;
  pipeline: number;
  pauseMs: number;
  dryRun: boolean;
  signal: AbortSignal | undefined;
  account(rows: readonly Row[], outcomes: readonly Outcome[], written: number, attempted: number): void;
  timings: { readMs: number; transformMs: number; writeMs: number };
  /** Check the walk's first batch with {@link Plan.diagnose} before writing it. */
  diagnoseFirst: boolean;
  /** Sign each batch's writes into this chain (not in a dry run). */
  audit: JobAuditChain | undefined;
}

/**
 * The job's audit chain, or `undefined` when it does not sign. A table that has a chain is never
 * written unsigned: the job is refused before it reads a row.
 */
interface JobAuditChain {
  readonly writer: AuditChainWriter;
  readonly actor: string;
}

async function jobAudit(db: Database, options: ColumnJobOptions, dryRun: boolean): Promise<JobAuditChain | undefined> {
  const given = options.audit;
  const schema = options.schema;
  if (given === undefined) {
    if (dryRun || options.table === undefined) return undefined;
    // The chain is named as the schema names the table; a job without one may spell it otherwise.
    const parsed = parseTableName(options.table);
    const names = parsed.schema === undefined || parsed.schema === 'public' ? [...new Set([options.table, parsed.name, `public.${parsed.name}`])] : [options.table];
    for (const name of names) {
      if (await hasAuditChain(db, name)) {
        throw new SifreDBError(
          ERROR_CODES.auditUnsigned,
          `${name} is audited (it has an audit chain in sifredb_audit): the job's writes must be signed, and it has no audit keys (--audit-keys, or the audit option). Nothing was written`,
        );
      }
    }
    return undefined;
  }
  if (typeof given !== 'object' || given === null || typeof given.signer?.sign !== 'function') {
    throw new SifreDBError(ERROR_CODES.input, 'audit.signer must be an audit signer (AuditKeyFile.signer())');
  }
  if (typeof given.actor !== 'string' || given.actor === '') throw new SifreDBError(ERROR_CODES.input, 'audit.actor must name who makes the writes');
  if (schema === undefined) {
    throw new SifreDBError(ERROR_CODES.input, 'a signed job needs the table schema (--schema): each record lists every encrypted column of the row');
  }
  if (dryRun) return undefined;
  return { writer: new AuditChainWriter(schema, given.signer, given.now), actor: given.actor };
}

/**
 * One walk over the table in keyset order. Reads are sequential (each starts after the last id of
 * the previous one), but a batch's transform, UPDATE and COMMIT overlap the next batch's read on
 * another connection, up to `pipeline` batches at once.
 */
async function walkTable(db: Database, plan: Plan, o: WalkOptions): Promise<void> {
  const idSql = quoteIdent(plan.id.name);
  const columns = [`${idSql} AS id`, `${quoteIdent(plan.source.name)} AS v`];
  if (plan.tenant) columns.push(`${quoteIdent(plan.tenant.name)} AS t`);
  if (plan.bindRows) columns.push(`${idSql}::text AS k`);
  plan.lookups.forEach((lookup, j) => columns.push(`${quoteIdent(lookup.column.name)} AS l${j}`));
  plan.fieldColumns.forEach((field, k) => columns.push(`${quoteIdent(field.name)} AS f${k}`));
  const first = o.filterParams.length;
  const select = (after: boolean) =>
    `SELECT ${columns.join(', ')} FROM ${plan.info.table.sql}
      WHERE ${after ? `${idSql} > $${first + 2}::${plan.id.type} AND ` : ''}${o.filter}
      ORDER BY ${idSql} LIMIT $${first + 1} ${o.lock}`;
  const selectFirst = select(false);
  const selectNext = select(true);

  let cursor: unknown;
  let started = false;
  let error: unknown;
  const inflight = new Set<Promise<void>>();
  for (;;) {
    if (error !== undefined || o.signal?.aborted) break;
    // The read hands its last id over as soon as it has the rows, so the next read can start while
    // this batch is still being encrypted and written.
    let handOver!: (rows: Row[] | undefined) => void;
    const read = new Promise<Row[] | undefined>((resolve) => (handOver = resolve));
    const params = started ? [...o.filterParams, o.batchSize, cursor] : [...o.filterParams, o.batchSize];
    const sql = started ? selectNext : selectFirst;
    const diagnosed = o.diagnoseFirst && !started;
    const batch = runBatch(db, plan, sql, params, o, handOver, diagnosed).catch((e: unknown) => {
      error ??= e;
      handOver(undefined);
    });
    inflight.add(batch);
    void batch.finally(() => inflight.delete(batch));
    const rows = await read;
    if (rows === undefined || rows.length === 0) break;
    started = true;
    cursor = rows[rows.length - 1]!.id;
    if (rows.length < o.batchSize) break;
    // No second batch is read (and possibly written) before the first one's diagnosis is known.
    if (diagnosed) await batch;
    if (inflight.size >= o.pipeline) await Promise.race(inflight);
    if (o.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, o.pauseMs));
  }
  await Promise.all(inflight);
  if (error !== undefined) throw error;
}

/** Reads, transforms and writes one batch in one transaction; retried on deadlock or serialization failure. */
async function runBatch(
  db: Database,
  plan: Plan,
  selectSql: string,
  params: readonly unknown[],
  o: WalkOptions,
  handOver: (rows: Row[]) => void,
  diagnosed: boolean,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.withSession((session) => batchTransaction(session, plan, selectSql, params, o, handOver, diagnosed));
      return;
    } catch (error) {
      const state = (error as { code?: unknown })?.code;
      if (attempt < MAX_BATCH_RETRIES && typeof state === 'string' && RETRYABLE_STATES.has(state)) continue;
      throw databaseError(error, `batch on ${plan.info.table.sql} failed (rolled back; rerun to resume)`);
    }
  }
}

async function batchTransaction(
  session: DbSession,
  plan: Plan,
  selectSql: string,
  params: readonly unknown[],
  o: WalkOptions,
  handOver: (rows: Row[]) => void,
  diagnosed: boolean,
): Promise<void> {
  const t = o.timings;
  let mark = performance.now();
  const lap = () => {
    const now = performance.now();
    const ms = now - mark;
    mark = now;
    return ms;
  };
  if (o.dryRun) {
    const { rows } = await session.query<Row>(selectSql, params);
    handOver(rows);
    t.readMs += lap();
    const outcomes = await plan.transform(rows);
    t.transformMs += lap();
    const verdict = (await plan.lookupMismatch(outcomes)) ?? (diagnosed ? plan.diagnose(rows, outcomes) : undefined);
    if (verdict !== undefined) throw verdict;
    const would = outcomes.filter((x) => typeof x === 'object' && !(x instanceof SifreDBError)).length;
    o.account(rows, outcomes, would, would);
    return;
  }
  await session.query('BEGIN');
  try {
    // The chain head before the batch's rows: the lock order of every audited writer (lib/audit/chain.ts).
    const chain = o.audit === undefined ? undefined : await o.audit.writer.lock(session, o.audit.actor);
    const { rows } = await session.query<Row>(selectSql, params);
    handOver(rows);
    t.readMs += lap();
    const outcomes = await plan.transform(rows);
    t.transformMs += lap();
    const verdict = (await plan.lookupMismatch(outcomes)) ?? (diagnosed ? plan.diagnose(rows, outcomes) : undefined);
    if (verdict !== undefined) throw verdict; // rolled back below: nothing of this batch is written
    const ids: unknown[] = [];
    const olds: unknown[] = [];
    const nexts: unknown[] = [];
    const lookups: unknown[][] = plan.lookups.map(() => []);
    outcomes.forEach((outcome, i) => {
      if (outcome === 'skip' || outcome instanceof SifreDBError || outcome instanceof LookupMismatch) return;
      ids.push(rows[i]!.id);
      olds.push(rows[i]!.v);
      nexts.push(outcome.next);
      outcome.lookups.forEach((value, j) => lookups[j]!.push(value));
    });
    let written = 0;
    if (ids.length > 0 && chain !== undefined) {
      const result = await session.query<Record<string, unknown>>(`${plan.updateSql}\n RETURNING t.*`, [ids, olds, nexts, ...lookups]);
      written = result.rows.length;
      for (const row of result.rows) chain.append('update', row);
      await chain.flush();
    } else if (ids.length > 0) {
      written = (await session.query(plan.updateSql, [ids, olds, nexts, ...lookups])).rowCount;
    }
    await session.query('COMMIT');
    t.writeMs += lap();
    o.account(rows, outcomes, written, ids.length);
  } catch (error) {
    await session.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function makePlan(db: Database, options: ReencryptColumnOptions | EncryptColumnOptions | ImportRustColumnOptions, mode: JobMode): Promise<Plan> {
  const vault = options.vault as BaseVault | undefined;
  if (vault === null || typeof vault !== 'object' || typeof (vault as BaseVault).needsReencryption !== 'function') {
    throw new SifreDBError(ERROR_CODES.input, 'vault must be a Vault or a DeterministicVault');
  }
  if (options.table === undefined) throw new SifreDBError(ERROR_CODES.input, 'table is required (or give a schema)');
  const table = parseTableName(options.table);
  const info = await describeTable(db, table);
  const id = requireColumn(info, options.idColumn ?? 'id', 'id');
  if (!info.uniqueColumns.has(id.name)) {
    throw new SifreDBError(
      ERROR_CODES.input,
      `id column ${quoteIdent(id.name)} has no unique index; keyset pagination needs a unique key (use --id-column)`,
    );
  }
  const source = requireColumn(info, options.column, 'value');
  const targetName = mode === 'encrypt' ? (options as EncryptColumnOptions).targetColumn : undefined;
  const target = targetName === undefined ? source : requireColumn(info, targetName, 'target');
  for (const column of new Set([source, target])) {
    if (column.kind !== 'text' && column.kind !== 'bytea') {
      throw new SifreDBError(ERROR_CODES.input, `column ${quoteIdent(column.name)} is ${column.type}; it must be TEXT/VARCHAR or BYTEA`);
    }
  }
  const tenant = options.tenantColumn === undefined ? undefined : requireColumn(info, options.tenantColumn, 'tenant');
  const rowBinding = options.rowBinding ?? 'none';
  if (rowBinding !== 'id' && rowBinding !== 'none') throw new SifreDBError(ERROR_CODES.input, "rowBinding must be 'id' or 'none'");
  const previousRowBinding = options.previousRowBinding ?? rowBinding;
  if (previousRowBinding !== 'id' && previousRowBinding !== 'none') {
    throw new SifreDBError(ERROR_CODES.input, "previousRowBinding must be 'id' or 'none'");
  }
  const migrating = previousRowBinding !== rowBinding;
  if (migrating && mode !== 'reencrypt') {
    throw new SifreDBError(ERROR_CODES.input, 'previousRowBinding is for reencrypt (encrypt-column reads plaintexts)');
  }
  const bindRows = rowBinding === 'id' || previousRowBinding === 'id';
  const rowAd = (row: Row): { aad: string } => {
    if (typeof row.k !== 'string') throw new SifreDBError(ERROR_CODES.input, 'the row has no id to bind to');
    return { aad: row.k };
  };
  /** The row-binding options of a row as written: `{ aad: id::text }`, or none. */
  const bound = (row: Row): { aad: string } | undefined => (rowBinding === 'id' ? rowAd(row) : undefined);
  /** The same for the value as stored before a migration. */
  const previouslyBound = (row: Row): { aad: string } | undefined => (previousRowBinding === 'id' ? rowAd(row) : undefined);

  const contextTable = options.contextTable ?? table.name;
  const contextColumn = options.contextColumn ?? target.name;
  const contextVersion = options.contextVersion;
  const baseContext = new EncryptionContext({ table: contextTable, column: contextColumn, version: contextVersion });
  const contexts = new Map<string, EncryptionContext>();
  const contextFor = (tenantValue: unknown): EncryptionContext => {
    if (tenantValue === null || tenantValue === undefined) return baseContext;
    const key = String(tenantValue);
    let ctx = contexts.get(key);
    if (ctx === undefined) {
      ctx = baseContext.withTenant(key);
      contexts.set(key, ctx);
    }
    return ctx;
  };

  // Compound blind indexes hash other columns of the row too (their field names are column names).
  // An encrypted one is decrypted through the schema; without a schema only plaintext columns can be
  // fields, and a field that holds ciphertexts is refused rather than hashed as it is.
  const fieldColumns = [...new Set((options.blindIndexes ?? []).flatMap((b) => b.index?.fields ?? []))]
    .filter((name) => name !== source.name && name !== target.name)
    .map((name) => requireColumn(info, name, 'blind-index field'));
  const schema = options.schema;
  const fieldTable = schema !== undefined && fieldColumns.some((c) => schema.columns.has(c.name)) ? await EncryptedTable.open(vault.keyring, schema) : undefined;
  const fieldSlots = new Map(fieldColumns.map((c, k) => [c.name, `f${k}` as const]));
  const fieldValue = (name: string, plain: unknown, row: Row): unknown => {
    if (name === source.name || name === target.name) return plain;
    const raw = row[fieldSlots.get(name)!];
    if (raw === null || raw === undefined) return null;
    if (fieldTable !== undefined && schema!.columns.has(name)) {
      const encrypted = { [schema!.id]: row.id, [name]: raw, ...(schema!.tenant === undefined ? {} : { [schema!.tenant]: row.t ?? null }) };
      return fieldTable.decryptRow(encrypted)[name];
    }
    if (isEncrypted(raw)) {
      throw new JobSetupError(ERROR_CODES.input, `blind-index field ${quoteIdent(name)} holds ciphertexts; give the job the table schema (--schema) so that it can read them`);
    }
    return raw;
  };
  const lookups = makeLookups(info, options, target.name, contextTable, contextVersion, fieldValue);
  let importer: ((stored: string | Uint8Array, tenant: unknown) => string | Buffer) | undefined;
  if (mode === 'import') {
    const rust = options as ImportRustColumnOptions;
    const declaredType = options.schema?.columns.get(target.name)?.type;
    if (rust.valueType !== undefined && rust.valueType !== 'string' && rust.valueType !== 'bytes') {
      throw new SifreDBError(ERROR_CODES.input, "valueType must be 'string' or 'bytes'");
    }
    if (rust.valueType !== undefined && declaredType !== undefined && rust.valueType !== declaredType) {
      throw new SifreDBError(ERROR_CODES.input, `valueType ${rust.valueType} contradicts the schema of ${target.name} (${declaredType})`);
    }
    const encoding = rust.rustTextEncoding ?? 'auto';
    if (encoding !== 'auto' && encoding !== 'hex' && encoding !== 'base64') {
      throw new SifreDBError(ERROR_CODES.input, "rustTextEncoding must be 'auto', 'hex' or 'base64'");
    }
    const asString = (declaredType ?? rust.valueType ?? 'string') === 'string';
    const rustVersion = rust.rustContextVersion ?? contextVersion ?? 1;
    importer = (stored, tenant) => {
      const context = { tenant: tenant === null || tenant === undefined ? undefined : String(tenant), table: contextTable, column: contextColumn, version: rustVersion };
      const bytes = openStoredRustValue(rust.rustVault, stored, context, encoding);
      if (!asString) return bytes;
      try {
        return decodeUtf8(bytes, 'the Rust plaintext');
      } finally {
        bytes.fill(0);
      }
    };
    if (rust.rustBlindIndex !== undefined) lookups.push(rustBlindIndexLookup(info, rust.rustBlindIndex, contextTable, contextColumn));
  }
  const written = new Set([target.name, ...lookups.map((l) => l.column.name)]);
  if (written.size !== 1 + lookups.length || written.has(id.name) || (tenant !== undefined && written.has(tenant.name))) {
    throw new SifreDBError(ERROR_CODES.input, 'the value, lookup, id and tenant columns must all be different');
  }

  const schemaColumn = options.schema?.columns.get(target.name);
  if (schemaColumn !== undefined) {
    if (schemaColumn.storage !== target.kind) {
      throw new SifreDBError(ERROR_CODES.schema, `column ${quoteIdent(target.name)} is ${target.type} but the schema stores ${schemaColumn.storage === 'text' ? 'the sdb1: text form (TEXT)' : 'the binary envelope (BYTEA)'}`);
    }
    const read = source.kind === 'text' ? 'string' : 'bytes';
    if (mode === 'import' && schemaColumn.type !== 'string' && schemaColumn.type !== 'bytes') {
      throw new SifreDBError(ERROR_CODES.schema, `import-rust writes the Rust plaintext bytes as a string or as bytes, but the schema declares ${target.name} as ${schemaColumn.type}`);
    }
    if (mode === 'encrypt' && schemaColumn.type !== read) {
      throw new SifreDBError(
        ERROR_CODES.schema,
        `encrypt-column encrypts a ${source.type} column's values as ${read}, but the schema declares ${target.name} as ${schemaColumn.type}; write such a column through EncryptedTable`,
      );
    }
  }
  const valueSettings: StoredColumnSettings = {
    kind: 'value',
    type: schemaColumn?.type ?? null,
    mode: vault instanceof DeterministicVault ? 'deterministic' : 'randomized',
    storage: target.kind === 'bytea' ? 'bytea' : 'text',
    // A row-binding migration reads what was recorded before it.
    rowBinding: previousRowBinding === 'id',
    tenantColumn: tenant?.name ?? null,
    context: { table: contextTable, column: contextColumn, version: contextVersion ?? 1 },
  };
  const configured: SettingsRecord[] = [
    { column: target.name, settings: valueSettings },
    ...lookups.flatMap((l) => (l.settings === undefined ? [] : [{ column: l.column.name, settings: l.settings }])),
  ];
  const recorded = await readRecordedSettings(db, options.table, info);
  const settingsRecorded = recorded !== undefined && recorded.has(target.name);
  if (recorded !== undefined) {
    const mismatches = compareSettings(recorded, configured, [target.name]);
    if (mismatches.length > 0) {
      throw new SifreDBError(
        ERROR_CODES.schema,
        `the job's settings for ${table.sql}.${target.name} differ from those its data was written with (${SETTINGS_TABLE}); nothing was written: ` +
          mismatches.map((m) => m.message).join('; '),
      );
    }
  }

  const wantText = target.kind === 'text';
  const encryptAs = (value: unknown, ctx: EncryptionContext, rowOptions?: { aad: string }): string | Buffer =>
    wantText
      ? vault.encryptToString(value as EncryptableValue, ctx, rowOptions)
      : vault.encrypt(value as EncryptableValue, ctx, rowOptions);
  const lookupValues = (value: unknown, ctx: EncryptionContext, row: Row) => lookups.map((l) => l.compute(value, ctx, row));

  // A row's stored lookups (written by the application or an earlier job) must be what this job
  // computes from the row's plaintext under the row's key version; otherwise the job's settings are
  // not the data's, and rewriting the lookups would make the application's queries miss.
  const verifyLookups = options.verifyLookups !== false;
  const checkStored = (row: Row, plain: unknown, ctx: EncryptionContext, version: number | undefined): LookupMismatch | undefined => {
    if (!verifyLookups) return undefined;
    for (let j = 0; j < lookups.length; j++) {
      const stored = row[`l${j}`];
      if (stored === null || stored === undefined || lookups[j]!.holds(plain, ctx, version, stored, row)) continue;
      return new LookupMismatch(j, { value: plain as string, ctx, version: version ?? vault.keyring.currentVersionFor(ctx), stored });
    }
    return undefined;
  };

  // One row at a time: the path for encrypt-column, for rows with lookup columns (they need the
  // plaintext), and for a batch in which the async batch call failed, so that each bad row is
  // reported on its own while the others go through.
  const transformRow = (row: Row): Outcome => {
    try {
      const value = row.v;
      const ctx = contextFor(row.t);
      const rowOptions = bound(row);
      if (mode === 'reencrypt') {
        if (!(typeof value === 'string' || value instanceof Uint8Array)) throw notAValue(value);
        if (migrating) {
          // Read the value as it was bound before and rewrite it as it is bound now, whatever its
          // key version. When it does not open that way it may already be migrated (a rerun after a
          // crash): the checks below then skip it if it opens under the new binding (re-encrypting
          // it if its key is old), and report it otherwise.
          const previous = previouslyBound(row);
          try {
            if (lookups.length === 0) {
              return { next: vault.reencrypt(value, ctx, { ...rowOptions, previousAad: previous?.aad ?? null }), lookups: [] };
            }
            const plain = vault.decrypt(value, ctx, previous);
            return checkStored(row, plain, ctx, headerVersion(value)) ?? { next: encryptAs(plain, ctx, rowOptions), lookups: lookupValues(plain, ctx, row) };
          } catch (error) {
            if (asSifreDBError(error).code !== ERROR_CODES.auth) throw error;
          }
        }
        if (!vault.needsReencryption(value, ctx)) {
          if (lookups.some((_, j) => row[`l${j}`] === null)) {
            // Current, but a lookup column is empty (a lookup added later): fill it, keep the value.
            const plain = vault.decrypt(value, ctx, rowOptions);
            return checkStored(row, plain, ctx, headerVersion(value)) ?? { next: value as string | Buffer, lookups: lookupValues(plain, ctx, row), filled: true };
          }
          // With row binding a current ciphertext must still open under its row's id: one moved
          // from another row is reported, not counted as done. In a migration every skipped row
          // must open under the new binding.
          if (rowOptions !== undefined || migrating) vault.decryptBytes(value, ctx, rowOptions).fill(0);
          return 'skip';
        }
        if (lookups.length === 0) return { next: vault.reencrypt(value, ctx, rowOptions), lookups: [] };
        const plain = vault.decrypt(value, ctx, rowOptions);
        return checkStored(row, plain, ctx, headerVersion(value)) ?? { next: encryptAs(plain, ctx, rowOptions), lookups: lookupValues(plain, ctx, row) };
      }
      if (importer !== undefined) {
        if (!(typeof value === 'string' || value instanceof Uint8Array)) throw notAValue(value);
        if (isEncrypted(value)) {
          try {
            vault.decryptBytes(value, ctx, rowOptions).fill(0);
            return 'skip';
          } catch (error) {
            // Raw Rust bytes can begin like a v1 header (about 1 in 5.6 million); text cannot, as
            // hex and base64 have no ':'. So only a BYTEA value goes on to be read as Rust's.
            if (typeof value === 'string') throw error;
          }
        }
        const plain = importer(value, row.t);
        return checkStored(row, plain, ctx, undefined) ?? { next: encryptAs(plain, ctx, rowOptions), lookups: lookupValues(plain, ctx, row) };
      }
      if (isEncrypted(value)) {
        // Well-formed is not enough to leave a value alone: it must open under this vault and
        // context (and row id, with row binding). Anything else (another key or context, a
        // plaintext shaped like a ciphertext) is reported as a failed row instead of being counted
        // as done.
        vault.decryptBytes(value as string | Uint8Array, ctx, rowOptions).fill(0);
        return 'skip';
      }
      if (!(typeof value === 'string' || value instanceof Uint8Array)) throw notAValue(value);
      return checkStored(row, value, ctx, undefined) ?? { next: encryptAs(value, ctx, rowOptions), lookups: lookupValues(value, ctx, row) };
    } catch (error) {
      if (error instanceof JobSetupError) throw error;
      return asSifreDBError(error);
    }
  };

  // Re-encryption without lookup columns — a key rotation's bulk — goes through the vault's async
  // batch API: one native call per context and batch, on the libuv pool, so the event loop keeps
  // feeding PostgreSQL while the ciphers run. A batch that fails falls back to row by row.
  const transform = async (rows: readonly Row[]): Promise<Outcome[]> => {
    if (mode !== 'reencrypt' || lookups.length > 0 || bindRows) return rows.map(transformRow);
    const outcomes = new Array<Outcome>(rows.length);
    const groups = new Map<EncryptionContext, number[]>();
    const batchable = (value: unknown, ctx: EncryptionContext): boolean => {
      try {
        return (typeof value === 'string' || value instanceof Uint8Array) && vault.needsReencryption(value, ctx);
      } catch {
        return false; // not a ciphertext: transformRow reports it
      }
    };
    rows.forEach((row, i) => {
      const ctx = contextFor(row.t);
      if (!batchable(row.v, ctx)) {
        outcomes[i] = transformRow(row);
        return;
      }
      const group = groups.get(ctx);
      if (group === undefined) groups.set(ctx, [i]);
      else group.push(i);
    });
    for (const [ctx, indexes] of groups) {
      try {
        const next = await vault.reencryptManyAsync(indexes.map((i) => rows[i]!.v as string | Uint8Array), ctx);
        indexes.forEach((rowIndex, j) => (outcomes[rowIndex] = { next: next[j]!, lookups: [] }));
      } catch {
        for (const i of indexes) outcomes[i] = transformRow(rows[i]!);
      }
    }
    return outcomes;
  };

  const ref = (c: ColumnInfo) => `t.${quoteIdent(c.name)}`;
  const sets = [target, ...lookups.map((l) => l.column)].map((c, i) => `${quoteIdent(c.name)} = v.c${i}`);
  const arrays = [
    `$1::${id.type}[]`,
    `$2::${source.type}[]`,
    `$3::${target.type}[]`,
    ...lookups.map((l, i) => `$${4 + i}::${l.column.type}[]`),
  ];
  const names = ['id', 'old', ...[target, ...lookups].map((_, i) => `c${i}`)];
  const updateSql =
    `UPDATE ${table.sql} AS t SET ${sets.join(', ')}
       FROM unnest(${arrays.join(', ')}) AS v(${names.join(', ')})
      WHERE ${ref(id)} = v.id AND ${ref(source)} = v.old` + (target === source ? '' : ` AND ${ref(target)} IS NULL`);

  const src = quoteIdent(source.name);
  const scanFilter = `${src} IS NOT NULL` + (target === source ? '' : ` AND ${quoteIdent(target.name)} IS NULL`);
  // With a single provider every tenant's current version is the same, so the header filter holds
  // with a tenant column too; only a router can give tenants different current versions.
  const headerSweep = sweepFilter(mode === 'import' ? 'encrypt' : mode, source, target, vault, tenant !== undefined && vault.keyring.routesByTenant);
  // A row on the current key version whose lookup column is empty still needs work (its lookup).
  const emptyLookups = mode === 'reencrypt' ? lookups.map((l) => `${quoteIdent(l.column.name)} IS NULL`) : [];
  const sweep =
    headerSweep.sql === '' || emptyLookups.length === 0 ? headerSweep : { sql: `(${headerSweep.sql} OR ${emptyLookups.join(' OR ')})`, params: headerSweep.params };
  return {
    db,
    info,
    id,
    source,
    target,
    tenant,
    bindRows,
    migrating,
    lookups,
    fieldColumns,
    settingsRecorded,
    async recordMigration() {
      if (!migrating || !settingsRecorded) return;
      await updateRecordedSettings(db, options.table!, target.name, { ...(recorded!.get(target.name) as ValueColumnSettings), rowBinding: rowBinding === 'id' });
    },
    scanFilter: scanFilter,
    sweepFilter: sweep.sql === '' || migrating ? scanFilter : `${scanFilter} AND ${sweep.sql}`,
    sweepParams: sweep.sql === '' || migrating ? [] : sweep.params,
    // encrypt-column's scan filter already leaves out done rows when it writes into a target column.
    pendingFilter: mode !== 'reencrypt' || (sweep.sql !== '' && !migrating),
    updateSql,
    transform,
    async lookupMismatch(outcomes) {
      const found = outcomes.filter((o): o is LookupMismatch => o instanceof LookupMismatch);
      if (found.length === 0) return undefined;
      const lookup = lookups[found[0]!.lookup]!;
      const samples = found.filter((m) => m.lookup === found[0]!.lookup).slice(0, 4).map((m) => m.sample);
      return new SifreDBError(
        ERROR_CODES.schema,
        `${lookup.column.name}: ${found.length} of ${outcomes.length} rows of a batch hold lookup values that differ from what this job computes with ${await lookup.explain(samples)}. ` +
          'The job stopped and wrote nothing of this batch; configure the job as the data was written (or use --schema)',
      );
    },
    diagnose: makeDiagnosis({
      where: `${options.table}.${source.name}`,
      vault,
      context: tenant === undefined ? baseContext.toString() : `<${tenant.name}>|${baseContext.toString()}`,
      tenantColumn: tenant?.name,
      rowBinding,
      previousRowBinding: migrating ? previousRowBinding : undefined,
      rust: mode === 'import',
    }),
  };
}

interface JobSetup {
  /** `table.column`, as the caller named them. */
  readonly where: string;
  readonly vault: BaseVault;
  /** The context in use, as displayed (`table|column|v1`, with a `<tenant column>|` prefix). */
  readonly context: string;
  readonly tenantColumn: string | undefined;
  readonly rowBinding: 'id' | 'none';
  /** Set in a row-binding migration. */
  readonly previousRowBinding: 'id' | 'none' | undefined;
  /** An import of Rust ciphertexts: the key that failed is the Rust one. */
  readonly rust?: boolean;
}

/**
 * {@link Plan.diagnose}: a first batch whose values all fail alike means the job itself is set up
 * wrong (context, tenant, binding, keys or vault kind), and every further row would fail the same
 * way; one error naming the setup in use replaces thousands of identical row reports.
 */
function makeDiagnosis(setup: JobSetup): Plan['diagnose'] {
  const deterministic = setup.vault instanceof DeterministicVault;
  const algorithmOf = (value: unknown): string | undefined => {
    try {
      return inspect(value as string | Uint8Array).algorithm;
    } catch {
      return undefined;
    }
  };
  const otherKind = (algorithm: string | undefined) =>
    algorithm !== undefined && (algorithm === 'aes-256-siv') !== deterministic;
  return (rows, outcomes) => {
    const failed: { row: Row; error: SifreDBError }[] = [];
    let values = 0;
    outcomes.forEach((outcome, i) => {
      if (outcome === 'skip') return;
      values += 1;
      if (outcome instanceof SifreDBError) failed.push({ row: rows[i]!, error: outcome });
    });
    if (values < MIN_DIAGNOSED_VALUES || failed.length !== values) return undefined;
    if (failed.every((f) => f.error.code === ERROR_CODES.auth)) return authDiagnosis(setup, values);
    const algorithms = new Set(failed.map((f) => algorithmOf(f.row.v)));
    if (failed.every((f) => f.error.code === ERROR_CODES.format) && [...algorithms].every(otherKind)) {
      const found = deterministic ? `randomized (${[...algorithms].join(', ')})` : 'deterministic (AES-SIV)';
      const fix = deterministic ? 'pass a Vault (CLI: without --deterministic)' : 'pass a DeterministicVault (CLI: --deterministic)';
      return new SifreDBError(
        ERROR_CODES.format,
        `column ${setup.where} holds ${found} ciphertexts but the job was given a ${deterministic ? 'DeterministicVault' : 'Vault'}; ` +
          `${fix}. All ${values} values of the first batch failed; nothing was written`,
      );
    }
    return undefined;
  };
}

function authDiagnosis(setup: JobSetup, values: number): SifreDBError {
  const causes = [
    `the context in use is ${setup.context} (values written under another table, column or version need ` +
      '--context-table / --context-column / --context-version)',
    setup.tenantColumn === undefined
      ? 'no tenant column was given: the values may have been written with a tenant: pass --tenant-column (tenantColumn)'
      : `each row's tenant is read from column ${quoteIdent(setup.tenantColumn)}: the values may have been written without a tenant, or under other tenant ids`,
    setup.previousRowBinding !== undefined
      ? `the values are read ${setup.previousRowBinding === 'id' ? 'bound to their row id' : 'unbound'} to be ${setup.rowBinding === 'id' ? 'bound' : 'unbound'} (row-binding migration)`
      : setup.rowBinding === 'id'
        ? 'rows are read bound to their id (--bind-row): values written unbound need --bind-row --from-unbound (previousRowBinding), or no --bind-row'
        : 'rows are read unbound (no --bind-row): values bound to their row id need --bind-row (rowBinding)',
    setup.rust
      ? 'the Rust key (--rust-deterministic-key) may not be the one the values were written with, or the Rust context version differs (--rust-context-version); the Rust context is tenant|table|column|v<version>'
      : 'the key store may not be the one the values were written with',
  ];
  return new SifreDBError(
    ERROR_CODES.auth,
    `all ${values} values of the first batch of ${setup.where} failed with ${ERROR_CODES.auth} (wrong key or context), ` +
      `so the job stopped and wrote nothing. Likely causes: ${causes.map((c, i) => `(${i + 1}) ${c}`).join('; ')}`,
  );
}

function notAValue(value: unknown): SifreDBError {
  return new SifreDBError(ERROR_CODES.input, `the stored value is ${value === null ? 'null' : typeof value}, not text or bytes`);
}

/** The key version in a ciphertext's header. */
function headerVersion(value: unknown): number {
  return parseHeader(envelopeBytes(value)).keyVersion;
}

function makeLookups(
  info: TableInfo,
  options: ColumnJobOptions,
  of: string,
  contextTable: string,
  contextVersion: number | undefined,
  fieldValue: (name: string, plain: unknown, row: Row) => unknown,
): Lookup[] {
  const lookups: Lookup[] = [];
  for (const { index, column: name } of options.blindIndexes ?? []) {
    const column = requireColumn(info, name, 'blind-index');
    if (typeof index?.compute !== 'function') throw new SifreDBError(ERROR_CODES.input, `blind index for ${name} is not a BlindIndex`);
    if (column.kind === 'integer' && index.bits > column.intBits) {
      throw new SifreDBError(
        ERROR_CODES.input,
        `blind index ${JSON.stringify(index.name)} has ${index.bits} bits; ${column.type} column ${quoteIdent(name)} holds at most ${column.intBits}`,
      );
    }
    if (column.kind === 'other') {
      throw new SifreDBError(ERROR_CODES.input, `blind-index column ${quoteIdent(name)} is ${column.type}; use an integer type, BYTEA or TEXT`);
    }
    const storage = column.kind === 'integer' ? 'integer' : column.kind === 'bytea' ? 'bytea' : 'text';
    const compound = index.fields.length > 0;
    const indexable = (value: unknown): value is string | number | bigint =>
      typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint';
    /** What the index hashes for a row: its value, or the record of a compound index's fields (null when one is null). */
    const input = (plain: unknown, row: Row): BlindIndexValue | null => {
      if (!compound) return indexable(plain) ? plain : null;
      const record: Record<string, string | number | bigint> = {};
      for (const field of index.fields) {
        const value = fieldValue(field, plain, row);
        if (value === null || value === undefined) return null;
        if (!indexable(value)) throw new SifreDBError(ERROR_CODES.input, `blind-index field ${quoteIdent(field)} holds a ${typeof value}, which cannot be indexed`);
        record[field] = value;
      }
      return record;
    };
    lookups.push({
      column,
      settings: {
        kind: 'blind-index',
        of,
        name: index.name,
        bits: index.bits,
        transforms: index.transforms.map(transformName),
        fields: index.fields.map((field, i) => ({ column: field, transforms: (index.fieldTransforms[i] ?? []).map(transformName) })),
        storage,
      },
      holds(value, ctx, version, stored, row) {
        const hashed = input(value, row);
        if (hashed === null) return false;
        if (version !== undefined) return sameTerm(index.computeAt(hashed, ctx, version), stored, storage);
        return index.queryTerms(hashed, ctx).some((term) => sameTerm(term, stored, storage));
      },
      async explain(samples) {
        if (compound) return `compound blind index ${index.name} (${index.bits} bits, fields ${index.fields.join(', ')}): check its fields and their transforms`;
        const why = await diagnoseTerms(index.keyring, index, samples, storage);
        return `blind index ${index.name} (${describeIndex(index.bits, index.transforms)}): ${why}`;
      },
      compute(value, ctx, row) {
        if (!compound && !indexable(value)) {
          throw new SifreDBError(ERROR_CODES.input, `a ${value instanceof Uint8Array ? 'bytes' : typeof value} value cannot be blind-indexed`);
        }
        const hashed = input(value, row);
        if (hashed === null) return null;
        const term = index.compute(hashed, ctx);
        // Integers go as decimal text: exact for 63-bit terms, and accepted for every integer type.
        return column.kind === 'integer' ? String(term.int) : column.kind === 'bytea' ? term.bytes : term.hex;
      },
    });
  }
  for (const { vault, column: name, contextColumn: own } of options.deterministicColumns ?? []) {
    const column = requireColumn(info, name, 'deterministic');
    if (!(vault instanceof DeterministicVault)) {
      throw new SifreDBError(ERROR_CODES.input, `the vault for deterministic column ${name} must be a DeterministicVault`);
    }
    if (column.kind !== 'text' && column.kind !== 'bytea') {
      throw new SifreDBError(ERROR_CODES.input, `deterministic column ${quoteIdent(name)} is ${column.type}; it must be TEXT/VARCHAR or BYTEA`);
    }
    const base = own === undefined ? undefined : new EncryptionContext({ table: contextTable, column: own, version: contextVersion });
    const lookupContext = (ctx: EncryptionContext) => (base === undefined ? ctx : ctx.tenant === undefined ? base : base.withTenant(ctx.tenant));
    lookups.push({
      column,
      settings: {
        kind: 'deterministic-lookup',
        of,
        contextColumn: own ?? options.contextColumn ?? of,
        storage: column.kind === 'bytea' ? 'bytea' : 'text',
      },
      holds(value, ctx, _version, stored) {
        try {
          return sameValue(vault.decrypt(stored as string | Uint8Array, lookupContext(ctx)), value);
        } catch {
          return false;
        }
      },
      async explain() {
        return `deterministic lookup (context column ${own ?? options.contextColumn ?? of}): the stored values do not decrypt to the row's value under that context; the context column, the tenant column or the key store may differ`;
      },
      compute(value, ctx) {
        const dctx = lookupContext(ctx);
        const envelope = vault.encrypt(value as EncryptableValue, dctx);
        return column.kind === 'text' ? toText(envelope) : envelope;
      },
    });
  }
  return lookups;
}

/** The legacy blind-index column of an import (see {@link ImportRustColumnOptions.rustBlindIndex}). */
function rustBlindIndexLookup(info: TableInfo, spec: { column: string; keyDirectory: RustKeyDirectory }, contextTable: string, contextColumn: string): Lookup {
  const column = requireColumn(info, spec.column, 'Rust blind-index');
  if (column.kind !== 'bytea' && column.kind !== 'text') {
    throw new SifreDBError(ERROR_CODES.input, `Rust blind-index column ${quoteIdent(column.name)} is ${column.type}; it must be BYTEA or TEXT (hex)`);
  }
  if (typeof spec.keyDirectory?.blindIndex !== 'function' || !spec.keyDirectory.hasPepper) {
    throw new SifreDBError(ERROR_CODES.key, 'the Rust blind-index column needs a Rust key directory with a pepper.key');
  }
  const term = (value: unknown, ctx: EncryptionContext): Buffer => {
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) throw new SifreDBError(ERROR_CODES.input, 'a legacy Rust term is of text or bytes');
    return spec.keyDirectory.blindIndex(value, { tenant: ctx.tenant, table: contextTable, column: contextColumn });
  };
  return {
    column,
    settings: undefined,
    compute: (value, ctx) => (column.kind === 'bytea' ? term(value, ctx) : term(value, ctx).toString('hex')),
    holds(value, ctx, _version, stored) {
      const computed = term(value, ctx);
      return stored instanceof Uint8Array ? computed.equals(stored) : typeof stored === 'string' && computed.toString('hex') === stored.toLowerCase();
    },
    async explain() {
      return `the legacy Rust blind index (first 16 bytes of HMAC-SHA256(pepper, value ‖ tenant|table|column), context ${contextTable}|${contextColumn}): check --rust-key-dir, --tenant-column and the context names`;
    },
  };
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The sweep's SQL filter: rows that may still need work, judged from the stored bytes alone.
 * - reencrypt, BYTEA: the 7 header bytes differ from the current (magic, format, algorithm, version).
 * - reencrypt, TEXT: the text form's first 15 characters carry the header: `sdb1:`, 8 characters for
 *   header bytes 0–5, one for the top 6 bits of byte 6 and one mixing its low 2 bits with the first
 *   nonce (or SIV) byte — hence 16 possible prefixes.
 * - encrypt-column in place: the value does not look like a ciphertext.
 * With a tenant column and a TenantKeyRouter the current version can differ per tenant, so no filter
 * is used.
 */
function sweepFilter(
  mode: 'reencrypt' | 'encrypt',
  source: ColumnInfo,
  target: ColumnInfo,
  vault: BaseVault,
  perTenant: boolean,
): { sql: string; params: unknown[] } {
  const col = quoteIdent(source.name);
  if (mode === 'encrypt') {
    if (target !== source) return { sql: '', params: [] };
    return source.kind === 'text'
      ? { sql: `${col} !~ '^sdb1:[A-Za-z0-9_-]+$'`, params: [] }
      : { sql: `substring(${col} from 1 for 2) IS DISTINCT FROM '\\x5301'::bytea`, params: [] };
  }
  if (perTenant) return { sql: '', params: [] };
  let version: number;
  try {
    version = vault.currentVersion;
  } catch {
    return { sql: '', params: [] };
  }
  const algorithm = vault instanceof DeterministicVault ? ALGORITHM.aesSiv : algorithmIdOf(vault);
  const header = Buffer.from([0x53, 0x01, algorithm, version >>> 24, (version >>> 16) & 0xff, (version >>> 8) & 0xff, version & 0xff]);
  if (source.kind === 'bytea') return { sql: `substring(${col} from 1 for 7) IS DISTINCT FROM $1::bytea`, params: [header] };
  const stem = `sdb1:${header.subarray(0, 6).toString('base64url')}${BASE64URL[header[6]! >> 2]}`;
  const high = (header[6]! & 3) << 4;
  const prefixes = Array.from({ length: 16 }, (_, i) => stem + BASE64URL[high | i]);
  return { sql: `NOT (left(${col}, 15) = ANY($1::text[]))`, params: [prefixes] };
}

function algorithmIdOf(vault: BaseVault): number {
  const name = (vault as { algorithm?: unknown }).algorithm;
  return name === 'xchacha20-poly1305' ? ALGORITHM.xchacha20Poly1305 : ALGORITHM.chacha20Poly1305;
}
