/**
 * `sifredb demo`: the end-to-end tour on an embedded PGlite database in a temporary directory —
 * encrypt a plaintext column of 100,000 rows, look rows up by deterministic value and by blind index,
 * rotate, re-encrypt, verify. Uses only the public API, so it doubles as an example.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlindIndex } from '../blind-index/blind-index.js';
import { EncryptionContext } from '../context.js';
import { encryptColumn, reencryptColumn } from '../db/column-job.js';
import { applyColumnConstraints } from '../db/constraints.js';
import { type Database, openDatabase } from '../db/database.js';
import { FileKeyProvider } from '../keys/file.js';
import { Keyring } from '../keys/keyring.js';
import { DeterministicVault } from '../vault/deterministic-vault.js';
import { Vault } from '../vault/vault.js';
import { type Command, count, EXIT, int, Output, str } from './common.js';
import { ProgressReporter } from './progress.js';

const STEPS = 8;

export const demo: Command = {
  name: 'demo',
  summary: 'a tour on an embedded database: encrypt 100,000 rows, look up, rotate, re-encrypt, verify',
  usage: `Usage: sifredb demo [--rows <n>] [--dir <path>] [--keep]

Runs the whole workflow on an embedded PostgreSQL (PGlite) in a temporary directory, printing each
step: create a key store and a table of plaintext customers, encrypt the email column in place
(with a blind index and a deterministic lookup column), make the database refuse plaintext, find a
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
      const dvault = await DeterministicVault.open(keyring);
      const byEmail = await BlindIndex.open(keyring, { name: 'email', bits: 16, transforms: ['trim', 'lowercase'] });
      info(`key version ${keyring.currentVersion}; root keys stay in the backend (${keyring.backend.name}), JS holds handles`);

      say(`Embedded PostgreSQL (PGlite) in ${join(dir, 'db')}, table customers with ${count(rows)} plaintext rows`);
      db = await openDatabase(join(dir, 'db'));
      await db.query(`CREATE TABLE customers (
        id bigint PRIMARY KEY,
        email text NOT NULL,       -- becomes "sdb1:…" (randomized ChaCha20-Poly1305)
        email_det text,            -- deterministic AES-SIV copy, for exact lookups
        email_idx integer          -- 16-bit blind index, for lookups without equality leakage
      )`);
      await db.query(`INSERT INTO customers (id, email) SELECT g, 'customer' || g || '@example.com' FROM generate_series(1, $1::int) g`, [rows]);
      await db.query('CREATE INDEX ON customers (email_det)');
      await db.query('CREATE INDEX ON customers (email_idx)');
      info(`ready at ${elapsed()}`);

      const job = { db, table: 'customers', column: 'email', blindIndexes: [{ index: byEmail, column: 'email_idx' }], deterministicColumns: [{ vault: dvault, column: 'email_det' }] };
      say('encrypt-column: encrypting customers.email in place, filling email_det and email_idx');
      const encProgress = new ProgressReporter('encrypt-column customers.email', !out.quiet && !out.json);
      const encrypted = await encryptColumn({ ...job, vault, onProgress: encProgress.update });
      encProgress.done();
      info(`${count(encrypted.updated)} rows encrypted in ${(encrypted.elapsedMs / 1000).toFixed(1)} s (${count(encrypted.rowsPerSecond)} rows/s)`);
      const sample = (await db.query<{ email: string; email_det: string; email_idx: number }>('SELECT email, email_det, email_idx FROM customers WHERE id = 1')).rows[0]!;
      info(`row 1 now: email = ${sample.email.slice(0, 40)}…`);
      info(`           email_det = ${sample.email_det.slice(0, 36)}…, email_idx = ${sample.email_idx}`);

      say('constraints: the database now refuses plaintext in customers.email');
      const [constraint] = await applyColumnConstraints(db, { table: 'customers', columns: ['email'] });
      info(`CHECK (${constraint!.check})`);
      const refused = await db.query(`INSERT INTO customers (id, email) VALUES (-1, 'oops@example.com')`).then(
        () => false,
        () => true,
      );
      info(refused ? 'INSERT of a plaintext email: refused by the database' : 'INSERT of a plaintext email was accepted (unexpected)');

      const target = Math.max(1, Math.floor(rows * 0.4242));
      const wanted = `customer${target}@example.com`;
      const ctx = EncryptionContext.of('customers', 'email');
      const lookup = async (label: string) => {
        const detTerms = dvault.queryTermsAsText(wanted, ctx);
        const det = await db!.query<{ id: string }>('SELECT id FROM customers WHERE email_det = ANY($1::text[])', [detTerms]);
        const biTerms = byEmail.queryTerms(`  ${wanted.toUpperCase()} `, ctx).map((t) => t.int);
        const candidates = await db!.query<{ id: string; email: string }>('SELECT id, email FROM customers WHERE email_idx = ANY($1::int[])', [biTerms]);
        // A blind index narrows the search; decrypting the candidates removes its false positives.
        const matches = candidates.rows.filter((r) => vault.decryptToString(r.email, ctx) === wanted);
        info(`${label}: by deterministic value (${detTerms.length} term${detTerms.length > 1 ? 's' : ''}) → id ${det.rows.map((r) => r.id).join(', ') || 'none'}`);
        info(`${' '.repeat(label.length)}  by blind index of "  ${wanted.toUpperCase()} " (${biTerms.length} term${biTerms.length > 1 ? 's' : ''}) → ${candidates.rows.length} candidate${candidates.rows.length === 1 ? '' : 's'} → id ${matches.map((r) => r.id).join(', ') || 'none'}`);
        return det.rows.length === 1 && matches.length === 1;
      };
      say(`lookups for ${wanted}`);
      let ok = await lookup('before rotation');

      say('keys rotate: version 2 becomes current; version 1 still decrypts');
      const version = await provider.rotate();
      await keyring.refresh();
      info(`current key version: ${version}. Lookups use the terms of both versions until re-encryption is done:`);
      ok = (await lookup('mid-rotation')) && ok;

      say('reencrypt: moving every row to the new key version (and refreshing email_det, email_idx)');
      const reProgress = new ProgressReporter('reencrypt customers.email', !out.quiet && !out.json);
      const re = await reencryptColumn({ ...job, vault, onProgress: reProgress.update });
      reProgress.done();
      info(`${count(re.updated)} rows re-encrypted in ${(re.elapsedMs / 1000).toFixed(1)} s (${count(re.rowsPerSecond)} rows/s), ${count(re.failed)} failed`);
      const again = await reencryptColumn({ ...job, vault });
      info(`run again (as after a crash): ${count(again.updated)} re-encrypted, ${count(again.skipped)} skipped as already current`);

      say('verify: every row decrypts to its original value, under the current version, with fresh lookup columns');
      await provider.retire(1);
      await keyring.refresh();
      let verified = 0;
      let bad = 0;
      let cursor = 0;
      for (;;) {
        const batch = await db.query<{ id: string | number; email: string; email_det: string; email_idx: number }>(
          'SELECT id, email, email_det, email_idx FROM customers WHERE id > $1 ORDER BY id LIMIT 20000',
          [cursor],
        );
        if (batch.rows.length === 0) break;
        for (const r of batch.rows) {
          const expected = `customer${r.id}@example.com`;
          const good =
            !vault.needsReencryption(r.email) &&
            vault.decryptToString(r.email, ctx) === expected &&
            r.email_det === dvault.encryptToString(expected, ctx) &&
            r.email_idx === byEmail.compute(expected, ctx).int;
          if (good) verified += 1;
          else bad += 1;
        }
        cursor = Number(batch.rows[batch.rows.length - 1]!.id);
      }
      info(`${count(verified)} rows verified, ${count(bad)} wrong; version 1 retired, so lookups need one term again:`);
      ok = (await lookup('after re-encryption')) && ok && bad === 0 && verified === rows && refused && re.failed === 0;

      out.line(`\n${ok ? 'Demo complete' : 'Demo FAILED'} in ${elapsed()}.${keep ? ` Files kept in ${dir}` : ''}`);
      out.result({ ok, rows, encrypted: encrypted.updated, reencrypted: re.updated, verified, wrong: bad, seconds: (performance.now() - started) / 1000, dir: keep ? dir : undefined });
      return ok ? EXIT.ok : EXIT.rowsFailed;
    } finally {
      await db?.close().catch(() => undefined);
      if (!keep) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  },
};
