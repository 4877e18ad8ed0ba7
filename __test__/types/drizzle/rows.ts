// Compile-time checks of sifredb/drizzle's row types (dist/integrations/drizzle/index.d.ts):
// `npx tsc -p __test__/types/drizzle` (own project: drizzle-orm's .d.ts need skipLibCheck). Nothing runs.
import { bigint, customType, integer, pgTable, text } from 'drizzle-orm/pg-core';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { StaticKeyProvider, defineTable } from '../../../dist/index.js';
import { encryptedTable } from '../../../dist/integrations/drizzle/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

const bytea = customType<{ data: Buffer }>({ dataType: () => 'bytea' });
const users = pgTable('users', {
  id: bigint('id', { mode: 'number' }).primaryKey(),
  tenantId: text('tenant_id').notNull(),
  email: text('email'),
  emailIdx: integer('email_idx'),
  born: bytea('born'),
  age: text(), // unnamed: the property is the column name
});
const schema = defineTable({
  table: 'users',
  tenant: 'tenant_id',
  columns: {
    email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 16 }] },
    born: { type: 'date', storage: 'bytea' },
    age: { type: 'number' },
  },
});
const enc = await encryptedTable(StaticKeyProvider.generate(), users, schema);

const rows = enc.decrypt([]);
const [row] = rows;
// @ts-expect-error lookup columns are not part of a decrypted row
row?.emailIdx;

const stored = enc.encrypt({ id: 1, tenantId: 't1', email: 'a@x.io', born: new Date(), age: 42 });
assertType<Equal<typeof stored, typeof users.$inferInsert>>();
// @ts-expect-error an encrypted column takes its declared type
enc.encrypt({ id: 1, tenantId: 't1', born: '1990-01-01' });
// @ts-expect-error lookup columns are computed, never given
enc.encrypt({ id: 1, tenantId: 't1', emailIdx: 3 });
const update = enc.encryptUpdate({ tenantId: 't1', email: 'b@x.io' });
assertType<Equal<typeof update.set, Partial<typeof users.$inferInsert>>>();
type R = NonNullable<typeof row>;
assertType<Equal<R['id'], number>>();
assertType<Equal<R['tenantId'], string>>();
assertType<Equal<R['email'], string | null>>();
assertType<Equal<R['born'], Date | null>>();
assertType<Equal<R['age'], number | null>>();
assertType<Equal<keyof R, 'id' | 'tenantId' | 'email' | 'born' | 'age'>>();
// @ts-expect-error the primary key is required, as in $inferInsert
enc.encrypt({ tenantId: 't1' });

// select() takes any pg-core database and gives the same rows as decrypt().
declare const pglite: PgliteDatabase;
declare const nodePg: NodePgDatabase;
const selected = await enc.select(pglite, enc.eq(users.email, 'a@x.io', { tenant: 't1' }));
assertType<Equal<typeof selected, typeof rows>>();
await enc.select(nodePg, enc.inArray(users.email, ['a@x.io'], { tenant: 't1' }));

// update() returns Drizzle's builder (awaitable, with returning()); upsert() the written rows, decrypted.
const updated = await enc.update(pglite, { id: 1, tenantId: 't1', email: 'c@x.io' }).returning();
assertType<Equal<typeof updated, (typeof users.$inferSelect)[]>>();
const upserted = await enc.upsert(nodePg, [{ id: 1, tenantId: 't1', email: 'a@x.io' }]);
assertType<Equal<typeof upserted, typeof rows>>();
