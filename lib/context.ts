/**
 * {@link EncryptionContext}: where a value lives (tenant, table, column, version). It is the domain
 * separation of the whole system — every derived key and every envelope's AAD contains its canonical
 * encoding (docs/FORMAT.md, "Canonical context").
 */
import type { Buffer } from 'node:buffer';
import { allocZeroed, copyBytes, toHex, utf8Bytes, viewOf } from './format/bytes.js';
import { ERROR_CODES, SifreDBError } from './errors.js';
import { assertWellFormed } from './format/utf8.js';

/** Fields of an {@link EncryptionContext}. */
export interface EncryptionContextInit {
  /** Table (or collection) name: 1..255 UTF-8 bytes. */
  table: string;
  /** Column (or field) name: 1..255 UTF-8 bytes. */
  column: string;
  /** Tenant id for multi-tenant tables: 1..255 UTF-8 bytes; omit (or `null`) for none. */
  tenant?: string | null | undefined;
  /**
   * Context version, 1..2^32-1 (default 1). Bump it to give a column fresh keys without rotating
   * the root key (for example after changing what the column holds). Unrelated to key versions.
   */
  version?: number | undefined;
}

/** Largest UTF-8 length of a tenant, table or column name. */
export const MAX_CONTEXT_FIELD_BYTES = 255;
const MAX_CONTEXT_VERSION = 0xffffffff;
const CONTEXT_ENCODING_VERSION = 0x01;
const KNOWN_FIELDS = new Set(['table', 'column', 'tenant', 'version']);

function contextField(value: unknown, field: string): Buffer {
  if (typeof value !== 'string') {
    throw new SifreDBError(ERROR_CODES.input, `context ${field} must be a string`);
  }
  if (value.length === 0) {
    throw new SifreDBError(ERROR_CODES.input, `context ${field} must not be empty`);
  }
  assertWellFormed(value, `context ${field}`);
  const bytes = utf8Bytes(value);
  if (bytes.length > MAX_CONTEXT_FIELD_BYTES) {
    throw new SifreDBError(
      ERROR_CODES.input,
      `context ${field} is ${bytes.length} UTF-8 bytes; at most ${MAX_CONTEXT_FIELD_BYTES} are allowed`,
    );
  }
  return bytes;
}

/** Escapes `\` and `|` so that {@link EncryptionContext.toString} stays unambiguous for humans. */
function escapeDisplay(s: string): string {
  return s.replace(/[\\|]/g, (c) => `\\${c}`);
}

/**
 * Names where an encrypted value lives. Keys are derived per context and the context is
 * authenticated with every ciphertext, so a value copied to another row's tenant, another column or
 * another table does not decrypt.
 *
 * Immutable (frozen) and validated on construction; the canonical bytes are computed once, so one
 * instance per column can be reused for every call. `key` is injective, hence safe as a `Map` key.
 *
 * @example
 * ```ts
 * const email = new EncryptionContext({ table: 'users', column: 'email' });
 * const ssn = EncryptionContext.of('users', 'ssn').withTenant('t_123');
 * ```
 */
export class EncryptionContext {
  /** Table name. */
  readonly table: string;
  /** Column name. */
  readonly column: string;
  /** Tenant id, or `undefined` for a context without a tenant. */
  readonly tenant: string | undefined;
  /** Context version (1 unless set). */
  readonly version: number;
  /**
   * Lowercase hex of the canonical encoding: injective (two contexts have the same `key` exactly
   * when they are equal), so it can key caches and maps. Not meant for display.
   */
  readonly key: string;
  readonly #bytes: Buffer;

  /** Validates `init`; throws `ERR_SIFREDB_INPUT` naming the offending field. */
  constructor(init: EncryptionContextInit) {
    if (typeof init !== 'object' || init === null) {
      throw new SifreDBError(ERROR_CODES.input, 'context must be an object { table, column, tenant?, version? }');
    }
    for (const name of Object.keys(init)) {
      // A typo such as `colum` would otherwise silently produce a different (or invalid) context.
      if (!KNOWN_FIELDS.has(name)) {
        throw new SifreDBError(ERROR_CODES.input, `context has unknown field ${JSON.stringify(name)}`);
      }
    }
    const table = contextField(init.table, 'table');
    const column = contextField(init.column, 'column');
    const tenant = init.tenant === undefined || init.tenant === null ? undefined : contextField(init.tenant, 'tenant');
    const version = init.version ?? 1;
    if (!Number.isInteger(version) || version < 1 || version > MAX_CONTEXT_VERSION) {
      throw new SifreDBError(ERROR_CODES.input, 'context version must be an integer in 1..4294967295');
    }

    const tenantLength = tenant?.length ?? 0;
    const bytes = allocZeroed(1 + 2 + tenantLength + 2 + table.length + 2 + column.length + 4);
    const view = viewOf(bytes);
    bytes[0] = CONTEXT_ENCODING_VERSION;
    let offset = 1;
    for (const field of [tenant, table, column]) {
      const length = field?.length ?? 0;
      view.setUint16(offset, length);
      if (field) bytes.set(field, offset + 2);
      offset += 2 + length;
    }
    view.setUint32(offset, version);

    this.table = init.table;
    this.column = init.column;
    this.tenant = tenant ? (init.tenant as string) : undefined;
    this.version = version;
    this.#bytes = bytes;
    this.key = toHex(bytes);
    Object.freeze(this);
  }

  /** Shorthand for `new EncryptionContext({ table, column })`; chain {@link withTenant} / {@link withVersion}. */
  static of(table: string, column: string): EncryptionContext {
    return new EncryptionContext({ table, column });
  }

  /** A copy of this context with `tenant` set (validated like the constructor). */
  withTenant(tenant: string): EncryptionContext {
    return new EncryptionContext({ ...this.toJSON(), tenant });
  }

  /** A copy of this context with the context version set. */
  withVersion(version: number): EncryptionContext {
    return new EncryptionContext({ ...this.toJSON(), version });
  }

  /**
   * The canonical binary encoding of docs/FORMAT.md (a fresh copy each call, so callers cannot alter
   * the context): `0x01 ‖ u16be len ‖ tenant ‖ u16be len ‖ table ‖ u16be len ‖ column ‖ u32be version`.
   */
  get bytes(): Buffer {
    return copyBytes(this.#bytes);
  }

  /** True when `other` is an equal context. */
  equals(other: EncryptionContext): boolean {
    return other instanceof EncryptionContext && other.key === this.key;
  }

  /**
   * `tenant|table|column|v1` (or `table|column|v1` without a tenant), with `\` and `|` escaped. For
   * humans and logs only: key derivation uses the length-prefixed {@link bytes}, never this string.
   */
  toString(): string {
    const parts = [this.table, this.column].map(escapeDisplay);
    if (this.tenant !== undefined) parts.unshift(escapeDisplay(this.tenant));
    return `${parts.join('|')}|v${this.version}`;
  }

  /** The plain fields, e.g. for logging or to rebuild the context with `new EncryptionContext(json)`. */
  toJSON(): { table: string; column: string; tenant?: string; version: number } {
    return this.tenant === undefined
      ? { table: this.table, column: this.column, version: this.version }
      : { tenant: this.tenant, table: this.table, column: this.column, version: this.version };
  }
}

/** Throws `ERR_SIFREDB_INPUT` unless `ctx` is an {@link EncryptionContext}. Internal. */
export function assertContext(ctx: unknown): asserts ctx is EncryptionContext {
  if (!(ctx instanceof EncryptionContext)) {
    throw new SifreDBError(
      ERROR_CODES.input,
      'ctx must be an EncryptionContext (build it once per column with new EncryptionContext({ table, column }))',
    );
  }
}
