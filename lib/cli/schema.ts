/** `sifredb schema check|sql`: the schema file against the database. */
import { openDatabase } from '../db/database.js';
import { Keyring } from '../keys/keyring.js';
import { checkSchema } from '../schema/check.js';
import { readFile } from 'node:fs/promises';
import { parseSchema, type Schema, type TableSchema } from '../schema/definition.js';
import { applySchema, schemaSql } from '../schema/sql.js';
import { closeProvider, type Command, EXIT, int, ioError, keysPath, list, openKeyProvider, Output, required, str, usageError, type Values } from './common.js';

/**
 * The schema file of `--schema`: unreadable is an I/O error (exit 6), invalid JSON or an invalid
 * schema a usage error (exit 2) naming the field, as every other bad command-line input.
 */
export async function readSchemaFile(values: Values): Promise<Schema> {
  const path = required(values, 'schema');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw ioError('read schema file', path, error);
  }
  try {
    return parseSchema(JSON.parse(text), path);
  } catch (error) {
    throw usageError(`--schema ${path}: ${error instanceof SyntaxError ? `not valid JSON (${error.message})` : (error as Error).message}`);
  }
}

/** The table `name` of the schema (or its only one): an unknown name is a usage error. */
export function schemaTable(schema: Schema, name: string | undefined): TableSchema {
  try {
    return schema.table(name);
  } catch (error) {
    throw usageError(`--table: ${(error as Error).message}`);
  }
}

/** The tables of the schema file that the command is about: `--table` ones, or all. */
export async function schemaTables(values: Values): Promise<{ schema: Schema; tables: TableSchema[] }> {
  const schema = await readSchemaFile(values);
  const names = list(values, 'table');
  return { schema, tables: names.length === 0 ? [...schema.tables] : names.map((n) => schemaTable(schema, n)) };
}

function dbTarget(values: Values): string | undefined {
  const db = str(values, 'db') ?? (process.env.SIFREDB_DB || undefined);
  return db === '' ? undefined : db;
}

function hasKeys(values: Values): boolean {
  try {
    keysPath(values);
    return true;
  } catch {
    return false;
  }
}

export const schemaCommand: Command = {
  name: 'schema',
  summary: 'check a database against a schema file, or print the DDL it needs',
  usage: `Usage: sifredb schema check --schema <file> --db <url|path> [--keys <path>] [--table <t>…] [--sample <n>]
       sifredb schema sql   --schema <file> [--table <t>…] [--not-valid] [--db <url|path> --apply]

  check   compares the database with the schema: every encrypted and lookup column exists with the
          right type, the CHECK constraints are present and validated, the settings recorded in
          sifredb_schema equal the schema's, and — with a key store — a sample of rows decrypts to
          the declared types and its stored lookup terms are what the schema computes. Prints one
          line per finding. Exit 0 when they agree, 4 when there are findings.
  sql     the DDL a migration needs, each statement idempotent: the sifredb_schema table of recorded
          settings, the encrypted and lookup columns (ADD COLUMN IF NOT EXISTS), an index on each
          lookup column, the CHECK constraints and the settings records. --apply runs it in one
          transaction, after refusing (exit 4) any recorded setting the schema contradicts.

Options:
  --schema <file>     the schema file (JSON; docs/SCHEMA.md)
  --table <t>         only this table of the file (repeatable; default all)
  --db <url|path>     database (or env SIFREDB_DB)
  --keys <path>       key store (or env SIFREDB_KEYS): check also reads a sample of rows
  --sample <n>        rows sampled per table by check (default 200)
  --not-valid         sql: add the constraints NOT VALID (existing plaintext rows are not checked yet)
  --apply             sql: run the statements
  --json              check: {"findings":[{"table","kind","column","message"}]}; sql: {"statements":[…]}`,
  options: {
    schema: { type: 'string' },
    table: { type: 'string', multiple: true },
    db: { type: 'string' },
    sample: { type: 'string' },
    'not-valid': { type: 'boolean' },
    apply: { type: 'boolean' },
    'kms-key': { type: 'string' },
    kms: { type: 'string', multiple: true },
    region: { type: 'string' },
  },
  positionals: 1,
  async run({ values, positionals }) {
    const out = new Output(values);
    const [action] = positionals;
    if (action !== 'check' && action !== 'sql') {
      throw usageError(action === undefined ? 'schema needs an action: check or sql' : `unknown schema action ${JSON.stringify(action)}`);
    }
    const { tables } = await schemaTables(values);
    if (action === 'sql') {
      const notValid = values['not-valid'] === true;
      const target = dbTarget(values);
      if (values.apply === true) {
        if (target === undefined) throw usageError('--apply needs --db');
        const db = await openDatabase(target);
        try {
          const statements: string[] = [];
          for (const table of tables) statements.push(...(await applySchema(db, table, { notValid })));
          out.result({ statements });
          out.note(`applied the schema of ${tables.map((t) => t.table).join(', ')} (${statements.length} statements)`);
        } finally {
          await db.close();
        }
        return EXIT.ok;
      }
      const statements = tables.flatMap((table) => schemaSql(table, { notValid }));
      out.result({ statements });
      for (const statement of statements) out.line(statement);
      return EXIT.ok;
    }
    const target = dbTarget(values);
    if (target === undefined) throw usageError('schema check needs --db (a postgres:// URL or a PGlite directory; or env SIFREDB_DB)');
    const sampleSize = int(values, 'sample', 1, 1_000_000);
    const provider = hasKeys(values) ? await openKeyProvider(values) : undefined;
    const db = await openDatabase(target);
    try {
      const keyring = provider === undefined ? undefined : await Keyring.open(provider);
      if (keyring === undefined) out.note('no key store given: rows are not sampled (pass --keys to check that they decrypt and their lookup terms match)');
      const findings: { table: string; kind: string; column: string | null; message: string }[] = [];
      for (const table of tables) {
        for (const f of await checkSchema(db, table, { keyring, sampleSize })) findings.push({ table: table.table, ...f });
      }
      out.result({ findings });
      for (const f of findings) out.line(`${f.table}: ${f.kind}: ${f.message}`);
      if (findings.length === 0) out.line(`schema check: ${tables.map((t) => t.table).join(', ')} match the schema`);
      return findings.length === 0 ? EXIT.ok : EXIT.data;
    } finally {
      await db.close();
      if (provider !== undefined) closeProvider(provider);
    }
  },
};
