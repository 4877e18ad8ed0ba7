/**
 * A batch job configured from a table schema: the schema is the source of truth, so the job's
 * context, tenant column, row binding and lookup columns come from it, and an explicit option that
 * says otherwise is refused instead of silently winning.
 */
import { openBlindIndex } from '../schema/encrypted-table.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { parseTableName } from './schema.js';
import type { ResolvedColumn, TableSchema } from '../schema/definition.js';
import type { BaseVault } from '../vault/base-vault.js';
import { DeterministicVault } from '../vault/deterministic-vault.js';
import type { BlindIndexColumn, ColumnJobOptions, DeterministicColumn } from './column-job.js';

/** The job options with the schema's settings filled in, and the schema column the job writes. */
export async function optionsFromSchema<O extends ColumnJobOptions & { vault: BaseVault; targetColumn?: string }>(
  options: O,
  mode: 'reencrypt' | 'encrypt',
): Promise<{ options: O; column: ResolvedColumn | undefined }> {
  const schema = options.schema;
  if (schema === undefined) return { options, column: undefined };
  const encryptedName = mode === 'encrypt' ? (options.targetColumn ?? options.column) : options.column;
  const column = schema.column(encryptedName);
  const contradiction = (option: string, given: unknown, declared: unknown) =>
    new SifreDBError(
      ERROR_CODES.input,
      `${option} ${JSON.stringify(given)} contradicts the schema of ${schema.table}.${column.name} (${JSON.stringify(declared ?? null)}); drop the option or change the schema`,
    );
  const agree = (option: string, given: unknown, declared: unknown) => {
    if (given !== undefined && given !== declared) throw contradiction(option, given, declared);
  };
  if (options.table !== undefined && parseTableName(options.table).sql !== parseTableName(schema.table).sql) {
    throw contradiction('table', options.table, schema.table);
  }
  agree('idColumn', options.idColumn, schema.id);
  agree('tenantColumn', options.tenantColumn, schema.tenant);
  agree('contextTable', options.contextTable, column.context.table);
  agree('contextColumn', options.contextColumn, column.context.column);
  agree('contextVersion', options.contextVersion, column.context.version);
  agree('rowBinding', options.rowBinding, column.rowBinding ? 'id' : 'none');
  const deterministic = options.vault instanceof DeterministicVault;
  if (deterministic !== (column.mode === 'deterministic')) {
    throw contradiction('vault', deterministic ? 'DeterministicVault' : 'Vault', column.mode === 'deterministic' ? 'DeterministicVault' : 'Vault');
  }
  const algorithm = (options.vault as { algorithm?: string }).algorithm;
  if (!deterministic && algorithm !== column.algorithm) throw contradiction('algorithm', algorithm, column.algorithm);
  if ((options.blindIndexes?.length ?? 0) > 0 || (options.deterministicColumns?.length ?? 0) > 0) {
    throw new SifreDBError(ERROR_CODES.input, `lookup columns come from the schema of ${schema.table}.${column.name}; do not pass blindIndexes or deterministicColumns with it`);
  }
  const keyring = options.vault.keyring;
  const blindIndexes: BlindIndexColumn[] = [];
  for (const b of column.blindIndexes) blindIndexes.push({ column: b.column, index: await openBlindIndex(keyring, b) });
  const deterministicColumns: DeterministicColumn[] = [];
  if (column.deterministicLookups.length > 0) {
    const vault = await DeterministicVault.open(keyring);
    for (const d of column.deterministicLookups) deterministicColumns.push({ vault, column: d.column, contextColumn: d.contextColumn });
  }
  return {
    column,
    options: {
      ...options,
      table: schema.table,
      idColumn: schema.id,
      tenantColumn: schema.tenant,
      contextTable: column.context.table,
      contextColumn: column.context.column,
      contextVersion: column.context.version,
      rowBinding: column.rowBinding ? 'id' : 'none',
      blindIndexes,
      deterministicColumns,
    },
  };
}

/** A schema given as the job's `schema` option. */
export type JobSchema = TableSchema;
