// sifredb/drizzle end to end on a temporary PGlite database: `node examples/drizzle.js`.
// Prints each step; exits 1 when a check fails. docs/integrations/drizzle.md explains the shape.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { and, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { bigint, customType, integer, pgTable, text } from 'drizzle-orm/pg-core';
import { FileKeyProvider, Keyring, applySchema, fromPGlite, isEncrypted, loadSchema } from 'sifredb';
import { encryptedTable } from 'sifredb/drizzle';

const failures = [];
const check = (ok, what) => {
  console.log(`   ${ok ? 'ok' : 'FAILED'}: ${what}`);
  if (!ok) failures.push(what);
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-drizzle-'));
try {
  // 1. The SifreDB schema (database column names): the one the CLI and `sifredb schema sql/check` read.
  console.log('1. schema');
  const usersSchema = (await loadSchema(fileURLToPath(new URL('./schemas/users.json', import.meta.url)))).table('users');

  // 2. The Drizzle table: every column the schema names, with a type its stored values fit.
  const bytea = customType({ dataType: () => 'bytea' });
  const users = pgTable('users', {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    tenantId: text('tenant_id').notNull(),
    email: text('email'),
    emailIdx: integer('email_idx'),
    ssn: text('ssn'),
    born: bytea('born'),
  });

  console.log('2. database: table, then the schema DDL (lookup index, CHECK constraints, settings records)');
  const client = new PGlite(path.join(dir, 'db'));
  const db = drizzle(client);
  await db.execute(sql`CREATE TABLE users (id bigint PRIMARY KEY, tenant_id text NOT NULL)`);
  await applySchema(fromPGlite(client), usersSchema);

  console.log('3. keys and the encrypted table (checked against the Drizzle table)');
  const keyring = await Keyring.open(await FileKeyProvider.create(path.join(dir, 'keys.json')));
  const enc = await encryptedTable(keyring, users, usersSchema);

  console.log('4. insert: plain rows in, ciphertexts and lookup terms stored');
  const inserted = await db
    .insert(users)
    .values(
      enc.encrypt([
        { id: 1, tenantId: 'acme', email: 'Ann@Example.com', ssn: '123-45-6789', born: new Date('1990-04-01') },
        { id: 2, tenantId: 'acme', email: 'bob@example.com', ssn: '987-65-4321', born: new Date('1985-01-20') },
        { id: 3, tenantId: 'globex', email: 'ann@example.com', ssn: '123-45-6789', born: new Date('1970-07-07') },
      ]),
    )
    .returning();
  check(inserted.every((r) => isEncrypted(r.email) && isEncrypted(r.ssn)), 'returning() shows ciphertexts');
  check(enc.decrypt(inserted)[0].born instanceof Date, 'decrypt(returning) gives a Date');

  console.log('5. select by an encrypted column (blind index: false positives dropped; this tenant only)');
  const ann = await enc.select(db, enc.eq(users.email, ' ANN@example.com', { tenant: 'acme' }));
  check(ann.length === 1 && ann[0].id === 1 && ann[0].email === 'Ann@Example.com', 'found Ann in acme, not in globex');
  const bySsn = await enc.select(db, and(enc.eq(users.ssn, '123-45-6789', { tenant: 'globex' }), enc.gt(users.id, 0)));
  check(bySsn.length === 1 && bySsn[0].id === 3, 'deterministic column, combined with a plain condition');

  console.log('6. update and upsert (the tenant and id select the row; they are never rewritten)');
  // encryptUpdate gives { set, where }: the WHERE keeps the UPDATE on the tenant (and id) the values are encrypted for.
  await enc.update(db, { id: 2, tenantId: 'acme', email: 'robert@example.com' });
  const stolen = await enc.update(db, { tenantId: 'acme', email: 'x@example.com' }, sql`${users.id} = 3`).returning();
  check(stolen.length === 0, "an update with acme's context does not reach globex's row 3");
  await enc.upsert(db, [{ id: 1, tenantId: 'acme', email: 'ann@new.example', ssn: '123-45-6789', born: new Date('1990-04-01') }]);
  try {
    await enc.upsert(db, [{ id: 3, tenantId: 'acme', email: 'x@example.com', ssn: '1', born: new Date('1990-04-01') }]);
    check(false, "an upsert onto globex's id is refused");
  } catch (error) {
    check(error.code === 'ERR_SIFREDB_INPUT', `an upsert onto globex's id is refused: ${error.message}`);
  }
  const acme = await enc.select(db, sql`${users.tenantId} = 'acme'`);
  check(acme.map((r) => r.email).sort().join() === 'ann@new.example,robert@example.com', 'updated and upserted values read back');

  console.log('7. what is refused');
  for (const [what, call] of [
    ['LIKE on email', () => enc.like(users.email, '%ann%')],
    ['ORDER BY born', () => enc.asc(users.born)],
  ]) {
    try {
      call();
      check(false, `${what} refused`);
    } catch (error) {
      check(error.code === 'ERR_SIFREDB_INPUT', `${what} refused: ${error.message}`);
    }
  }
  try {
    // Drizzle's own eq on an encrypted column would compare a plaintext with ciphertexts: select() refuses it.
    await enc.select(db, sql`${users.ssn} = ${'123-45-6789'}`);
    check(false, 'a plain condition on ssn refused by select()');
  } catch (error) {
    check(error.code === 'ERR_SIFREDB_INPUT', `a plain condition on ssn refused by select(): ${error.message}`);
  }
  let refused = false;
  try {
    await db.execute(sql`INSERT INTO users (id, tenant_id, email) VALUES (9, 'acme', 'plain@example.com')`);
  } catch {
    refused = true;
  }
  check(refused, 'a plaintext INSERT around the integration is refused by the CHECK constraint');
  await client.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

if (failures.length > 0) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
