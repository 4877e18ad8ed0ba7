// docs/MIGRATION.md, procedure 2: rotating keys in production.
//   node examples/migrations/2-rotate-keys.js --db <postgres://url | PGlite directory> [--rows n]
// Creates its own table `mig2_users` (encrypted `email`, blind index `email_idx`) written by two
// application instances (each an `EncryptedTable` on the schema file), then: `sifredb keys rotate`
// → roll out (each instance refreshes; lookups send one term per active version) →
// `sifredb reencrypt --schema …` → `sifredb keys retire 1` → lookups are back to one term →
// `sifredb schema check`. Every step checks that each row decrypts to its address and that lookups
// by email find exactly its row.
import { join } from 'node:path';
import { EncryptedTable, FileKeyProvider, Keyring, SifreDBError, inspect, loadSchema } from 'sifredb';
import { ROOT, check, emailOf, main, note, random, step } from './common.js';

const TABLE = 'mig2_users';
const SCHEMA = 'examples/migrations/schemas/mig2_users.json';

await main('2-rotate-keys.js', async (env) => {
  const rand = random(2);
  const expected = new Map();
  let nextId = 1;
  const schema = (await loadSchema(join(ROOT, SCHEMA))).table(TABLE);

  /** One application process: its own keyring and table, loaded at start-up and refreshed on demand. */
  async function instance(name) {
    const keyring = await Keyring.open(await FileKeyProvider.open(env.keysFile));
    const users = await EncryptedTable.open(keyring, schema);
    const app = {
      name,
      keyring,
      users,
      /** Decrypts rows; a value under a version this process has not loaded yet makes it reload the keys once. */
      async read(rows) {
        try {
          return users.decryptRows(rows);
        } catch (error) {
          if (!(error instanceof SifreDBError && error.code === 'ERR_SIFREDB_KEY')) throw error;
          await users.keyring.refresh();
          return users.decryptRows(rows);
        }
      },
      async insert() {
        const id = nextId++;
        const address = emailOf(id);
        const row = users.encryptRow({ id, email: address });
        await env.query(`INSERT INTO ${TABLE} (id, email, email_idx) VALUES ($1, $2, $3)`, [row.id, row.email, row.email_idx]);
        expected.set(id, address);
      },
      async update() {
        const id = 1 + Math.floor(rand() * (nextId - 1));
        const address = emailOf(id, 1 + Math.floor(rand() * 1e6));
        const row = users.encryptRow({ id, email: address });
        await env.query(`UPDATE ${TABLE} SET email = $2, email_idx = $3 WHERE id = $1`, [row.id, row.email, row.email_idx]);
        expected.set(id, address);
      },
      async write() {
        await (rand() < 0.5 ? app.insert() : app.update());
      },
      /** The lookup: one term per active key version, then drop the blind index's false positives. */
      async find(address) {
        const q = users.where('email', address);
        const { rows } = await env.query(`SELECT id, email FROM ${TABLE} WHERE ${q.sql('$1')}`, [q.terms]);
        const found = (await app.read(rows)).filter(q.matches).map((r) => Number(r.id));
        return { found, terms: q.terms.length };
      },
    };
    return app;
  }

  /** Every row decrypts to what the application wrote; returns the count per key version. */
  async function checkRows(app, label) {
    const { rows } = await env.query(`SELECT id, email FROM ${TABLE}`);
    check(rows.length === expected.size, `${label}: the table has ${rows.length} rows, the application wrote ${expected.size}`);
    const versions = {};
    const plain = await app.read(rows);
    rows.forEach((r, i) => {
      check(plain[i].email === expected.get(Number(r.id)), `${label}: row ${r.id} does not decrypt to its address`);
      const v = inspect(r.email).keyVersion;
      versions[v] = (versions[v] ?? 0) + 1;
    });
    note(`${label}: all ${rows.length} rows decrypt to their address; rows per key version ${JSON.stringify(versions)}`);
    return versions;
  }

  /** Lookups by email of a sample of rows (changed case and spacing), and of an unknown address. */
  async function checkLookups(app, label, wantTerms) {
    const sample = [...expected.keys()].filter(() => rand() < 0.1).slice(0, 60);
    for (const id of sample) {
      const { found, terms } = await app.find(` ${expected.get(id).toUpperCase()}`);
      check(terms === wantTerms, `${label}: a lookup sent ${terms} terms, expected ${wantTerms}`);
      check(found.length === 1 && found[0] === id, `${label}: looking up row ${id} by email found [${found}]`);
    }
    check((await app.find('nobody@example.invalid')).found.length === 0, `${label}: an unknown address found rows`);
    note(`${label}: ${sample.length} lookups by email (${wantTerms} term${wantTerms > 1 ? 's' : ''} each) found exactly their row`);
  }

  step('0. the starting point: an encrypted column with a blind index, two application instances');
  await env.sifredb(['keygen']);
  await env.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await env.query(`CREATE TABLE ${TABLE} (id integer PRIMARY KEY, email text NOT NULL)`);
  // The lookup column, its index, the CHECK constraint and the recorded settings, from the schema file.
  await env.sifredb(['schema', 'sql', '--schema', SCHEMA, '--apply'], { db: true, keys: false });
  const a = await instance('A');
  const b = await instance('B');
  for (let i = 0; i < env.rows; i++) await (i % 2 ? a : b).insert();
  await checkRows(a, 'before');
  await checkLookups(b, 'before', 1);

  step('1. rotate: a new key version, current at once in the keystore');
  await env.sifredb(['keys', 'rotate']);
  // The processes have not seen it yet: they keep writing under version 1, which is still fine.
  check(a.keyring.currentVersion === 1 && b.keyring.currentVersion === 1, 'an instance saw the rotation before refreshing');
  await b.write();

  step('2. roll out: every instance reloads the keys (users.keyring.refresh() or a restart)');
  await a.keyring.refresh();
  check(a.keyring.currentVersion === 2, `instance A has current version ${a.keyring.currentVersion} after refresh`);
  await a.insert();
  const newest = (await env.query(`SELECT email FROM ${TABLE} WHERE id = $1`, [nextId - 1])).rows[0].email;
  check(inspect(newest).keyVersion === 2, 'a refreshed instance still writes under version 1');
  // B has not refreshed: it cannot open version 2 with the keys it holds, and its lookups would
  // send only the version-1 term. Its read() reloads the keys on such an error; keep this window short.
  let lagging;
  try {
    b.users.decryptRow({ email: newest });
  } catch (error) {
    lagging = error;
  }
  check(lagging?.code === 'ERR_SIFREDB_KEY', 'an instance that has not refreshed decrypted a version-2 value');
  note('an instance that has not refreshed cannot read version-2 values (ERR_SIFREDB_KEY): refresh on that error');
  await b.keyring.refresh();
  check(b.keyring.currentVersion === 2, `instance B has current version ${b.keyring.currentVersion} after refresh`);
  for (let i = 0; i < 30; i++) await (i % 2 ? a : b).write();
  const during = await checkRows(a, 'during');
  check(during[1] > 0 && during[2] > 0, 'during the rotation both versions should be in the table');
  await checkLookups(b, 'during', 2);

  step('3. re-encrypt every row still under version 1');
  const job = await env.sifredb(['reencrypt', '--schema', SCHEMA, '--column', 'email'], {
    db: true,
    whileRunning: () => (rand() < 0.5 ? a : b).write(),
  });
  check(/failed\s+0\b/.test(job.stdout), 'reencrypt reported failed rows');
  // A rerun finds nothing left: what makes it safe to retire version 1.
  const rerun = await env.sifredb(['reencrypt', '--schema', SCHEMA, '--column', 'email', '--dry-run'], { db: true });
  check(/would be re-encrypted\s+0\b/.test(rerun.stdout), 'rows are still under an old key version after reencrypt');
  const after = await checkRows(a, 'after reencrypt');
  check(Object.keys(after).join() === '2', `rows not under version 2 remain: ${JSON.stringify(after)}`);
  await checkLookups(a, 'after reencrypt', 2);

  step('4. retire version 1: still decrypts (backups), left out of lookups');
  await env.sifredb(['keys', 'retire', '1']);
  await a.keyring.refresh();
  await b.keyring.refresh();
  await checkLookups(a, 'after retire', 1);
  await checkLookups(b, 'after retire', 1);
  for (let i = 0; i < 10; i++) await a.write();
  await checkRows(b, 'after retire');
  const { stdout } = await env.sifredb(['keys', 'list']);
  check(/retired/.test(stdout), '`keys list` does not show version 1 as retired');

  step('5. schema check: the database, the recorded settings and a sample of rows agree with the schema');
  await env.sifredb(['schema', 'check', '--schema', SCHEMA], { db: true });
});
