/**
 * Lone-surrogate check shared by lib/format/utf8.ts and the pure-JS backend. Internal. It imports
 * nothing, so the JS backend's module graph stays runtime-neutral (no `node:` modules).
 */

interface MaybeWellFormed {
  isWellFormed?: () => boolean;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * True when `s` has no lone surrogate, i.e. it encodes to UTF-8 and decodes back to the same string.
 * Uses the native ES2024 `String.prototype.isWellFormed` when present (Node ≥ 20), a regex otherwise.
 */
export function isWellFormed(s: string): boolean {
  const native = (s as unknown as MaybeWellFormed).isWellFormed;
  return native !== undefined ? native.call(s) : !LONE_SURROGATE.test(s);
}
