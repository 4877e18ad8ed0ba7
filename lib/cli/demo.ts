/**
 * `sifredb demo`: the end-to-end tour on an embedded PGlite database in a temporary directory —
 * encrypt a plaintext column of 100,000 rows, look rows up by deterministic value and by blind index,
 * rotate, re-encrypt, verify. Uses only the public API, so it doubles as an example.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptColumn, reencryptColumn } from '../db/column-job.js';
import { constraintFor } from '../db/constraints.js';
import { type Database, openDatabase } from '../db/database.js';
import { FileKeyProvider } from '../keys/file.js';
import { Keyring } from '../keys/keyring.js';
import { checkSchema } from '../schema/check.js';
import { defineTable } from '../schema/definition.js';
import { EncryptedTable } from '../schema/encrypted-table.js';
import { applySchema } from '../schema/sql.js';
import { Vault } from '../vault/vault.js';
import { type Command, count, EXIT, int, Output, str } from './common.js';
import { ProgressReporter } from './progress.js';

/** The demo's table schema: what `sifredb schema sql`, the jobs and the application all read. */
const customers = defineTable({
  table: 'customers',
  columns: {
    email: {
      type: 'string',
      // A 16-bit blind index for lookups without revealing equality, and an exact deterministic copy.
      blindIndexes: [{ name: 'email', column: 'email_idx', bits: 16, transforms: ['trim', 'lowercase'] }],
      deterministicLookups: [{ column: 'email_det' }],
    },
  },
});

const STEPS = 8;

export const demo: Command = {
  name: 'demo',
  summary: 'a tour on an embedded database: encrypt 100,000 rows, look up, rotate, re-encrypt, verify',
  usage: `Usage: sifredb demo [--rows <n>] [--dir <path>] [--keep]

Runs the whole workflow on an embedded PostgreSQL (PGlite) in a temporary directory, printing each
step: create a key store and a table of plaintext customers, apply the table schema's DDL, encrypt
the email column in place (with a blind index and a deterministic lookup column, from the schema),
make the database refuse plaintext, find a
customer by deterministic value and by blind index, rotate the key, re-encrypt every row, and
verify every row. Needs no server and no configuration.

Options:
  --rows <n>      rows in the table (default 100000)
  --dir <path>    work directory, kept afterwards (default: a new temporary directory)
  --keep          keep the temporary directory (key store and database) afterwards`,
  options: { rows: { type: 'string' }, dir: { type: 'string' }, keep: { type: 'boolean' } },
  positionals: 0,
  async run({ values }) {
    const out = new Output(values);
    const rows = int(values, 'rows', 10, 10_000_000) ?? 100_000;
    const given = str(values, 'dir');
    // Only a directory the demo created is removed afterwards; a --dir given by the user is left alone.
    const dir = given ?? (await mkdtemp(join(tmpdir(), 'sifredb-demo-')));
    const keep = values.keep === true || given !== undefined;
    const started = performance.now();
    const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
    let step = 0;
    const say = (text: string) => out.line(`\n[${++step}/${STEPS}] ${text}`);
    const info = (text: string) => out.line(`      ${text}`);
    let db: Database | undefined;
    try {
      say(`Key store: ${join(dir, 'keys.json')}`);
      const provider = await FileKeyProvider.create(join(dir, 'keys.json'));
      const keyring = await Keyring.open(provider);
      const vault = await Vault.open(keyring);
      info(`key version ${keyring.currentVersion}; root keys stay in the backend (${keyring.backend.name}), JS holds handles`);

      say(`Embedded PostgreSQL (PGlite) in ${join(dir, 'db')}: ${count(rows)} plaintext customers, then the schema's DDL`);
      db = await openDatabase(join(dir, 'db'));
      await db.query('CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL)');
      await db.query(`INSERT INTO customers (id, email) SELECT g, 'customer' || g || '@example.com' FROM generate_series(1, $1::int) g`, [rows]);
      // NOT VALID: the plaintext rows are not checked yet, every new write is.
      const statements = await applySchema(db, customers, { notValid: true });
      info(`schema sql: ${statements.length} statements (lookup columns email_idx, email_det, their indexes, CHECK constraints, recorded settings)`);
      info(`ready at ${elapsed()}`);

      say('encrypt-column --schema: encrypting customers.email in place, filling email_det and email_idx');
      const encProgress = new ProgressReporter('encrypt-column customers.email', !out.quiet && !out.json);
      const encrypted = await encryptColumn({ db, schema: customers, column: 'email', vault, onProgress: encProgress.update });
      encProgress.done();
      info(`${count(encrypted.updated)} rows encrypted in ${(encrypted.elapsedMs / 1000).toFixed(1)} s (${count(encrypted.rowsPerSecond)} rows/s)`);
      const sample = (await db.query<{ email: string; email_det: string; email_idx: number }>('SELECT email, email_det, email_idx FROM customers WHERE id = 1')).rows[0]!;
      info(`row 1 now: email = ${sample.email.slice(0, 40)}…`);
      info(`           email_det = ${sample.email_det.slice(0, 36)}…, email_idx = ${sample.email_idx}`);

      say('constraints validated: the database now refuses plaintext in customers.email');
      for (const column of ['email', 'email_det']) await db.query(`ALTER TABLE customers VALIDATE CONSTRAINT ${constraintFor('customers', column, 'text').name}`);
      const refused = await db.query(`INSERT INTO customers (id, email) VALUES (-1, 'oops@example.com')`).then(
        () => false,
        () => true,
      );
      info(refused ? 'INSERT of a plaintext email: refused by the database' : 'INSERT of a plaintext email was accepted (unexpected)');

      const target = Math.max(1, Math.floor(rows * 0.4242));
      const wanted = `customer${target}@example.com`;
      let table = await EncryptedTable.open(keyring, customers);
      const lookup = async (label: string) => {
        const exact = table.where('email', wanted, { index: 'email_det' });
        const det = await db!.query<{ id: string }>(`SELECT id FROM customers WHERE ${exact.sql('$1')}`, [exact.terms]);
        const approximate = table.where('email', `  ${wanted.toUpperCase()} `, { index: 'email' });
        const candidates = await db!.query(`SELECT id, email FROM customers WHERE ${approximate.sql('$1')}`, [approximate.terms]);
        // A blind index narrows the search; decrypting the candidates removes its false positives.
        const matches = table.decryptRows(candidates.rows).filter(approximate.matches);
        info(`${label}: by deterministic value (${exact.terms.length} term${exact.terms.length > 1 ? 's' : ''}) → id ${det.rows.map((r) => r.id).join(', ') || 'none'}`);
        info(`${' '.repeat(label.length)}  by blind index of "  ${wanted.toUpperCase()} " (${approximate.terms.length} term${approximate.terms.length > 1 ? 's' : ''}) → ${candidates.rows.length} candidate${candidates.rows.length === 1 ? '' : 's'} → id ${matches.map((r) => r.id).join(', ') || 'none'}`);
        return det.rows.length === 1 && matches.length === 1;
      };
      say(`lookups for ${wanted}`);
      let ok = await lookup('before rotation');

      say('keys rotate: version 2 becomes current; version 1 still decrypts');
      const version = await provider.rotate();
      await keyring.refresh();
      table = await EncryptedTable.open(keyring, customers);
      info(`current key version: ${version}. Lookups use the terms of both versions until re-encryption is done:`);
      ok = (await lookup('mid-rotation')) && ok;

      say('reencrypt --schema: moving every row to the new key version (and refreshing email_det, email_idx)');
      const reProgress = new ProgressReporter('reencrypt customers.email', !out.quiet && !out.json);
      const re = await reencryptColumn({ db, schema: customers, column: 'email', vault, onProgress: reProgress.update });
      reProgress.done();
      info(`${count(re.updated)} rows re-encrypted in ${(re.elapsedMs / 1000).toFixed(1)} s (${count(re.rowsPerSecond)} rows/s), ${count(re.failed)} failed`);
      const again = await reencryptColumn({ db, schema: customers, column: 'email', vault });
      info(`run again (as after a crash): ${count(again.updated)} re-encrypted, ${count(again.skipped)} skipped as already current`);

      say('verify: every row decrypts to its original value, under the current version, with fresh lookup columns');
      await provider.retire(1);
      await keyring.refresh();
      table = await EncryptedTable.open(keyring, customers);
      let verified = 0;
      let bad = 0;
      let cursor = 0;
      for (;;) {
        const batch = await db.query<{ id: string | number; email: string; email_det: string; email_idx: number }>(
          'SELECT id, email, email_det, email_idx FROM customers WHERE id > $1 ORDER BY id LIMIT 20000',
          [cursor],
        );
        if (batch.rows.length === 0) break;
        const plain = await table.decryptRowsAsync(batch.rows);
        const recomputed = table.encryptRows(plain.map((r) => ({ email: r.email })));
        batch.rows.forEach((r, i) => {
          const good =
            !vault.needsReencryption(r.email) &&
            plain[i]!.email === `customer${r.id}@example.com` &&
            r.email_det === recomputed[i]!.email_det &&
            r.email_idx === recomputed[i]!.email_idx;
          if (good) verified += 1;
          else bad += 1;
        });
        cursor = Number(batch.rows[batch.rows.length - 1]!.id);
      }
      const findings = await checkSchema(db, customers, { keyring });
      info(`${count(verified)} rows verified, ${count(bad)} wrong; schema check: ${findings.length === 0 ? 'the database matches the schema' : findings.map((f) => f.message).join('; ')}`);
      info('version 1 retired, so lookups need one term again:');
      ok = (await lookup('after re-encryption')) && ok && bad === 0 && verified === rows && refused && re.failed === 0 && findings.length === 0;

      out.line(`\n${ok ? 'Demo complete' : 'Demo FAILED'} in ${elapsed()}.${keep ? ` Files kept in ${dir}` : ''}`);
      out.result({ ok, rows, encrypted: encrypted.updated, reencrypted: re.updated, verified, wrong: bad, seconds: (performance.now() - started) / 1000, dir: keep ? dir : undefined });
      return ok ? EXIT.ok : EXIT.rowsFailed;
    } finally {
      await db?.close().catch(() => undefined);
      if (!keep) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  },
};
