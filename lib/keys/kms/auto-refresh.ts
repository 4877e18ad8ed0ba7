/** {@link autoRefresh}: periodic `refresh()` of a Vault, DeterministicVault, BlindIndex or Keyring. */
import { SifreDBError, asSifreDBError } from '../../errors.js';

/** Anything with the `refresh()` of a Vault or a Keyring. */
export interface Refreshable {
  refresh(): Promise<void>;
}

/** Options of {@link autoRefresh}. */
export interface AutoRefreshOptions {
  /** Time between the end of one refresh and the start of the next (±10% jitter). At least 1 ms. */
  intervalMs: number;
  /**
   * Called with each failed refresh (the keys loaded before stay in use). Default: ignore. Errors
   * are SifreDB errors whose messages hold no key material or credentials, fit for logs.
   */
  onError?: (error: SifreDBError) => void;
}

/** A running {@link autoRefresh}. */
export interface AutoRefresh {
  /** Stops it; a refresh already under way finishes. */
  stop(): void;
  /** Resolves after the next refresh attempt completes (for tests and health checks). */
  next(): Promise<void>;
}

/**
 * Calls `target.refresh()` every `intervalMs`, on an unref'd timer (it never keeps the process
 * alive). With an {@link AwsKmsProvider} whose `cache.maxKeyAgeMs` is set, this bounds how long a
 * process keeps using a disabled, deleted or no-longer-permitted KMS key — a tenant's key behind a
 * `TenantKeyRouter` drops out at the first refresh past that age — while a KMS outage keeps the
 * loaded keys working. It also picks up rotations made by other processes.
 *
 * @example
 * ```ts
 * const vault = await Vault.open(router);
 * const refresher = autoRefresh(vault, { intervalMs: 60_000, onError: (e) => log.warn(e.message) });
 * ```
 */
export function autoRefresh(target: Refreshable, options: AutoRefreshOptions): AutoRefresh {
  if (typeof target?.refresh !== 'function') {
    throw new SifreDBError('ERR_SIFREDB_INPUT', 'autoRefresh: target must have a refresh() method (a Vault or a Keyring)');
  }
  const { intervalMs, onError } = options ?? ({} as AutoRefreshOptions);
  if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs < 1) {
    throw new SifreDBError('ERR_SIFREDB_INPUT', 'autoRefresh: intervalMs must be a finite number >= 1');
  }
  if (onError !== undefined && typeof onError !== 'function') {
    throw new SifreDBError('ERR_SIFREDB_INPUT', 'autoRefresh: onError must be a function');
  }
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let waiters: Array<() => void> = [];

  const schedule = (): void => {
    if (stopped) return;
    const delay = Math.max(1, Math.round(intervalMs * (0.9 + Math.random() * 0.2)));
    timer = setTimeout(tick, delay);
    timer.unref();
  };
  const tick = (): void => {
    timer = undefined;
    target
      .refresh()
      .catch((error: unknown) => {
        if (stopped || onError === undefined) return;
        try {
          onError(asSifreDBError(error));
        } catch {
          // A failing error handler must not stop the refreshes.
        }
      })
      .finally(() => {
        const done = waiters;
        waiters = [];
        for (const resolve of done) resolve();
        schedule();
      });
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const done = waiters;
      waiters = [];
      for (const resolve of done) resolve();
    },
    next() {
      if (stopped) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
