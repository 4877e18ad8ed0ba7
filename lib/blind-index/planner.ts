/**
 * {@link planBlindIndex}: picks a blind-index length from the table's size, after CipherSweet's
 * published guidance (coincidence count between 2 and the selectivity you need). The math is in
 * docs/BLIND-INDEX.md.
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';

/** Inputs of {@link planBlindIndex}. */
export interface BlindIndexPlanInput {
  /** Expected number of rows (plan for the size the table will grow to). */
  rows: number;
  /** Expected number of distinct values in the column, 1..rows; default `rows` (every value unique, e.g. emails). */
  distinctValues?: number;
  /**
   * Most rows with another value you accept per lookup (they are fetched, decrypted and discarded).
   * Default 1. Larger values buy more hiding (fewer bits).
   */
  maxFalsePositivesPerQuery?: number;
  /**
   * Sum of the bits of the other blind indexes already on the same value (e.g. a 12-bit index on the
   * email domain next to this one). Together they narrow a row down further, so they count against
   * the same budget. Default 0.
   */
  otherIndexBits?: number;
}

/** What {@link planBlindIndex} recommends. */
export interface BlindIndexPlan {
  /** Recommended `bits` for `BlindIndex.open`, 8..256. */
  readonly bits: number;
  /** Expected rows with a different value returned by one lookup term: `(rows − rows/distinct) / 2^bits`. */
  readonly expectedFalsePositivesPerQuery: number;
  /** Expected pairs of distinct values that share a term (birthday bound): `d(d−1)/2 / 2^bits`. */
  readonly expectedCollisions: number;
  /**
   * Expected rows sharing one combination of terms of all indexes on the value (CipherSweet's
   * "coincidence count"): `rows / 2^min(bits + otherIndexBits, log2 distinct)`. At least 2 means a
   * term (with the other indexes) does not single out one row.
   */
  readonly expectedCoincidences: number;
  /**
   * Expected distinct values sharing one combination of terms: `distinct / 2^(bits + otherIndexBits)`.
   * Below 2, a term (with the other indexes) identifies its value, whatever the row count.
   */
  readonly expectedValuesPerTerm: number;
  /**
   * Whether `expectedCoincidences ≥ 2` and `expectedValuesPerTerm ≥ 2` both hold; false when the
   * table is too small, or the column has too few distinct values, for any length ≥ 8.
   */
  readonly safe: boolean;
  /** The reasoning in plain words. */
  readonly reasoning: string;
}

const MIN_BITS = 8;
const MAX_BITS = 256;

function positive(value: unknown, name: string, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new SifreDBError(ERROR_CODES.input, `${name} must be a finite number ≥ ${min}`);
  }
  return value;
}

function round(n: number): string {
  if (n === 0) return '0';
  if (n >= 100 || Number.isInteger(n)) return Math.round(n).toLocaleString('en-US');
  return n >= 0.01 ? n.toFixed(2) : n.toExponential(1);
}

/**
 * Recommends a blind-index length in bits for a table of `rows` rows with `distinctValues`
 * distinct values:
 *
 * 1. Safety: the coincidence count `C = rows / 2^min(bits + otherIndexBits, log2 distinct)` must
 *    stay ≥ 2 (CipherSweet's rule), so that the terms never single out one row, and each term must
 *    cover at least 2 distinct values, `V = distinct / 2^(bits + otherIndexBits) ≥ 2`, so that a term
 *    never identifies one value (with 50 values, a 20-bit term is the value). This caps `bits` at
 *    `floor(log2(distinct / 2) − otherIndexBits)`; a column with fewer than 512 distinct values
 *    (2^8 · 2) cannot be indexed without revealing it, and the plan says `safe: false`.
 * 2. Selectivity: `bits` just large enough that a lookup returns at most
 *    `maxFalsePositivesPerQuery` rows holding another value; more bits would only reveal more.
 *
 * It picks the selectivity length, lowered to the safety cap when they conflict (safety wins: you
 * then filter a few more false positives after decrypting). During a key rotation a lookup sends one
 * term per active key version, which multiplies false positives by that number.
 *
 * @throws `ERR_SIFREDB_INPUT` for non-numeric or out-of-range inputs.
 */
export function planBlindIndex(input: BlindIndexPlanInput): BlindIndexPlan {
  if (typeof input !== 'object' || input === null) {
    throw new SifreDBError(ERROR_CODES.input, 'planBlindIndex needs { rows, distinctValues?, maxFalsePositivesPerQuery? }');
  }
  const rows = positive(input.rows, 'rows', 1);
  const distinct = positive(input.distinctValues ?? rows, 'distinctValues', 1);
  if (distinct > rows) throw new SifreDBError(ERROR_CODES.input, 'distinctValues cannot exceed rows');
  const maxFalsePositives = positive(input.maxFalsePositivesPerQuery ?? 1, 'maxFalsePositivesPerQuery', Number.MIN_VALUE);
  const otherBits = positive(input.otherIndexBits ?? 0, 'otherIndexBits', 0);

  const valueBits = Math.log2(distinct);
  const coincidences = (bits: number) => rows / 2 ** Math.min(bits + otherBits, valueBits);
  const falsePositives = (bits: number) => (rows - rows / distinct) / 2 ** bits;
  const valuesPerTerm = (bits: number) => distinct / 2 ** (bits + otherBits);
  const isSafe = (bits: number) => coincidences(bits) >= 2 && valuesPerTerm(bits) >= 2;

  // Both only fall as bits grow, so the safe lengths are MIN_BITS..safeMax (possibly none).
  let safeMax = 0;
  for (let bits = MAX_BITS; bits >= MIN_BITS; bits--) {
    if (isSafe(bits)) {
      safeMax = bits;
      break;
    }
  }
  const others = rows - rows / distinct;
  const selective = others <= maxFalsePositives ? MIN_BITS : Math.min(MAX_BITS, Math.max(MIN_BITS, Math.ceil(Math.log2(others / maxFalsePositives))));

  const reasons: string[] = [
    `${round(rows)} rows with ${round(distinct)} distinct values carry about ${valueBits.toFixed(1)} bits per value.`,
  ];
  let bits: number;
  if (safeMax === 0 && coincidences(MIN_BITS) >= 2) {
    bits = MIN_BITS;
    reasons.push(
      `A column with only ${round(distinct)} distinct values cannot be indexed without revealing it: even ${MIN_BITS} bits` +
        `${otherBits > 0 ? ` (plus ${round(otherBits)} bits of other indexes)` : ''} give ` +
        `${round(2 ** (MIN_BITS + otherBits))} terms, about ${round(valuesPerTerm(MIN_BITS))} values per term, so a term ` +
        'identifies its value and the index shows which rows share a value and how often (frequency analysis ' +
        'recovers the values). Do not blind-index it: filter after decrypting, or index it only together with a ' +
        'high-cardinality field. If you index it anyway, 8 bits is the least revealing choice.',
    );
  } else if (safeMax === 0) {
    bits = MIN_BITS;
    reasons.push(
      `Even ${MIN_BITS} bits${otherBits > 0 ? ` (plus ${round(otherBits)} bits of other indexes)` : ''} leave fewer than 2 rows per term, ` +
        'so at this size the index singles rows out much like deterministic encryption would; ' +
        `${MIN_BITS} bits, the minimum, is the least revealing choice. Re-plan as the table grows.`,
    );
  } else if (selective <= safeMax) {
    bits = selective;
    reasons.push(
      `${bits} bits keep false positives at or under ${round(maxFalsePositives)} per lookup, and every length up to ` +
        `${safeMax} bits keeps at least 2 rows (CipherSweet's coincidence rule) and 2 distinct values per term; ` +
        'the shortest length that is selective enough reveals the least.',
    );
  } else {
    bits = safeMax;
    reasons.push(
      `Reaching ${round(maxFalsePositives)} false positives per lookup would need ${selective} bits, but above ${safeMax} bits ` +
        'fewer than 2 rows or fewer than 2 distinct values would share a term and a term would identify its value. Safety wins: ' +
        `${bits} bits, and the application filters the extra rows after decrypting.`,
    );
  }
  const plan = {
    bits,
    expectedFalsePositivesPerQuery: falsePositives(bits),
    expectedCollisions: (distinct * (distinct - 1)) / 2 / 2 ** bits,
    expectedCoincidences: coincidences(bits),
    expectedValuesPerTerm: valuesPerTerm(bits),
    safe: isSafe(bits),
  };
  reasons.push(
    `Expect about ${round(plan.expectedFalsePositivesPerQuery)} false positives per lookup term and ` +
      `${round(plan.expectedCoincidences)} rows and ${round(plan.expectedValuesPerTerm)} distinct values per term; during a key rotation each extra active version adds one term per lookup.`,
  );
  return Object.freeze({ ...plan, reasoning: reasons.join(' ') });
}
