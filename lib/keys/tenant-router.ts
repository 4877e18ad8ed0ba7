/** {@link TenantKeyRouter}: one key provider per tenant (bring your own key). */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { assertWellFormed } from '../format/utf8.js';
import type { KeyProvider } from './provider.js';

/** Options of {@link TenantKeyRouter}. */
export interface TenantKeyRouterOptions {
  /** Tenant id → its provider. Tenant ids are matched against {@link EncryptionContext.tenant}. */
  tenants: Record<string, KeyProvider> | Map<string, KeyProvider>;
  /** Provider for contexts without a tenant, and for tenants not listed. Omit to refuse them. */
  default?: KeyProvider | undefined;
}

/** Throws `ERR_SIFREDB_INPUT` unless `provider` looks like a {@link KeyProvider}. Internal. */
export function assertKeyProvider(provider: unknown, what: string): asserts provider is KeyProvider {
  const p = provider as Partial<KeyProvider> | null | undefined;
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.listVersions !== 'function' ||
    typeof p.currentVersion !== 'function' ||
    typeof p.loadKey !== 'function'
  ) {
    throw new SifreDBError(ERROR_CODES.input, `${what} must be a KeyProvider`);
  }
}

function assertTenant(tenant: unknown): asserts tenant is string {
  if (typeof tenant !== 'string' || tenant.length === 0) {
    throw new SifreDBError(ERROR_CODES.input, 'tenant ids must be non-empty strings');
  }
  assertWellFormed(tenant, 'tenant id');
}

/**
 * Routes each {@link EncryptionContext} to the key provider of its tenant, so each tenant can bring
 * its own key (its own KMS key, its own keystore). Open a `Vault`, `DeterministicVault` or
 * `BlindIndex` on a router and it loads every tenant's keys at open / `refresh()` time.
 *
 * A context whose tenant has no provider, and no `default` is set, fails with `ERR_SIFREDB_KEY`. If
 * one tenant's provider cannot load (for instance its key was deleted to crypto-shred that tenant's
 * data), opening still succeeds and only that tenant's operations fail with `ERR_SIFREDB_KEY`, with
 * the provider's error as `cause`.
 *
 * The mapping is mutable ({@link set} / {@link delete}) for onboarding tenants; open keyrings pick
 * the change up at their next `refresh()`.
 */
export class TenantKeyRouter {
  readonly #tenants = new Map<string, KeyProvider>();
  readonly #default: KeyProvider | undefined;

  /** @throws `ERR_SIFREDB_INPUT` for an empty tenant id or a value that is not a provider. */
  constructor(options: TenantKeyRouterOptions) {
    if (typeof options !== 'object' || options === null || typeof options.tenants !== 'object' || options.tenants === null) {
      throw new SifreDBError(ERROR_CODES.input, 'TenantKeyRouter needs { tenants, default? }');
    }
    const entries = options.tenants instanceof Map ? [...options.tenants] : Object.entries(options.tenants);
    for (const [tenant, provider] of entries) this.set(tenant, provider);
    if (options.default !== undefined) assertKeyProvider(options.default, 'default');
    this.#default = options.default;
  }

  /** Provider for contexts without a tenant and for unlisted tenants, if any. */
  get defaultProvider(): KeyProvider | undefined {
    return this.#default;
  }

  /** The provider serving `tenant` (its own, else the default), or `undefined`. */
  providerFor(tenant: string | undefined): KeyProvider | undefined {
    return (tenant === undefined ? undefined : this.#tenants.get(tenant)) ?? this.#default;
  }

  /** The tenants with their own provider, as `[tenant, provider]` pairs. */
  entries(): Array<[string, KeyProvider]> {
    return [...this.#tenants];
  }

  /** Adds or replaces the provider of `tenant`. */
  set(tenant: string, provider: KeyProvider): this {
    assertTenant(tenant);
    assertKeyProvider(provider, `provider of tenant ${JSON.stringify(tenant)}`);
    this.#tenants.set(tenant, provider);
    return this;
  }

  /** Removes `tenant`'s own provider; returns whether it had one. */
  delete(tenant: string): boolean {
    return this.#tenants.delete(tenant);
  }
}
