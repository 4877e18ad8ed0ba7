// docs/MIGRATION.md, procedure 3: changing a blind index's settings.
//   node examples/migrations/3-change-blind-index.js --db <postgres://url | PGlite directory> [--rows n]
// Creates its own table `mig3_users` whose `email_idx` is a 16-bit index without transforms (so
// " Alice@Example.com" does not find "alice@example.com"), and moves it to an 18-bit index with
// trim,lowercase. The schema file goes through three versions (schemas/mig3_users.{old,both,new}.json):
// add `email_idx2` (new index name `email_v2`) with `sifredb schema sql --apply` → dual-write both
// terms → backfill with `sifredb reencrypt --schema …` (it fills lookup columns that are NULL) →
// switch queries → drop the old column and its record → `sifredb schema check`. Lookups find exactly
// the right row at every step.
import { join } from 'node:path';
import { EncryptedTable, FileKeyProvider, Keyring, loadSchema } from 'sifredb';
import { ROOT, check, emailOf, main, note, random, step } from './common.js';

const TABLE = 'mig3_users';
/** The schema file at each stage: the old index only, both indexes, the new index only. */
const SCHEMAS = {
  old: 'examples/migrations/schemas/mig3_users.old.json',
  both: 'examples/migrations/schemas/mig3_users.both.json',
  new: 'examples/migrations/schemas/mig3_users.new.json',
};

await main('3-change-blind-index.js', async (env) => {
  const rand = random(3);
  const expected = new Map();
  /** Ids the application wrote since the last clear. */
  const written = new Set();
  let nextId = 1;

  await env.sifredb(['keygen']);
  const keyring = await Keyring.open(await FileKeyProvider.open(env.keysFile));
  // The application at each stage, each an EncryptedTable on that stage's schema file. The new index
  // has a new name (email_v2): its terms come from another key, so the two can never be confused,
  // and the old column stays valid until it is dropped.
  const tables = {};
  for (const [stage, file] of Object.entries(SCHEMAS)) tables[stage] = await EncryptedTable.open(keyring, (await loadSchema(join(ROOT, file))).table(TABLE));
  /** The deployed version of the application. */
  let users = tables.old;

  /** A user's row, as the deployed version writes it: the ciphertext and every lookup its schema has. */
  async function upsert(id, address) {
    const row = users.encryptRow({ id, email: address });
    const names = Object.keys(row);
    await env.query(
      `INSERT INTO ${TABLE} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})
       ON CONFLICT (id) DO UPDATE SET ${names.slice(1).map((n) => `${n} = EXCLUDED.${n}`).join(', ')}`,
      Object.values(row),
    );
    expected.set(id, address);
    written.add(id);
  }
  /** The application at work: a new user, or a user changing address. */
  async function write() {
    if (rand() < 0.5) {
      const id = nextId++;
      return upsert(id, emailOf(id));
    }
    const id = 1 + Math.floor(rand() * (nextId - 1));
    return upsert(id, emailOf(id, 1 + Math.floor(rand() * 1e6)));
  }

  /** A lookup with the old index (`email`: the exact text only) or the new one (`email_v2`: ignores case and spaces). */
  async function find(how, address) {
    const q = users.where('email', address, { index: how === 'old' ? 'email' : 'email_v2' });
    const { rows } = await env.query(`SELECT id, email FROM ${TABLE} WHERE ${q.sql('$1')}`, [q.terms]);
    return users.decryptRows(rows).filter(q.matches).map((r) => Number(r.id));
  }
  async function checkLookups(how, label) {
    const sample = [...expected.keys()].filter(() => rand() < 0.1).slice(0, 60);
    for (const id of sample) {
      // The old index needs the address exactly as stored; the new one finds it as users type it.
      const query = how === 'old' ? expected.get(id) : `  ${expected.get(id).toUpperCase()}`;
      const found = await find(how, query);
      check(found.length === 1 && found[0] === id, `${label}: looking up row ${id} with the ${how} index found [${found}]`);
    }
    check((await find(how, 'nobody@example.invalid')).length === 0, `${label}: an unknown address found rows`);
    note(`${label}: ${sample.length} lookups with the ${how} index found exactly their row`);
  }
  async function checkRows(label, want) {
    const { rows } = await env.query(`SELECT * FROM ${TABLE}`);
    check(rows.length === expected.size, `${label}: the table has ${rows.length} rows, the application wrote ${expected.size}`);
    const plain = users.decryptRows(rows);
    rows.forEach((r, i) => {
      const address = plain[i].email;
      check(address === expected.get(Number(r.id)), `${label}: row ${r.id} does not decrypt to its address`);
      // The terms each index computes for the address.
      const terms = tables.both.encryptRow({ email: address });
      if (want.old) check(r.email_idx === terms.email_idx, `${label}: row ${r.id}: email_idx is not its old term`);
      if (want.new) check(r.email_idx2 === terms.email_idx2, `${label}: row ${r.id}: email_idx2 is not its new term`);
    });
    note(`${label}: all ${rows.length} rows decrypt to their address${want.new ? ' and have their new term' : ''}`);
  }

  step('0. the starting point: email with a 16-bit blind index, no transforms');
  await env.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await env.query(`CREATE TABLE ${TABLE} (id integer PRIMARY KEY, email text NOT NULL)`);
  await env.sifredb(['schema', 'sql', '--schema', SCHEMAS.old, '--apply'], { db: true, keys: false });
  for (; nextId <= env.rows; nextId++) await upsert(nextId, emailOf(nextId));
  await checkLookups('old', 'before');
  const sloppy = await find('old', `  ${expected.get(3).toUpperCase()}`);
  check(sloppy.length === 0, 'the old index (no transforms) should not find an address typed in another case');
  note('the old index does not find " USER.3@…" for "User.3@…": the reason for the change');

  step('1. add the new index column (nullable), its database index and its recorded settings');
  await env.sifredb(['schema', 'sql', '--schema', SCHEMAS.both, '--apply'], { db: true, keys: false });
  check((await env.columns(TABLE)).has('email_idx2'), 'schema sql did not add email_idx2');
  const { rows: recorded } = await env.query(`SELECT column_name FROM public.sifredb_schema WHERE table_name = $1 ORDER BY column_name`, [TABLE]);
  check(recorded.map((r) => r.column_name).join() === 'email,email_idx,email_idx2', `recorded settings: ${recorded.map((r) => r.column_name).join(', ')}`);

  step('2. dual-write: the application writes both terms');
  users = tables.both;
  for (let i = 0; i < 40; i++) await write();

  step('3. backfill the new column');
  // The ciphertexts do not change: reencrypt finds the rows on the current key version whose
  // email_idx2 is NULL and fills it, checking first that each row's stored email_idx is what the
  // schema computes (compare-and-set on the ciphertext read: a row the application rewrote
  // meanwhile already has its term from the dual-write and is left alone).
  const { rows: before } = await env.query(`SELECT id, email FROM ${TABLE}`);
  written.clear();
  const job = await env.sifredb(['reencrypt', '--schema', SCHEMAS.both, '--column', 'email'], { db: true, whileRunning: () => write() });
  check(/failed\s+0\b/.test(job.stdout), 'reencrypt reported failed rows');
  const { rows: after } = await env.query(`SELECT id, email FROM ${TABLE}`);
  const ciphertexts = new Map(after.map((r) => [Number(r.id), r.email]));
  const kept = before.filter((r) => !written.has(Number(r.id)));
  for (const r of kept) check(ciphertexts.get(Number(r.id)) === r.email, `row ${r.id}: reencrypt changed a ciphertext already on the current key version`);
  note(`the ${kept.length} rows the application did not write meanwhile keep their ciphertext`);
  for (let i = 0; i < 20; i++) await write();
  const { rows: [{ n: missing }] } = await env.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE email_idx2 IS NULL`);
  check(missing === 0, `${missing} rows still have no new term after the backfill`);
  await checkRows('backfilled', { old: true, new: true });

  step('4. switch queries to the new index (both terms still written, for a rollback)');
  await checkLookups('new', 'switched');
  await checkLookups('old', 'old index still valid');

  step('5. stop writing the old term, then drop the old column (schema sql --apply forgets its recorded settings)');
  users = tables.new;
  for (let i = 0; i < 10; i++) await write();
  await env.query(`ALTER TABLE ${TABLE} DROP COLUMN email_idx`);
  await env.sifredb(['schema', 'sql', '--schema', SCHEMAS.new, '--apply'], { db: true, keys: false });
  const columns = await env.columns(TABLE);
  check(!columns.has('email_idx') && columns.has('email_idx2'), `columns after the drop: ${[...columns].join(', ')}`);
  const { rows: left } = await env.query(`SELECT column_name FROM public.sifredb_schema WHERE table_name = $1 ORDER BY column_name`, [TABLE]);
  check(left.map((r) => r.column_name).join() === 'email,email_idx2', `recorded settings after the drop: ${left.map((r) => r.column_name).join(', ')}`);
  for (let i = 0; i < 10; i++) await write();
  await checkRows('after', { old: false, new: true });
  await checkLookups('new', 'after');

  step('6. schema check: the database, the recorded settings and a sample of rows agree with the schema');
  await env.sifredb(['schema', 'check', '--schema', SCHEMAS.new], { db: true });
});
