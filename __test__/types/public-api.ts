// Compile-time checks of the public types (dist/index.d.ts): `npx tsc -p __test__/types`. Nothing
// here runs; a wrong type fails the compile, and each @ts-expect-error must still be an error.
import type { Buffer } from 'node:buffer';
import {
  BlindIndex,
  type BlindIndexTerm,
  type DecryptedValue,
  EncryptionContext,
  type JsonValue,
  StaticKeyProvider,
  type ValueOf,
  Vault,
} from '../../dist/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

const keys = StaticKeyProvider.generate();
const vault = await Vault.open(keys);
const ctx = EncryptionContext.of('users', 'email');
const ct = vault.encrypt(new Date(), ctx);

assertType<Equal<ReturnType<typeof vault.decryptBytes>, Buffer>>();
const any = vault.decrypt(ct, ctx);
assertType<Equal<typeof any, DecryptedValue>>();
const date = vault.decrypt(ct, ctx, { expect: 'date' });
assertType<Equal<typeof date, Date>>();
const json = vault.decrypt(ct, ctx, { expect: 'json', aad: 42 });
assertType<Equal<typeof json, JsonValue>>();
assertType<Equal<ValueOf<'bytes'>, Buffer>>();
assertType<Equal<ValueOf<'string' | 'number'>, string | number>>();
const names = vault.decryptMany([ct], ctx, { expect: 'string' });
assertType<Equal<typeof names, string[]>>();
const counts = await vault.decryptManyAsync([ct], ctx, { expect: 'bigint', threads: 2 });
assertType<Equal<typeof counts, bigint[]>>();
const values = vault.decryptMany([ct], ctx);
assertType<Equal<typeof values, DecryptedValue[]>>();
// @ts-expect-error: not a value type
vault.decrypt(ct, ctx, { expect: 'Date' });
// @ts-expect-error: removed in 0.x
vault.decryptValue(ct, ctx);

const byDefault = await BlindIndex.open(keys, { name: 'email' });
assertType<Equal<typeof byDefault.bits, 16>>();
assertType<Equal<ReturnType<typeof byDefault.compute>['int'], number>>();
const narrow = await BlindIndex.open(keys, { name: 'email', bits: 18 });
assertType<Equal<ReturnType<typeof narrow.compute>['int'], number>>();
const wide = await BlindIndex.open(keys, { name: 'email', bits: 54 });
assertType<Equal<ReturnType<typeof wide.queryTerms>[number]['int'], bigint>>();
const bits: number = 20;
const runtime = await BlindIndex.open(keys, { name: 'email', bits });
assertType<Equal<ReturnType<typeof runtime.computeMany>[number]['int'], number | bigint>>();
// A typed index is still a BlindIndex, and its terms are still BlindIndexTerms.
const indexes: BlindIndex[] = [byDefault, narrow, wide];
const term: BlindIndexTerm = narrow.compute('a', ctx);
void indexes;
void term;
