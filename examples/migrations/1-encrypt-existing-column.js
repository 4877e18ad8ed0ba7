// docs/MIGRATION.md, procedure 1: encrypting an existing plaintext column with no downtime.
//   node examples/migrations/1-encrypt-existing-column.js --db <postgres://url | PGlite directory> [--rows n]
// Creates its own table `mig1_users` (plaintext `email`), then: add the encrypted column and its
// lookup column → dual-write → backfill with `sifredb encrypt-column --schema … --target-column` →
// switch reads → stop writing plaintext → CHECK constraint NOT VALID, then VALIDATE → drop the
// plaintext column → `sifredb schema check`. The application goes through `EncryptedTable` on the
// same schema file as the CLI. Every step checks that each row still decrypts to its address and
// that lookups find exactly it.
import { join } from 'node:path';
import { EncryptedTable, FileKeyProvider, Keyring, inspect, loadSchema } from 'sifredb';
import { ROOT, check, emailOf, main, note, random, step } from './common.js';

const TABLE = 'mig1_users';
const SCHEMA = 'examples/migrations/schemas/mig1_users.json';

await main('1-encrypt-existing-column.js', async (env) => {
  const rand = random(1);
  /** What each row's address must be: the truth every check compares against. */
  const expected = new Map();
  let nextId = 1;

  step('0. the starting point: a table with a plaintext email column');
  await env.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await env.query(`CREATE TABLE ${TABLE} (id integer PRIMARY KEY, email text NOT NULL, name text)`);
  const ids = [];
  const emails = [];
  for (; nextId <= env.rows; nextId++) {
    ids.push(nextId);
    emails.push(emailOf(nextId));
    expected.set(nextId, emailOf(nextId));
  }
  await env.query(`INSERT INTO ${TABLE} (id, email, name) SELECT i, e, 'user ' || i FROM unnest($1::int[], $2::text[]) AS u(i, e)`, [ids, emails]);
  await env.sifredb(['keygen']);
  note(`${env.rows} rows`);

  // The application's keys and table, opened once at start-up as in production, from the same schema
  // file as the CLI: the context (table, email_enc: a value copied into another column will not
  // decrypt) and the blind index's name, bits and transforms come from it.
  const keyring = await Keyring.open(await FileKeyProvider.open(env.keysFile));
  const users = await EncryptedTable.open(keyring, (await loadSchema(join(ROOT, SCHEMA))).table(TABLE));
  const normalize = (address) => address.trim().toLowerCase();

  /** Lookup by address, whichever column the application reads at this stage. */
  const lookups = {
    async plaintext(address) {
      const { rows } = await env.query(`SELECT id FROM ${TABLE} WHERE lower(email) = $1`, [normalize(address)]);
      return rows.map((r) => Number(r.id));
    },
    async encrypted(address) {
      // The blind index narrows the search to a few candidates (16 bits: ~1 in 65,536 rows share a
      // term by chance); decrypting them drops the false positives.
      const q = users.where('email_enc', address);
      const { rows } = await env.query(`SELECT id, email_enc FROM ${TABLE} WHERE ${q.sql('$1')}`, [q.terms]);
      return users.decryptRows(rows).filter(q.matches).map((r) => Number(r.id));
    },
  };
  /** Looks up a sample of rows (with case and spacing changed) and an address nobody has. */
  async function checkLookups(how, label) {
    const sample = [...expected.keys()].filter(() => rand() < 0.1).slice(0, 60);
    for (const id of sample) {
      const found = await lookups[how](`  ${expected.get(id).toUpperCase()} `);
      check(found.length === 1 && found[0] === id, `${label}: looking up row ${id} by email (${how}) found [${found}]`);
    }
    const none = await lookups[how]('nobody@example.invalid');
    check(none.length === 0, `${label}: an unknown address found rows [${none}]`);
    note(`${label}: ${sample.length} lookups by email (${how}) each found exactly their row`);
  }
  await checkLookups('plaintext', 'before');

  step('1. add the encrypted column and its lookup column (nullable, so nothing is rewritten), CHECK NOT VALID');
  // The schema file declares email_enc and its blind index; `schema sql` adds the columns, an index on
  // the lookup column, the CHECK constraint NOT VALID (new writes are checked at once, the existing
  // NULLs need nothing) and records the settings in sifredb_schema.
  await env.sifredb(['schema', 'sql', '--schema', SCHEMA, '--not-valid', '--apply'], { db: true, keys: false });
  const added = await env.columns(TABLE);
  check(added.has('email_enc') && added.has('email_idx'), `schema sql did not add the columns: ${[...added].join(', ')}`);

  step('2. dual-write: the application writes the plaintext and the ciphertext');
  // encryptRow encrypts the schema's columns (email_enc) and computes their lookup columns
  // (email_idx); the other columns (id, the plaintext email, name) are copied as they are.
  const dualWrite = {
    async insert() {
      const id = nextId++;
      const address = emailOf(id);
      const row = users.encryptRow({ id, email: address, email_enc: address, name: `user ${id}` });
      await env.query(`INSERT INTO ${TABLE} (id, email, email_enc, email_idx, name) VALUES ($1, $2, $3, $4, $5)`, [row.id, row.email, row.email_enc, row.email_idx, row.name]);
      expected.set(id, address);
    },
    async update() {
      // A user changes address: both columns change in one statement.
      const id = 1 + Math.floor(rand() * (nextId - 1));
      const address = emailOf(id, 1 + Math.floor(rand() * 1e6));
      const row = users.encryptRow({ id, email: address, email_enc: address });
      await env.query(`UPDATE ${TABLE} SET email = $2, email_enc = $3, email_idx = $4 WHERE id = $1`, [row.id, row.email, row.email_enc, row.email_idx]);
      expected.set(id, address);
    },
    async any() {
      await (rand() < 0.5 ? this.insert() : this.update());
    },
  };
  for (let i = 0; i < 40; i++) await dualWrite.any();
  const { rows: [{ n: dualWritten }] } = await env.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE email_enc IS NOT NULL`);
  note(`${dualWritten} rows already have a ciphertext from the application`);

  step('3. backfill: encrypt every row the application has not written yet');
  const backfill = await env.sifredb(
    ['encrypt-column', '--schema', SCHEMA, '--column', 'email', '--target-column', 'email_enc'],
    { db: true, whileRunning: () => dualWrite.any() },
  );
  check(/failed\s+0\b/.test(backfill.stdout), 'encrypt-column reported failed rows');
  for (let i = 0; i < 20; i++) await dualWrite.any();
  const { rows: stored } = await env.query(`SELECT id, email, email_enc, email_idx FROM ${TABLE} ORDER BY id`);
  check(stored.length === expected.size, `the table has ${stored.length} rows, the application wrote ${expected.size}`);
  for (const row of stored) check(row.email_enc !== null, `row ${row.id} has no ciphertext after the backfill`);
  const decrypted = users.decryptRows(stored);
  stored.forEach((row, i) => {
    const address = decrypted[i].email_enc;
    check(address === row.email && address === expected.get(Number(row.id)), `row ${row.id}: the ciphertext does not decrypt to the plaintext`);
    // The term the application computes for the address (the CLI took the settings from the same file).
    check(row.email_idx === users.encryptRow({ email_enc: address }).email_idx, `row ${row.id}: email_idx is not the term of its address`);
  });
  note(`all ${stored.length} rows: ciphertext decrypts to the plaintext, lookup term matches`);

  step('4. switch reads to the ciphertext (the plaintext is still written, for a rollback)');
  await checkLookups('encrypted', 'reads switched');

  step('5. stop writing the plaintext');
  // The application no longer writes `email`; it must accept NULL for rows written from now on.
  await env.query(`ALTER TABLE ${TABLE} ALTER COLUMN email DROP NOT NULL`);
  const encryptedOnly = {
    async insert() {
      const id = nextId++;
      const address = emailOf(id);
      const row = users.encryptRow({ id, email_enc: address, name: `user ${id}` });
      await env.query(`INSERT INTO ${TABLE} (id, email_enc, email_idx, name) VALUES ($1, $2, $3, $4)`, [row.id, row.email_enc, row.email_idx, row.name]);
      expected.set(id, address);
    },
  };
  for (let i = 0; i < 10; i++) await encryptedOnly.insert();

  step('6. VALIDATE the CHECK constraint added NOT VALID in step 1 (scans without blocking writes)');
  await env.query(`ALTER TABLE ${TABLE} VALIDATE CONSTRAINT ${TABLE}_email_enc_sifredb_check`);
  const { rows: [constraint] } = await env.query(
    `SELECT convalidated FROM pg_constraint WHERE conname = $1 AND conrelid = $2::regclass`,
    [`${TABLE}_email_enc_sifredb_check`, TABLE],
  );
  check(constraint?.convalidated === true, 'the constraint is missing or not validated');
  const state = await env.sqlState(`INSERT INTO ${TABLE} (id, email_enc, name) VALUES ($1, $2, 'mallory')`, [nextId + 1_000_000, 'someone@example.com']);
  check(state === '23514', `a plaintext INSERT into email_enc was not refused by the constraint (got ${state ?? 'success'})`);
  note('the database refuses a plaintext in email_enc (23514 check_violation)');

  step('7. drop the plaintext column');
  await env.query(`ALTER TABLE ${TABLE} DROP COLUMN email`);
  const columns = await env.columns(TABLE);
  check(!columns.has('email') && columns.has('email_enc'), `columns after the drop: ${[...columns].join(', ')}`);
  for (let i = 0; i < 10; i++) await encryptedOnly.insert();
  const { rows: final } = await env.query(`SELECT id, email_enc FROM ${TABLE}`);
  check(final.length === expected.size, `the table has ${final.length} rows, the application wrote ${expected.size}`);
  const plain = users.decryptRows(final);
  final.forEach((row, i) => {
    check(plain[i].email_enc === expected.get(Number(row.id)), `row ${row.id} does not decrypt to its address`);
    check(inspect(row.email_enc).keyVersion === 1, `row ${row.id} is not under key version 1`);
  });
  note(`plaintext column gone; all ${final.length} rows decrypt to their address`);
  await checkLookups('encrypted', 'after');

  step('8. schema check: the database, the recorded settings and a sample of rows agree with the schema');
  await env.sifredb(['schema', 'check', '--schema', SCHEMA], { db: true });
});
