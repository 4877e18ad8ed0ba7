// BlindIndex: output forms, truncation, transforms, compound indexes, key separation, and the planner.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { BlindIndex, EncryptionContext, Keyring, StaticKeyProvider, planBlindIndex } from '../dist/index.js';

const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
const ctx = EncryptionContext.of('users', 'email');
const open = (options) => BlindIndex.open(keyring, options);

function inputError(t, fn, pattern) {
  const error = t.throws(fn);
  t.is(error?.code, 'ERR_SIFREDB_INPUT', error?.message);
  if (pattern) t.regex(error.message, pattern);
}

test('a term in every form: bytes, hex, int; deterministic', async (t) => {
  const index = await open({ name: 'email', bits: 32 });
  const a = index.compute('alice@example.com', ctx);
  t.is(a.version, 1);
  t.is(a.bytes.length, 4);
  t.is(a.hex, a.bytes.toString('hex'));
  t.is(a.int, a.bytes.readUInt32BE(0));
  t.deepEqual(index.compute('alice@example.com', ctx), a);
  t.notDeepEqual(index.compute('bob@example.com', ctx).bytes, a.bytes);
  t.true(Object.isFrozen(a));
});

test('truncation: ceil(bits/8) bytes, unused low bits zero, int is the leading bits', async (t) => {
  for (const bits of [8, 12, 16, 31, 53, 54, 63, 64, 100, 255, 256]) {
    const index = await open({ name: 'email', bits });
    const full = (await open({ name: 'email', bits: 256 })).compute('v', ctx).bytes;
    const term = index.compute('v', ctx);
    t.is(term.bytes.length, Math.ceil(bits / 8));
    const spare = term.bytes.length * 8 - bits;
    t.is(term.bytes.at(-1) & ((1 << spare) - 1), 0, `bits=${bits}`);
    t.true(term.bytes.subarray(0, Math.floor(bits / 8)).equals(full.subarray(0, Math.floor(bits / 8))), 'a prefix of the full HMAC');
    const expected = BigInt(`0x${term.hex}`) >> BigInt(spare);
    if (bits <= 53) {
      t.is(typeof term.int, 'number');
      t.is(BigInt(term.int), expected);
    } else {
      t.is(typeof term.int, 'bigint');
      t.is(term.int, expected);
    }
    t.true(expected < 2n ** BigInt(bits));
  }
});

test('transforms normalise before hashing', async (t) => {
  const email = await open({ name: 'email', transforms: ['trim', 'lowercase'] });
  t.deepEqual(email.compute('  Alice@Example.COM ', ctx), email.compute('alice@example.com', ctx));
  const upper = await open({ name: 'code', transforms: ['uppercase'] });
  t.deepEqual(upper.compute('ab-c', ctx), upper.compute('AB-C', ctx));
  const phone = await open({ name: 'phone', transforms: ['digits'] });
  t.deepEqual(phone.compute('+1 (555) 010-9999', ctx), phone.compute('15550109999', ctx));
  const last4 = await open({ name: 'ssn4', transforms: ['digits', { lastN: 4 }] });
  t.deepEqual(last4.compute('123-45-6789', ctx), last4.compute('6789', ctx));
  t.deepEqual(last4.compute('999-99-6789', ctx), last4.compute('6789', ctx));
  const lastEmoji = await open({ name: 'tail', transforms: [{ lastN: 2 }] });
  t.deepEqual(lastEmoji.compute('xx🔐🔑', ctx), lastEmoji.compute('🔐🔑', ctx), 'counts code points, not UTF-16 units');
  const nfc = await open({ name: 'name', transforms: ['nfc'] });
  const raw = await open({ name: 'name' });
  t.deepEqual(nfc.compute('Jose\u0301', ctx), nfc.compute('Jos\u00e9', ctx));
  t.notDeepEqual(raw.compute('Jose\u0301', ctx).bytes, raw.compute('Jos\u00e9', ctx).bytes);
  // Order matters and is the listed order.
  const a = await open({ name: 'o', transforms: [{ lastN: 3 }, 'trim'] });
  const b = await open({ name: 'o', transforms: ['trim', { lastN: 3 }] });
  t.notDeepEqual(a.compute('abcd  ', ctx).bytes, b.compute('abcd  ', ctx).bytes);
});

test('numbers and bigints are indexed as their decimal text', async (t) => {
  const index = await open({ name: 'year' });
  t.deepEqual(index.compute(1990, ctx), index.compute('1990', ctx));
  t.deepEqual(index.compute(1990n, ctx), index.compute('1990', ctx));
  inputError(t, () => index.compute(Number.NaN, ctx));
  inputError(t, () => index.compute(null, ctx));
  inputError(t, () => index.compute(Buffer.from('x'), ctx));
});

test('compound index: last 4 of SSN + birth year, as an array or a record', async (t) => {
  const index = await open({
    name: 'ssn4_year',
    bits: 24,
    fields: [
      { name: 'ssn', transforms: ['digits', { lastN: 4 }] },
      { name: 'birthYear', transforms: [] },
    ],
  });
  t.deepEqual(index.fields, ['ssn', 'birthYear']);
  const fromArray = index.compute(['123-45-6789', 1990], ctx);
  t.deepEqual(index.compute({ birthYear: '1990', ssn: '6789' }, ctx), fromArray);
  t.notDeepEqual(index.compute(['6789', 1991], ctx).bytes, fromArray.bytes);
  inputError(t, () => index.compute(['6789'], ctx), /2 fields; got 1/);
  inputError(t, () => index.compute({ ssn: '6789' }, ctx), /missing value for field "birthYear"/);
  inputError(t, () => index.compute('6789', ctx));
});

test('length prefixes keep field boundaries: ("ab","c") ≠ ("a","bc")', async (t) => {
  const index = await open({ name: 'pair', bits: 256, fields: [{ name: 'a' }, { name: 'b' }] });
  t.notDeepEqual(index.compute(['ab', 'c'], ctx).bytes, index.compute(['a', 'bc'], ctx).bytes);
  t.notDeepEqual(index.compute(['', 'abc'], ctx).bytes, index.compute(['abc', ''], ctx).bytes);
});

test('keys are separated by index name, context, tenant and root key', async (t) => {
  const a = await open({ name: 'email', bits: 64 });
  const b = await open({ name: 'email_domain', bits: 64 });
  const value = 'alice@example.com';
  const terms = [
    a.compute(value, ctx),
    b.compute(value, ctx),
    a.compute(value, EncryptionContext.of('users', 'backup_email')),
    a.compute(value, ctx.withTenant('t1')),
    a.compute(value, ctx.withTenant('t2')),
    (await BlindIndex.open(new StaticKeyProvider(randomBytes(32)), { name: 'email', bits: 64 })).compute(value, ctx),
  ];
  t.is(new Set(terms.map((x) => x.hex)).size, terms.length);
});

test('queryTerms under one key version is the computed term', async (t) => {
  const index = await open({ name: 'email' });
  t.deepEqual(index.queryTerms('x', ctx), [index.compute('x', ctx)]);
});

test('options are validated', async (t) => {
  for (const options of [
    { name: '' },
    { name: 'x'.repeat(256) },
    { name: 'a\uD800' },
    { name: 'n', bits: 7 },
    { name: 'n', bits: 257 },
    { name: 'n', bits: 12.5 },
    { name: 'n', transforms: ['rot13'] },
    { name: 'n', transforms: [{ lastN: 0 }] },
    { name: 'n', transforms: 'lowercase' },
    { name: 'n', fields: [] },
    { name: 'n', fields: [{ name: 'a' }, { name: 'a' }] },
    { name: 'n', fields: [{ name: 'a' }], transforms: ['trim'] },
  ]) {
    await t.throwsAsync(() => open(options), { code: 'ERR_SIFREDB_INPUT' }, JSON.stringify(options));
  }
  await t.throwsAsync(() => BlindIndex.open(keyring), { code: 'ERR_SIFREDB_INPUT' });
  const index = await open({ name: 'n' });
  t.is(index.bits, 16, 'default bits');
  inputError(t, () => index.compute('a\uDC00', ctx), /lone surrogate/);
  inputError(t, () => index.compute('x', { table: 'users', column: 'email' }));
});

test('planner: an email column of 1M rows gets 18 bits (≥ 2 coincidences), not 20', (t) => {
  const plan = planBlindIndex({ rows: 1_000_000 });
  t.is(plan.bits, 18);
  t.true(plan.safe);
  t.true(plan.expectedCoincidences >= 2);
  t.true(Math.abs(plan.expectedFalsePositivesPerQuery - 999_999 / 2 ** 18) < 1e-9);
  t.true(Math.abs(plan.expectedCollisions - (1e6 * (1e6 - 1)) / 2 / 2 ** 18) < 1e-3);
  t.regex(plan.reasoning, /Safety wins/);
});

test('planner: accepting more false positives buys fewer bits', (t) => {
  const plan = planBlindIndex({ rows: 1_000_000, maxFalsePositivesPerQuery: 100 });
  t.is(plan.bits, 14);
  t.true(plan.expectedFalsePositivesPerQuery <= 100);
  t.true(plan.expectedCoincidences >= 2);
});

test('planner: each term must cover at least 2 distinct values; other indexes count against the budget', (t) => {
  // 100,000 values in 1M rows: 2^15 terms leave ~3 values per term, 2^16 fewer than 2.
  const medium = planBlindIndex({ rows: 1_000_000, distinctValues: 100_000 });
  t.is(medium.bits, Math.floor(Math.log2(100_000 / 2)));
  t.true(medium.safe);
  t.true(medium.expectedValuesPerTerm >= 2);
  t.true(Math.abs(medium.expectedValuesPerTerm - 100_000 / 2 ** 15) < 1e-9);
  t.regex(medium.reasoning, /Safety wins/);
  // With another index on the value, the cap drops by its bits.
  t.is(planBlindIndex({ rows: 1_000_000, distinctValues: 100_000, otherIndexBits: 4 }).bits, 11);
  // Unique values: the values-per-term cap equals the coincidence cap.
  t.is(planBlindIndex({ rows: 1_000_000 }).expectedValuesPerTerm, planBlindIndex({ rows: 1_000_000 }).expectedCoincidences);
  const alone = planBlindIndex({ rows: 10_000_000 });
  const withOthers = planBlindIndex({ rows: 10_000_000, otherIndexBits: 8 });
  t.is(withOthers.bits, alone.bits - 8);
  t.true(withOthers.expectedCoincidences >= 2);
});

test('planner: a column with very few distinct values is never called safe', (t) => {
  // 50 values: every value covers ~20,000 rows, yet 20 bits (or even 8) give each value its own term.
  const plan = planBlindIndex({ rows: 1_000_000, distinctValues: 50 });
  t.false(plan.safe);
  t.is(plan.bits, 8);
  t.true(plan.expectedValuesPerTerm < 2);
  t.true(plan.expectedCoincidences >= 2, 'rows per term alone would have looked safe');
  t.regex(plan.reasoning, /50 distinct values cannot be indexed without revealing it/);
  for (const distinctValues of [2, 300, 511]) t.false(planBlindIndex({ rows: 1e7, distinctValues }).safe, `${distinctValues} values`);
  const justEnough = planBlindIndex({ rows: 1e7, distinctValues: 512 });
  t.true(justEnough.safe);
  t.is(justEnough.bits, 8);
  t.is(justEnough.expectedValuesPerTerm, 2);
});

test('planner: a tiny table cannot be hidden, and says so', (t) => {
  const plan = planBlindIndex({ rows: 100 });
  t.is(plan.bits, 8);
  t.false(plan.safe);
  t.regex(plan.reasoning, /fewer than 2 rows per term/);
});

test('planner: inputs are validated', (t) => {
  for (const input of [{}, { rows: 0 }, { rows: Number.NaN }, { rows: 10, distinctValues: 11 }, { rows: 10, maxFalsePositivesPerQuery: 0 }, { rows: 10, otherIndexBits: -1 }]) {
    inputError(t, () => planBlindIndex(input));
  }
  inputError(t, () => planBlindIndex());
});
