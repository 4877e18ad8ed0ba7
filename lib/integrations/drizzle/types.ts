/**
 * Row types of `sifredb/drizzle`: a Drizzle table's `$inferSelect` / `$inferInsert` with each
 * encrypted column in its schema's declared JS type and the lookup columns taken out (they are
 * computed from their column, never written or read by the application).
 */
import type { PgTable } from 'drizzle-orm/pg-core';
import type { PlainValueOf, TableSchemaInit } from '../../schema/definition.js';

/** Database name of the Drizzle column under property `K` (the key when the column was left unnamed). */
export type DbNameOf<TTable extends PgTable, K> = K extends keyof TTable['_']['columns']
  ? TTable['_']['columns'][K]['_']['name'] extends infer N
    ? N extends '' ? K : N
    : never
  : K;

type LookupOf<C> =
  | (C extends { readonly blindIndexes: readonly (infer B)[] } ? (B extends { readonly column: infer N } ? N : never) : never)
  | (C extends { readonly deterministicLookups: readonly (infer D)[] } ? (D extends { readonly column: infer N } ? N : never) : never);

/** Database names of every lookup column (blind indexes and deterministic lookups) of a schema. */
export type LookupColumns<T extends TableSchemaInit> = { [K in keyof T['columns']]: LookupOf<T['columns'][K]> }[keyof T['columns']];

type PlainOf<TTable extends PgTable, T extends TableSchemaInit, K, Else> = DbNameOf<TTable, K> extends keyof T['columns']
  ? PlainValueOf<T['columns'][DbNameOf<TTable, K>]['type']> | null
  : Else;

/** A selected row after decryption: `$inferSelect`, encrypted columns in their declared types, lookups dropped. */
export type DecryptedRow<TTable extends PgTable, T extends TableSchemaInit> = {
  [K in keyof TTable['$inferSelect'] as DbNameOf<TTable, K> extends LookupColumns<T> ? never : K]: PlainOf<TTable, T, K, TTable['$inferSelect'][K]>;
};

/** A row to insert, as the application has it: `$inferInsert` with plain encrypted values and no lookup columns. */
export type PlainInsert<TTable extends PgTable, T extends TableSchemaInit> = {
  [K in keyof TTable['$inferInsert'] as DbNameOf<TTable, K> extends LookupColumns<T> ? never : K]: PlainOf<TTable, T, K, TTable['$inferInsert'][K]>;
};

/** The values of an UPDATE (`.set()`): any subset of {@link PlainInsert}. */
export type PlainUpdate<TTable extends PgTable, T extends TableSchemaInit> = Partial<PlainInsert<TTable, T>>;
