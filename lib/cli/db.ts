/** `sifredb reencrypt`, `sifredb encrypt-column` and `sifredb constraints`: the database commands. */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { BlindIndex } from '../blind-index/blind-index.js';
import {
  type BlindIndexColumn,
  type ColumnJobOptions,
  type DeterministicColumn,
  encryptColumn,
  importRustColumn,
  type JobResult,
  reencryptColumn,
} from '../db/column-job.js';
import { RustDeterministicVault } from '../rust-import/deterministic.js';
import { RustKeyDirectory } from '../rust-import/key-directory.js';
import { applyColumnConstraints, columnConstraints, constraintFor } from '../db/constraints.js';
import { type Database, openDatabase } from '../db/database.js';
import { parseTableName, quoteIdent } from '../db/schema.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { ResolvedColumn, TableSchema } from '../schema/definition.js';
import { readSchemaFile, schemaTable } from './schema.js';
import { inspect } from '../format/inspect.js';
import { Keyring } from '../keys/keyring.js';
import { AuditKeyFile, type AuditSigner } from '../keys/audit-keys.js';
import { hasAuditChain } from '../audit/chain.js';
import { openAuditKeyFile } from './kms.js';
import type { BaseVault } from '../vault/base-vault.js';
import { DeterministicVault } from '../vault/deterministic-vault.js';
import { Vault } from '../vault/vault.js';
import {
  closeProvider,
  type Command,
  count,
  EXIT,
  int,
  keysPath,
  list,
  openKeyProvider,
  Output,
  required,
  str,
  usageError,
  type Values,
} from './common.js';
import { ProgressReporter } from './progress.js';
import { parseTransforms } from './values.js';

const JOB_OPTIONS = {
  schema: { type: 'string' },
  db: { type: 'string' },
  table: { type: 'string' },
  column: { type: 'string' },
  'id-column': { type: 'string' },
  'bind-row': { type: 'boolean' },
  'tenant-column': { type: 'string' },
  'context-table': { type: 'string' },
  'context-column': { type: 'string' },
  'context-version': { type: 'string' },
  deterministic: { type: 'boolean' },
  algorithm: { type: 'string' },
  'blind-index': { type: 'string', multiple: true },
  'deterministic-column': { type: 'string', multiple: true },
  'batch-size': { type: 'string' },
  pipeline: { type: 'string' },
  pause: { type: 'string' },
  'no-skip-locked': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'audit-keys': { type: 'string' },
  actor: { type: 'string' },
  'kms-key': { type: 'string' },
  kms: { type: 'string', multiple: true },
  region: { type: 'string' },
} as const;

const JOB_HELP = `Options:
  --schema <file>                     the table schema (docs/SCHEMA.md): table, id and tenant columns,
                                      context, row binding, algorithm and lookup columns come from it;
                                      a flag that contradicts it is a usage error (exit 2)
  --db <url|path>                     postgres://… URL, or a PGlite data directory (or env SIFREDB_DB)
  --table <[schema.]table>            the table (names are case-sensitive)
  --column <column>                   the column (TEXT/VARCHAR: "sdb1:" text form; BYTEA: binary)
  --id-column <column>                unique key to page by (default id)
  --bind-row                          row binding: each ciphertext is bound to its row's id (id::text);
                                      values swapped between rows fail (read them with { aad: id })
  --tenant-column <column>            per-row tenant id, part of each row's encryption context
  --context-table <name>              table name in the encryption context (default: --table without schema)
  --context-column <name>             column name in the encryption context (default: the ciphertext column)
  --context-version <n>               context version (default 1)
  --deterministic                     the column holds deterministic (AES-SIV) ciphertexts (reencrypt reads
                                      this from the header of the column's first value when neither
                                      --deterministic nor --algorithm is given, and refuses a flag the
                                      header contradicts)
  --algorithm <name>                  randomized algorithm to write: chacha20-poly1305 (default) or xchacha20-poly1305
  --blind-index <name:column[:bits[:transforms]]>
                                      refresh a blind-index column in the same UPDATE (repeatable);
                                      column INTEGER/BIGINT (term as integer), BYTEA or TEXT (hex);
                                      bits default 16; transforms comma-separated (lowercase,uppercase,trim,digits,nfc,last4)
  --deterministic-column <column[:contextColumn]>
                                      refresh a deterministic lookup column (repeatable)
  --batch-size <n>                    rows per batch / transaction / UPDATE (default 2000)
  --pipeline <n>                      batches in flight on PostgreSQL (default 2)
  --pause <ms>                        sleep between batches, to spare a busy database
  --no-skip-locked                    do not use FOR UPDATE SKIP LOCKED (then one process per table)
  --dry-run                           read and check every row, write nothing
  --audit-keys <file>                 sign the job's writes into the table's audit chain (docs/AUDIT.md):
                                      one signed update record per row written, in the batch's
                                      transaction; needs --schema. Default: env SIFREDB_AUDIT_KEYS,
                                      else <keys>.audit.json beside the keystore when it exists. A
                                      table with an audit chain is never written unsigned: without
                                      audit keys the job stops before writing (exit 4)
  --actor <name>                      who the records name as the writer (default sifredb-cli@<host>)
  --keys <path>                       key store (or env SIFREDB_KEYS)
  --json                              print the summary as JSON
  --quiet                             no progress output`;

const GUARANTEES = `Guarantees: keyset pagination by the id column (never OFFSET); one transaction and one UPDATE
per batch; a row is written only if it still holds the value read (compare-and-set), so concurrent
application writes are never overwritten; rows already done are skipped, so a killed job is just
run again; several processes can share a PostgreSQL table (FOR UPDATE SKIP LOCKED). A row that
cannot be processed is reported with its id and left untouched; the exit code is then 1. When
every value of the first batch (at least 10) fails alike — wrong key, context, tenant or row binding,
or deterministic values read as randomized — the job writes nothing and stops with one error naming
the likely causes (exit 4).`;

function parseBlindIndexSpec(spec: string): { name: string; column: string; bits: number; transforms: ReturnType<typeof parseTransforms> } {
  const [name, column, bits, transforms, ...rest] = spec.split(':');
  if (!name || !column || rest.length > 0) throw usageError(`--blind-index ${JSON.stringify(spec)}: expected name:column[:bits[:transforms]]`);
  const parsedBits = bits === undefined || bits === '' ? 16 : int({ bits }, 'bits', 8, 256)!;
  return { name, column, bits: parsedBits, transforms: parseTransforms(transforms) };
}

/**
 * The algorithm in the header of the column's first non-null value, or `undefined` when there is
 * none or it is not a ciphertext. A table or column that does not exist is left for the job to
 * report (it says so precisely).
 */
async function firstAlgorithm(db: Database, table: string, column: string): Promise<string | undefined> {
  let value: unknown;
  try {
    const col = quoteIdent(column);
    const { rows } = await db.query<{ v: unknown }>(`SELECT ${col} AS v FROM ${parseTableName(table).sql} WHERE ${col} IS NOT NULL LIMIT 1`);
    value = rows[0]?.v;
  } catch {
    return undefined;
  }
  try {
    return value === undefined ? undefined : inspect(value as string | Uint8Array).algorithm;
  } catch {
    return undefined;
  }
}

/**
 * reencrypt: whether the column holds deterministic values, from the header of its first value when
 * neither --deterministic nor --algorithm says; a flag the header contradicts is a usage error, found
 * before any row is read.
 */
async function columnIsDeterministic(db: Database, values: Values, table: string, column: string, algorithm: string | undefined): Promise<boolean> {
  const found = await firstAlgorithm(db, table, column);
  const siv = found === 'aes-256-siv';
  if (values.deterministic === true && found !== undefined && !siv) {
    throw usageError(`--deterministic: column ${table}.${column} holds randomized (${found}) ciphertexts, says the header of its first value; drop --deterministic`);
  }
  if (algorithm !== undefined && siv) {
    throw usageError(`--algorithm ${algorithm}: column ${table}.${column} holds deterministic (AES-SIV) ciphertexts, says the header of its first value; use --deterministic instead`);
  }
  return values.deterministic === true || siv;
}

/**
 * With --schema, the table and its ciphertext columns (encrypted and deterministic lookup columns,
 * or the --column ones among them) and their storage.
 */
async function schemaCiphertextColumns(values: Values): Promise<{ table: string; columns: readonly { column: string; storage: 'text' | 'bytea' }[] } | undefined> {
  if (str(values, 'schema') === undefined) return undefined;
  const schema = schemaTable(await readSchemaFile(values), str(values, 'table'));
  const all = schema.ciphertextColumns;
  const wanted = list(values, 'column');
  for (const name of wanted) {
    if (!all.some((c) => c.column === name)) throw usageError(`--column ${name}: not a ciphertext column of ${schema.table} in the schema (${all.map((c) => c.column).join(', ')})`);
  }
  return { table: schema.table, columns: wanted.length === 0 ? all : all.filter((c) => wanted.includes(c.column)) };
}

/** Flags that the schema answers; given with --schema, each must say what the schema says. */
const SCHEMA_FLAGS: readonly { flag: string; declared(schema: TableSchema, column: ResolvedColumn): string | boolean | undefined }[] = [
  { flag: 'id-column', declared: (s) => s.id },
  { flag: 'tenant-column', declared: (s) => s.tenant },
  { flag: 'context-table', declared: (_s, c) => c.context.table },
  { flag: 'context-column', declared: (_s, c) => c.context.column },
  { flag: 'context-version', declared: (_s, c) => String(c.context.version) },
  { flag: 'bind-row', declared: (_s, c) => c.rowBinding },
  { flag: 'deterministic', declared: (_s, c) => c.mode === 'deterministic' },
  { flag: 'algorithm', declared: (_s, c) => (c.mode === 'deterministic' ? undefined : c.algorithm) },
];

/**
 * The schema and column of a job run with --schema (the column written: --target-column for
 * encrypt-column, else --column), after checking that no flag contradicts it.
 */
async function jobSchema(values: Values, mode: JobKind): Promise<{ schema: TableSchema; column: ResolvedColumn } | undefined> {
  if (str(values, 'schema') === undefined) return undefined;
  const schema = schemaTable(await readSchemaFile(values), str(values, 'table'));
  let column: ResolvedColumn;
  try {
    column = schema.column((mode === 'encrypt' ? str(values, 'target-column') : undefined) ?? required(values, 'column'));
  } catch (error) {
    if (error instanceof SifreDBError && error.code === ERROR_CODES.input) throw usageError(`--column: ${error.message}`);
    throw error;
  }
  for (const name of ['blind-index', 'deterministic-column']) {
    if (list(values, name).length > 0) throw usageError(`--${name}: with --schema the lookup columns come from the schema (${schema.table}.${column.name})`);
  }
  for (const { flag, declared } of SCHEMA_FLAGS) {
    const given = values[flag];
    if (given === undefined || given === false) continue;
    const expected = declared(schema, column);
    if (given !== expected) {
      throw usageError(`--${flag}${given === true ? '' : ` ${String(given)}`} contradicts the schema: ${schema.table}.${column.name} has ${flag} ${expected === undefined || expected === false ? 'unset' : String(expected)}`);
    }
  }
  return { schema, column };
}

/** With --schema, the header of the column's first value must be of the declared mode. */
async function schemaModeHolds(db: Database, table: string, column: string, mode: 'randomized' | 'deterministic'): Promise<void> {
  const found = await firstAlgorithm(db, table, column);
  if (found === undefined || (found === 'aes-256-siv') === (mode === 'deterministic')) return;
  throw new SifreDBError(
    ERROR_CODES.schema,
    `${table}.${column} holds ${found === 'aes-256-siv' ? 'deterministic (AES-SIV)' : `randomized (${found})`} ciphertexts, says the header of its first value, but the schema declares it ${mode}; nothing was written`,
  );
}

/** The three column jobs: re-encrypt, encrypt a plaintext column, import Rust ciphertexts. */
type JobKind = 'reencrypt' | 'encrypt' | 'import';

/** import-rust's own flags, read and checked before anything is opened. */
function rustFlags(values: Values) {
  const keyFile = required(values, 'rust-deterministic-key');
  const keyDir = str(values, 'rust-key-dir');
  const blindIndexColumn = str(values, 'rust-blind-index-column');
  if (blindIndexColumn !== undefined && keyDir === undefined) throw usageError('--rust-blind-index-column needs --rust-key-dir (its pepper.key)');
  const encoding = str(values, 'rust-text-encoding') ?? 'auto';
  if (encoding !== 'auto' && encoding !== 'hex' && encoding !== 'base64') throw usageError('--rust-text-encoding must be auto, hex or base64');
  const valueType = str(values, 'value-type');
  if (valueType !== undefined && valueType !== 'string' && valueType !== 'bytes') throw usageError('--value-type must be string or bytes');
  return {
    keyFile,
    keyDir,
    blindIndexColumn,
    encoding: encoding as 'auto' | 'hex' | 'base64',
    valueType: valueType as 'string' | 'bytes' | undefined,
    contextVersion: int(values, 'rust-context-version', 0, 0xffffffff),
  };
}

/**
 * The audit key file a job signs with: `--audit-keys`, else SIFREDB_AUDIT_KEYS, else the file beside
 * the keystore (`<keys>.audit.json`) when there is one; `undefined`: the job does not sign.
 */
function jobAuditKeysPath(values: Values): { path: string; given: boolean } | undefined {
  const path = str(values, 'audit-keys') ?? (process.env.SIFREDB_AUDIT_KEYS || undefined);
  if (path !== undefined) return { path, given: true };
  const keystore = str(values, 'keys') ?? (process.env.SIFREDB_KEYS || undefined);
  if (keystore === undefined || keystore === '') return undefined;
  const beside = AuditKeyFile.pathBeside(keystore);
  return existsSync(beside) ? { path: beside, given: false } : undefined;
}

/** Opens the keys, vaults and indexes a job needs, and runs it with a progress display. */
async function runColumnJob(values: Values, mode: JobKind): Promise<number> {
  const out = new Output(values);
  const db = str(values, 'db') ?? (process.env.SIFREDB_DB || undefined);
  if (db === undefined || db === '') throw usageError('--db is required (a postgres:// URL or a PGlite directory; or env SIFREDB_DB)');
  const rust = mode === 'import' ? rustFlags(values) : undefined;
  const fromSchema = await jobSchema(values, mode);
  const table = fromSchema?.schema.table ?? required(values, 'table');
  const column = required(values, 'column');
  const algorithm = str(values, 'algorithm');
  if (algorithm !== undefined && algorithm !== 'chacha20-poly1305' && algorithm !== 'xchacha20-poly1305') {
    throw usageError('--algorithm must be chacha20-poly1305 or xchacha20-poly1305');
  }
  if (algorithm !== undefined && values.deterministic === true) throw usageError('--algorithm and --deterministic exclude each other');
  const batchSize = int(values, 'batch-size', 1, 1_000_000);
  const pipeline = int(values, 'pipeline', 1, 64);
  const pauseMs = int(values, 'pause', 0, 3_600_000);
  const biSpecs = list(values, 'blind-index').map(parseBlindIndexSpec);
  const detSpecs = list(values, 'deterministic-column').map((spec) => {
    const [col, contextColumn, ...rest] = spec.split(':');
    if (!col || rest.length > 0 || contextColumn === '') throw usageError(`--deterministic-column ${JSON.stringify(spec)}: expected column[:contextColumn]`);
    return { column: col, contextColumn };
  });
  const targetColumn = mode === 'encrypt' ? str(values, 'target-column') : undefined;
  if (values['from-unbound'] === true && values['bind-row'] !== true) {
    throw usageError('--from-unbound binds an unbound column to its rows; it needs --bind-row');
  }
  const contextVersion = int(values, 'context-version', 1, 0xffffffff);

  const auditKeys = jobAuditKeysPath(values);
  const actor = str(values, 'actor') ?? `sifredb-cli@${hostname()}`;
  if (actor === '') throw usageError('--actor must not be empty');
  if (auditKeys?.given === true && fromSchema === undefined) {
    throw usageError(`--audit-keys ${auditKeys.path}: a signed job needs --schema (each record lists every encrypted column of the row)`);
  }

  const provider = await openKeyProvider(values);
  let database: Database | undefined;
  let signer: AuditSigner | undefined;
  const controller = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals += 1;
    if (signals > 1) process.exit(EXIT.interrupted);
    out.note('stopping after the batches in flight (press Ctrl-C again to quit at once; rerun to resume)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const label = `${mode === 'reencrypt' ? 'reencrypt' : mode === 'encrypt' ? 'encrypt-column' : 'import-rust'} ${table}.${column}`;
  const progress = new ProgressReporter(label, !out.quiet);
  let rustVault: RustDeterministicVault | undefined;
  let rustKeys: RustKeyDirectory | undefined;
  try {
    if (rust !== undefined) {
      rustVault = await RustDeterministicVault.fromKeyFile(rust.keyFile);
      if (rust.keyDir !== undefined) rustKeys = await RustKeyDirectory.open(rust.keyDir);
      if (rustKeys !== undefined && rust.blindIndexColumn === undefined) {
        out.note(`${rust.keyDir}: read (current KEK ${rustKeys.currentKekId}); its pepper is used with --rust-blind-index-column only`);
      }
    }
    const keyring = await Keyring.open(provider);
    // Opened once for the header check and the job: opening a PGlite directory takes seconds.
    database = await openDatabase(db);
    // The key file beside the keystore signs only tables that are audited already (it must not
    // start a chain on a table nobody audits); a file given explicitly always signs.
    if (auditKeys !== undefined && fromSchema !== undefined && values['dry-run'] !== true && (auditKeys.given || (await hasAuditChain(database, table)))) {
      // The jobs' --kms wraps the keystore; the audit key file's wrap says where its own keys are.
      const { file, close } = await openAuditKeyFile(auditKeys.path, { ...values, kms: undefined, 'kms-key': undefined });
      signer = await file.signer().finally(close);
      out.note(`signing the job's writes with ${auditKeys.path} as ${actor}`);
    } else if (auditKeys !== undefined && fromSchema === undefined && values['dry-run'] !== true && (await hasAuditChain(database, table))) {
      throw usageError(`${table} is audited and ${auditKeys.path} could sign the job's writes, but a signed job needs --schema (each record lists every encrypted column of the row)`);
    }
    let vault: BaseVault;
    if (fromSchema !== undefined) {
      const declared = fromSchema.column;
      if (mode === 'reencrypt') await schemaModeHolds(database, table, column, declared.mode);
      vault = declared.mode === 'deterministic' ? await DeterministicVault.open(keyring) : await Vault.open(keyring, { algorithm: declared.algorithm as never });
    } else {
      const deterministic = mode === 'reencrypt' ? await columnIsDeterministic(database, values, table, column, algorithm) : values.deterministic === true;
      if (deterministic && values.deterministic !== true) out.note(`${table}.${column} holds deterministic (AES-SIV) ciphertexts: re-encrypting them as such`);
      vault = deterministic ? await DeterministicVault.open(keyring) : await Vault.open(keyring, { algorithm: algorithm as never });
    }
    const blindIndexes: BlindIndexColumn[] = await Promise.all(
      biSpecs.map(async (s) => ({ column: s.column, index: await BlindIndex.open(keyring, { name: s.name, bits: s.bits, transforms: s.transforms }) })),
    );
    const deterministicColumns: DeterministicColumn[] = [];
    if (detSpecs.length > 0) {
      const dvault = await DeterministicVault.open(keyring);
      for (const s of detSpecs) deterministicColumns.push({ vault: dvault, column: s.column, contextColumn: s.contextColumn });
    }
    const options: ColumnJobOptions & { vault: BaseVault; targetColumn?: string } = {
      db: database,
      table,
      column,
      schema: fromSchema?.schema,
      idColumn: str(values, 'id-column'),
      // Unset without the flag, so that a schema's row binding is not contradicted by its absence.
      rowBinding: values['bind-row'] === true ? 'id' : fromSchema === undefined ? 'none' : undefined,
      ...(values['from-unbound'] === true ? { previousRowBinding: 'none' as const } : {}),
      tenantColumn: str(values, 'tenant-column'),
      contextTable: str(values, 'context-table'),
      contextColumn: str(values, 'context-column'),
      contextVersion,
      blindIndexes,
      deterministicColumns,
      batchSize,
      pipeline,
      pauseMs,
      skipLocked: values['no-skip-locked'] !== true,
      dryRun: values['dry-run'] === true,
      onProgress: progress.update,
      signal: controller.signal,
      vault,
      targetColumn,
      ...(signer === undefined ? {} : { audit: { signer, actor } }),
    };
    const job =
      mode === 'reencrypt'
        ? reencryptColumn(options)
        : mode === 'encrypt'
          ? encryptColumn({ ...options, targetColumn })
          : importRustColumn({
              ...options,
              rustVault: rustVault!,
              rustContextVersion: rust!.contextVersion,
              rustTextEncoding: rust!.encoding,
              valueType: rust!.valueType,
              ...(rust!.blindIndexColumn === undefined ? {} : { rustBlindIndex: { column: rust!.blindIndexColumn, keyDirectory: rustKeys! } }),
            });
    const result = await job.catch((error: unknown) => {
      // The job's own diagnosis of a first batch that failed entirely ends with the key store, which
      // only the CLI can name.
      if (error instanceof SifreDBError && error.code === ERROR_CODES.auth) {
        const keys = mode === 'import' ? `--rust-deterministic-key ${rust!.keyFile}` : `--keys ${keysPath(values)}`;
        throw new SifreDBError(error.code, `${error.message} (${keys})`, { cause: error });
      }
      throw error;
    });
    progress.done();
    if (!result.settingsRecorded) out.note(`note: no settings recorded for ${table}.${column} (sifredb schema sql --apply records them); only the stored lookup terms were checked`);
    report(out, label, mode, result, values['from-unbound'] === true);
    if (result.aborted) return EXIT.interrupted;
    return result.failed > 0 ? EXIT.rowsFailed : EXIT.ok;
  } finally {
    progress.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    closeProvider(provider);
    signer?.close();
    rustVault?.destroy();
    rustKeys?.destroy();
    await database?.close().catch(() => undefined);
  }
}

/** The summary: stdout (text or JSON); each failed row on stderr. */
function report(out: Output, label: string, mode: JobKind, r: JobResult, binding = false): void {
  const verb = mode === 'reencrypt' ? 're-encrypted' : mode === 'encrypt' ? 'encrypted' : 'imported';
  const skippedWhy = binding ? 'already bound' : mode === 'reencrypt' ? 'already current' : mode === 'encrypt' ? 'already encrypted' : 'already format v1';
  out.result(r);
  for (const f of r.failures) out.note(`row ${f.id}: ${f.code}: ${f.message}`);
  if (r.failed > r.failures.length) out.note(`… and ${count(r.failed - r.failures.length)} more failed rows`);
  const head = r.dryRun ? `${label} (dry run, nothing written)` : r.aborted ? `${label} (stopped early; rerun to resume)` : label;
  out.line(head);
  out.line(`  scanned      ${count(r.scanned)}`);
  out.line(`  ${(r.dryRun ? `would be ${verb}` : verb).padEnd(12)} ${count(r.updated)}`);
  if (r.lookupsFilled > 0) out.line(`  (of which    ${count(r.lookupsFilled)} already current: only their empty lookup columns were filled)`);
  out.line(`  skipped      ${count(r.skipped)} (${skippedWhy})`);
  if (r.conflicts > 0) out.line(`  conflicts    ${count(r.conflicts)} (changed by the application meanwhile; its value was kept)`);
  out.line(`  failed       ${count(r.failed)}${r.failed > 0 ? ' (see above; those rows are untouched)' : ''}`);
  out.line(`  time         ${(r.elapsedMs / 1000).toFixed(1)} s, ${count(r.rowsPerSecond)} rows/s`);
}

export const reencrypt: Command = {
  name: 'reencrypt',
  summary: 'move every value of a column to the current key version',
  usage: `Usage: sifredb reencrypt --db <url|path> (--schema <file> | --table <t>) --column <c> [options]

Re-encrypts every value of the column that is not under the current key version, and refreshes the
row's blind-index and deterministic lookup columns in the same UPDATE. Run it after
\`sifredb keys rotate\`.

${JOB_HELP}
  --from-unbound                      with --bind-row: bind a column of unbound values to its rows.
                                      Every row is read unbound and rewritten bound to its id, even
                                      on the current key version; rows already bound are skipped (a
                                      rerun resumes), others are reported as failed

${GUARANTEES}

Exit codes: 0 done, 1 some rows failed, 2 usage, 3 keys, 4 the first batch failed entirely or the
job's settings differ from the data's (nothing written), 5 database, 6 schema file unreadable,
130 interrupted.`,
  options: { ...JOB_OPTIONS, 'from-unbound': { type: 'boolean' } },
  positionals: 0,
  run: ({ values }) => runColumnJob(values, 'reencrypt'),
};

export const encryptColumnCommand: Command = {
  name: 'encrypt-column',
  summary: 'encrypt an existing plaintext column (in place or into a new column)',
  usage: `Usage: sifredb encrypt-column --db <url|path> (--schema <file> | --table <t>) --column <c> [--target-column <c2>] [options]

The first migration: encrypts the plaintext values of a column in place, or into --target-column
(an existing, nullable TEXT or BYTEA column; rows whose target is set are skipped), filling its
blind-index and deterministic lookup columns. A value that already is a SifreDB ciphertext is
skipped, never encrypted twice. TEXT values are encrypted as strings, BYTEA values as bytes.
Afterwards, \`sifredb constraints --apply\` makes the database refuse plaintext in the column.

${JOB_HELP}
  --target-column <column>            write ciphertexts here instead of replacing the plaintext

${GUARANTEES}

Exit codes: 0 done, 1 some rows failed, 2 usage, 3 keys, 4 the first batch failed entirely or the
job's settings differ from the data's (nothing written), 5 database, 6 schema file unreadable,
130 interrupted.`,
  options: { ...JOB_OPTIONS, 'target-column': { type: 'string' } },
  positionals: 0,
  run: ({ values }) => runColumnJob(values, 'encrypt'),
};

export const importRustCommand: Command = {
  name: 'import-rust',
  summary: 'convert a column of SifreDB for Rust ciphertexts to format v1 in place',
  usage: `Usage: sifredb import-rust --db <url|path> (--schema <file> | --table <t>) --column <c> --rust-deterministic-key <file> [options]

Converts the values SifreDB for Rust's DeterministicVault wrote (crate sifredb 0.1.1: AES-256-SIV,
context tenant|table|column|v<version>, tenant "default" when NULL) into format v1, in place:
randomized (default) or deterministic (--deterministic), filling the row's lookup columns. Rows
already in format v1 that open under --keys are skipped, so a rerun resumes and a second run changes
nothing. A value that opens neither way (tampered, another key or context) is reported and left as
it was. docs/MIGRATION.md, "From SifreDB for Rust", gives the whole procedure.

Rust options:
  --rust-deterministic-key <file>     the 64-byte DeterministicVault key: 64 raw bytes, or 128 hex
                                      digits; mode 0600 (required)
  --rust-context-version <n>          the v<n> of the Rust context (default: --context-version, else 1);
                                      its table and column are --context-table/--context-column
  --rust-text-encoding auto|hex|base64
                                      TEXT columns: how the Rust bytes are spelled. auto (default)
                                      tries each encoding the value is valid in, hex first, and keeps
                                      the one that authenticates (a wrong one cannot: AES-SIV's tag is
                                      a MAC). BYTEA columns hold the raw bytes
  --value-type string|bytes           what the plaintext bytes become (default: the schema's type,
                                      else string, decoded as strict UTF-8; invalid UTF-8 fails the row)
  --rust-key-dir <dir>                the sifredb-key-file directory (read only, never written)
  --rust-blind-index-column <column>  a column of legacy Rust blind-index terms (BYTEA, or TEXT hex) to
                                      keep for Rust readers during the move: filled where NULL,
                                      checked where set (a mismatch stops the job); needs --rust-key-dir

${JOB_HELP}

${GUARANTEES}

Exit codes: 0 done, 1 some rows failed, 2 usage, 3 keys, 4 the first batch failed entirely or the
job's settings differ from the data's (nothing written), 5 database, 6 schema file unreadable,
130 interrupted.`,
  options: {
    ...JOB_OPTIONS,
    'rust-deterministic-key': { type: 'string' },
    'rust-key-dir': { type: 'string' },
    'rust-blind-index-column': { type: 'string' },
    'rust-context-version': { type: 'string' },
    'rust-text-encoding': { type: 'string' },
    'value-type': { type: 'string' },
  },
  positionals: 0,
  run: ({ values }) => runColumnJob(values, 'import'),
};

export const constraints: Command = {
  name: 'constraints',
  summary: 'print or apply CHECK constraints that reject non-SifreDB values',
  usage: `Usage: sifredb constraints --table <t> --column <c> [--column <c2> …] (--db <url|path> [--apply] | --type text|bytea)

Prints PostgreSQL CHECK constraints that make the database refuse any value that is not a SifreDB
ciphertext in the encrypted columns (NULL stays allowed), so no code path can write plaintext by
mistake. With --db the column types are read from the database; --apply adds the constraints
(idempotent: an existing one of the same name is replaced) in one transaction.

Options:
  --db <url|path>     database (or env SIFREDB_DB)
  --table <t>         table ([schema.]table)
  --column <c>        encrypted column (repeatable)
  --type text|bytea   column type, when printing without --db
  --apply             add the constraints (fails if a row violates them, changing nothing)
  --not-valid         add them NOT VALID: only new writes are checked until VALIDATE CONSTRAINT
  --json              print [{"table","column","name","check","sql"}]`,
  options: {
    schema: { type: 'string' },
    db: { type: 'string' },
    table: { type: 'string' },
    column: { type: 'string', multiple: true },
    type: { type: 'string' },
    apply: { type: 'boolean' },
    'not-valid': { type: 'boolean' },
  },
  positionals: 0,
  async run({ values }) {
    const out = new Output(values);
    const declared = await schemaCiphertextColumns(values);
    const table = declared?.table ?? required(values, 'table');
    const columns = declared?.columns.map((c) => c.column) ?? list(values, 'column');
    if (columns.length === 0) throw usageError('--column is required');
    const type = str(values, 'type');
    const dbTarget = str(values, 'db') ?? (process.env.SIFREDB_DB || undefined);
    const notValid = values['not-valid'] === true;
    let result;
    if (declared !== undefined && type !== undefined) throw usageError('--type: with --schema the storage of each column comes from the schema');
    if (declared !== undefined && dbTarget === undefined) {
      if (values.apply === true) throw usageError('--apply needs --db');
      result = declared.columns.map((c) => constraintFor(table, c.column, c.storage, notValid));
    } else if (dbTarget === undefined) {
      if (values.apply === true) throw usageError('--apply needs --db');
      if (type !== 'text' && type !== 'bytea') throw usageError('without --db, give --type text or --type bytea');
      result = columns.map((column) => constraintFor(table, column, type, notValid));
    } else {
      if (type !== undefined) throw usageError('--type is for printing without --db; with --db the type is read from the database');
      const db = await openDatabase(dbTarget);
      try {
        if (declared !== undefined) {
          // The database's column types must be the schema's storage before anything is applied.
          for (const c of await columnConstraints(db, { table, columns })) {
            const storage = declared.columns.find((d) => d.column === c.column)!.storage;
            if (c.form !== storage) throw new SifreDBError(ERROR_CODES.schema, `column ${c.column} is ${c.form} in the database but the schema stores ${storage}`);
          }
        }
        result = values.apply === true
          ? await applyColumnConstraints(db, { table, columns, notValid })
          : await columnConstraints(db, { table, columns, notValid });
      } finally {
        await db.close();
      }
    }
    out.result(result);
    for (const c of result) out.line(c.sql);
    if (values.apply === true) out.note(`applied ${result.length} constraint${result.length === 1 ? '' : 's'}`);
    return 0;
  },
};
