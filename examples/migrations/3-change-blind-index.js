// docs/MIGRATION.md, procedure 3: changing a blind index's settings.
//   node examples/migrations/3-change-blind-index.js --db <postgres://url | PGlite directory> [--rows n]
// Creates its own table `mig3_users` whose `email_idx` is a 16-bit index without transforms (so
// " Alice@Example.com" does not find "alice@example.com"), and moves it to an 18-bit index with
// trim,lowercase: add `email_idx2` (new index name `email_v2`) → dual-write both terms → backfill →
// switch queries → drop the old column. Lookups find exactly the right row at every step.
import { BlindIndex, EncryptionContext, FileKeyProvider, Keyring, Vault } from 'sifredb';
import { check, emailOf, main, note, random, step } from './common.js';

const TABLE = 'mig3_users';

await main('3-change-blind-index.js', async (env) => {
  const rand = random(3);
  const expected = new Map();
  let nextId = 1;

  await env.sifredb(['keygen']);
  const keyring = await Keyring.open(await FileKeyProvider.open(env.keysFile));
  const vault = await Vault.open(keyring);
  const ctx = new EncryptionContext({ table: TABLE, column: 'email' });
  // The new index has a new name: its terms come from another key, so the two can never be confused,
  // and the old column stays valid until it is dropped.
  const oldIndex = await BlindIndex.open(keyring, { name: 'email', bits: 16 });
  const newIndex = await BlindIndex.open(keyring, { name: 'email_v2', bits: 18, transforms: ['trim', 'lowercase'] });

  /** What the application writes for an address at each stage. */
  let writeNew = false;
  let writeOld = true;
  const lookupColumns = (address) => ({
    ...(writeOld ? { email_idx: oldIndex.compute(address, ctx).int } : {}),
    ...(writeNew ? { email_idx2: newIndex.compute(address, ctx).int } : {}),
  });
  async function upsert(id, address) {
    const cols = { id, email: vault.encryptToString(address, ctx), ...lookupColumns(address) };
    const names = Object.keys(cols);
    await env.query(
      `INSERT INTO ${TABLE} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})
       ON CONFLICT (id) DO UPDATE SET ${names.slice(1).map((n) => `${n} = EXCLUDED.${n}`).join(', ')}`,
      Object.values(cols),
    );
    expected.set(id, address);
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

  /** The two lookups: the old index matches the exact text only; the new one ignores case and spaces. */
  const find = {
    async old(address) {
      const terms = oldIndex.queryTerms(address, ctx).map((t) => t.int);
      const { rows } = await env.query(`SELECT id, email FROM ${TABLE} WHERE email_idx = ANY($1::int[])`, [terms]);
      return rows.filter((r) => vault.decryptToString(r.email, ctx) === address).map((r) => Number(r.id));
    },
    async new(address) {
      const terms = newIndex.queryTerms(address, ctx).map((t) => t.int);
      const { rows } = await env.query(`SELECT id, email FROM ${TABLE} WHERE email_idx2 = ANY($1::int[])`, [terms]);
      const wanted = address.trim().toLowerCase();
      return rows.filter((r) => vault.decryptToString(r.email, ctx).trim().toLowerCase() === wanted).map((r) => Number(r.id));
    },
  };
  async function checkLookups(how, label) {
    const sample = [...expected.keys()].filter(() => rand() < 0.1).slice(0, 60);
    for (const id of sample) {
      // The old index needs the address exactly as stored; the new one finds it as users type it.
      const query = how === 'old' ? expected.get(id) : `  ${expected.get(id).toUpperCase()}`;
      const found = await find[how](query);
      check(found.length === 1 && found[0] === id, `${label}: looking up row ${id} with the ${how} index found [${found}]`);
    }
    check((await find[how]('nobody@example.invalid')).length === 0, `${label}: an unknown address found rows`);
    note(`${label}: ${sample.length} lookups with the ${how} index found exactly their row`);
  }
  async function checkRows(label, want) {
    const { rows } = await env.query(`SELECT * FROM ${TABLE}`);
    check(rows.length === expected.size, `${label}: the table has ${rows.length} rows, the application wrote ${expected.size}`);
    for (const r of rows) {
      const address = vault.decryptToString(r.email, ctx);
      check(address === expected.get(Number(r.id)), `${label}: row ${r.id} does not decrypt to its address`);
      if (want.old) check(r.email_idx === oldIndex.compute(address, ctx).int, `${label}: row ${r.id}: email_idx is not its old term`);
      if (want.new) check(r.email_idx2 === newIndex.compute(address, ctx).int, `${label}: row ${r.id}: email_idx2 is not its new term`);
    }
    note(`${label}: all ${rows.length} rows decrypt to their address${want.new ? ' and have their new term' : ''}`);
  }

  step('0. the starting point: email with a 16-bit blind index, no transforms');
  await env.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await env.query(`CREATE TABLE ${TABLE} (id integer PRIMARY KEY, email text NOT NULL, email_idx integer)`);
  await env.query(`CREATE INDEX ${TABLE}_email_idx ON ${TABLE} (email_idx)`);
  for (; nextId <= env.rows; nextId++) await upsert(nextId, emailOf(nextId));
  await checkLookups('old', 'before');
  const sloppy = await find.old(`  ${expected.get(3).toUpperCase()}`);
  check(sloppy.length === 0, 'the old index (no transforms) should not find an address typed in another case');
  note('the old index does not find " USER.3@…" for "User.3@…": the reason for the change');

  step('1. add the new index column (nullable) and its database index');
  await env.query(`ALTER TABLE ${TABLE} ADD COLUMN IF NOT EXISTS email_idx2 integer`);
  await env.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_email_idx2 ON ${TABLE} (email_idx2)`);

  step('2. dual-write: the application writes both terms');
  writeNew = true;
  for (let i = 0; i < 40; i++) await write();

  step('3. backfill the new column');
  // The ciphertexts do not change: each row is decrypted and only its new term is written, in
  // keyset batches, compare-and-set on the ciphertext read (a row the application rewrote meanwhile
  // already has its term from the dual-write and is left alone).
  let last = 0;
  let filled = 0;
  for (;;) {
    const { rows } = await env.query(`SELECT id, email FROM ${TABLE} WHERE id > $1 AND email_idx2 IS NULL ORDER BY id LIMIT 500`, [last]);
    if (rows.length === 0) break;
    last = Number(rows.at(-1).id);
    const terms = rows.map((r) => newIndex.compute(vault.decryptToString(r.email, ctx), ctx).int);
    const result = await env.query(
      `UPDATE ${TABLE} t SET email_idx2 = v.term FROM unnest($1::int[], $2::text[], $3::int[]) AS v(id, email, term)
       WHERE t.id = v.id AND t.email = v.email AND t.email_idx2 IS NULL`,
      [rows.map((r) => r.id), rows.map((r) => r.email), terms],
    );
    filled += result.rowCount;
    await write(); // the application keeps running between batches
  }
  note(`filled email_idx2 in ${filled} rows`);
  const { rows: [{ n: missing }] } = await env.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE email_idx2 IS NULL`);
  check(missing === 0, `${missing} rows still have no new term after the backfill`);
  await checkRows('backfilled', { old: true, new: true });

  step('4. switch queries to the new index (both terms still written, for a rollback)');
  await checkLookups('new', 'switched');
  await checkLookups('old', 'old index still valid');

  step('5. stop writing the old term, then drop the old column');
  writeOld = false;
  for (let i = 0; i < 10; i++) await write();
  await env.query(`ALTER TABLE ${TABLE} DROP COLUMN email_idx`);
  const columns = await env.columns(TABLE);
  check(!columns.has('email_idx') && columns.has('email_idx2'), `columns after the drop: ${[...columns].join(', ')}`);
  for (let i = 0; i < 10; i++) await write();
  await checkRows('after', { old: false, new: true });
  await checkLookups('new', 'after');
});
