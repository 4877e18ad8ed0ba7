/**
 * Checking stored lookup terms against a configuration: does a row's stored blind-index term equal
 * what the configured index computes for the row's plaintext under the row's key version? And when it
 * does not, which bits and transforms the stored terms were computed with.
 */
import { Buffer } from 'node:buffer';
import { BlindIndex, type BlindIndexTerm, type BlindIndexTransform, type BlindIndexValue } from '../blind-index/blind-index.js';
import type { EncryptionContext } from '../context.js';
import type { Keyring } from '../keys/keyring.js';
import { transformName, type TermStorage } from './definition.js';

/** A stored term as bytes (bytea, hex text) or as an unsigned integer (integer columns). */
type StoredTerm = { readonly int: bigint } | { readonly bytes: Buffer };

function storedTerm(stored: unknown, storage: TermStorage): StoredTerm | undefined {
  if (storage === 'integer') {
    if (typeof stored === 'number' || typeof stored === 'bigint') return { int: BigInt(stored) };
    if (typeof stored === 'string' && /^[0-9]+$/.test(stored)) return { int: BigInt(stored) };
    return undefined;
  }
  if (storage === 'bytea') return stored instanceof Uint8Array ? { bytes: Buffer.from(stored) } : undefined;
  return typeof stored === 'string' && /^([0-9a-f]{2})+$/i.test(stored) ? { bytes: Buffer.from(stored, 'hex') } : undefined;
}

/** True when `stored` (as read from a column of `storage`) is `term`. */
export function sameTerm(term: BlindIndexTerm, stored: unknown, storage: TermStorage): boolean {
  const held = storedTerm(stored, storage);
  if (held === undefined) return false;
  if ('int' in held) return BigInt(term.int) === held.int;
  return held.bytes.equals(term.bytes);
}

/** Whether a full (256-bit) term, cut to some length, is `held`; returns that length. */
function matchingBits(full: Buffer, held: StoredTerm): number | undefined {
  if ('int' in held) {
    const top = BigInt(`0x${full.subarray(0, 8).toString('hex')}`);
    for (let bits = 8; bits <= 63; bits++) if (top >> BigInt(64 - bits) === held.int) return bits;
    return undefined;
  }
  const n = held.bytes.length;
  if (n === 0 || n > full.length) return undefined;
  for (let bits = 8 * n; bits > 8 * (n - 1) && bits >= 8; bits--) {
    const cut = Buffer.from(full.subarray(0, n));
    cut[n - 1]! &= (0xff << (8 * n - bits)) & 0xff;
    if (cut.equals(held.bytes)) return bits;
  }
  return undefined;
}

const NAMED: readonly BlindIndexTransform[] = ['trim', 'lowercase', 'uppercase', 'nfc', 'digits'];

/** Ordered choices of up to three named transforms (86 lists), the empty list first. */
function candidateTransforms(configured: readonly BlindIndexTransform[]): BlindIndexTransform[][] {
  const out: BlindIndexTransform[][] = [[...configured], []];
  const grow = (prefix: BlindIndexTransform[]) => {
    if (prefix.length === 3) return;
    for (const t of NAMED) {
      if (prefix.includes(t)) continue;
      const next = [...prefix, t];
      out.push(next);
      grow(next);
    }
  };
  grow([]);
  return out;
}

/** How an index's settings read in a message: `16 bits, transforms trim,lowercase`. */
export function describeIndex(bits: number, transforms: readonly BlindIndexTransform[]): string {
  return `${bits} bits, ${transforms.length === 0 ? 'no transforms' : `transforms ${transforms.map(transformName).join(',')}`}`;
}

/** One row's stored term and what it should have been computed from. */
export interface TermSample {
  readonly value: BlindIndexValue;
  readonly ctx: EncryptionContext;
  readonly version: number;
  readonly stored: unknown;
}

/**
 * Which settings the stored terms of `samples` were computed with, as a phrase for an error message:
 * the bits and transforms (searched among the named transforms, up to three in any order) that
 * reproduce every sample under the same index name, context and key version — or, when none do, the
 * likely other causes. Several samples keep a short term from matching by chance.
 */
export async function diagnoseTerms(
  keyring: Keyring,
  index: { name: string; transforms: readonly BlindIndexTransform[] },
  samples: readonly TermSample[],
  storage: TermStorage,
): Promise<string> {
  const held = samples.map((s) => storedTerm(s.stored, storage));
  if (held.some((h) => h === undefined)) return `some stored values are not ${storage} terms`;
  for (const transforms of candidateTransforms(index.transforms)) {
    const full = await BlindIndex.open(keyring, { name: index.name, bits: 256, transforms });
    let bits: number | undefined;
    try {
      bits = matchingBits(full.computeAt(samples[0]!.value, samples[0]!.ctx, samples[0]!.version).bytes, held[0]!);
      for (let i = 1; bits !== undefined && i < samples.length; i++) {
        const s = samples[i]!;
        if (matchingBits(full.computeAt(s.value, s.ctx, s.version).bytes, held[i]!) !== bits) bits = undefined;
      }
    } catch {
      continue;
    }
    if (bits !== undefined) return `the stored terms were computed with ${describeIndex(bits, transforms)}`;
  }
  return 'no bits and transforms reproduce the stored terms under this index name and context: the index name, the context (tenant column, context table, column or version) or the key store may differ';
}
