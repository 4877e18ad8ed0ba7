/**
 * The context strings of SifreDB for Rust (crate `sifredb` 0.1.1, `src/context.rs`):
 * `EncryptionContext` displays as `tenant|table|column|v<version>` and `IndexContext` as
 * `tenant|table|column`, with tenant `default` when none was set.
 *
 * The fields are joined with `|` and nothing escapes it, so a `|` inside a name makes the string
 * equal to another context's: tenant `a|b`, table `c` and tenant `a`, table `b|c` are one string,
 * and a value sealed for one opens as the other. Such contexts are refused here
 * (`ERR_SIFREDB_INPUT`); someone who knows which context wrote a value can still open it with
 * `primitives.aesSivDecrypt(key, ciphertext, [contextString, new Uint8Array(16)])`.
 * Also equal by construction, and not refused (both are plain, common spellings): no tenant and
 * the tenant `default`.
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { assertWellFormed } from '../format/utf8.js';

/** Where a Rust value lives: the fields of the crate's `EncryptionContext`. */
export interface RustContext {
  /** The tenant; absent, `null` or `undefined` is written `default` by the crate. */
  readonly tenant?: string | null | undefined;
  readonly table: string;
  readonly column: string;
  /** `EncryptionContext::with_version`; the crate's default is 1. A `u32`. */
  readonly version?: number | undefined;
}

/** The fields of the crate's `IndexContext` (no version). */
export type RustIndexContext = Omit<RustContext, 'version'>;

/** The tenant the crate writes when none was set. */
export const RUST_DEFAULT_TENANT = 'default';

function field(value: unknown, name: string): string {
  if (typeof value !== 'string') {
    throw new SifreDBError(ERROR_CODES.input, `Rust context ${name} must be a string`);
  }
  assertWellFormed(value, `Rust context ${name}`);
  if (value.includes('|')) {
    throw new SifreDBError(
      ERROR_CODES.input,
      `Rust context ${name} contains "|": the Rust crates join tenant|table|column unescaped, so this context's ` +
        'string is also another context\'s (see docs/MIGRATION.md, "From SifreDB for Rust")',
    );
  }
  return value;
}

function prefix(context: RustIndexContext): string {
  if (context === null || typeof context !== 'object') {
    throw new SifreDBError(ERROR_CODES.input, 'Rust context must be an object with table and column');
  }
  const tenant = context.tenant === undefined || context.tenant === null ? RUST_DEFAULT_TENANT : field(context.tenant, 'tenant');
  return `${tenant}|${field(context.table, 'table')}|${field(context.column, 'column')}`;
}

/** `tenant|table|column|v<version>`, as `EncryptionContext`'s `Display`; refuses ambiguous contexts. */
export function rustContextString(context: RustContext): string {
  const version = context?.version ?? 1;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0 || version > 0xffff_ffff) {
    throw new SifreDBError(ERROR_CODES.input, 'Rust context version must be an integer in 0..4294967295');
  }
  return `${prefix(context)}|v${version}`;
}

/** `tenant|table|column`, as `IndexContext`'s `Display`; refuses ambiguous contexts. */
export function rustIndexContextString(context: RustIndexContext): string {
  return prefix(context);
}
