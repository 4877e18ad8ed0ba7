/**
 * What the Google Cloud KMS and Azure Key Vault adapters share around an SDK call: loading the
 * optional SDK on first use, an overall deadline per operation, bounded retries of transient
 * failures, and recognising network errors. Kept out of the adapters so that each one only maps its
 * service's answers.
 */
import { SifreDBError } from '../../errors.js';
import { NETWORK_ERROR_CODES, SifreDBKmsError } from './errors.js';

/**
 * Imports an optional peer dependency once; a clear `ERR_SIFREDB_INPUT` naming the package when it
 * is not installed. The import failure itself is not attached (it names file paths only).
 */
export function optionalSdk<T>(cache: { promise?: Promise<T> }, load: () => Promise<T>, packageName: string, provider: string): Promise<T> {
  cache.promise ??= load().catch((error: unknown) => {
    cache.promise = undefined;
    const code = (error as { code?: unknown })?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new SifreDBError('ERR_SIFREDB_INPUT', `${provider} needs the optional peer dependency ${packageName}: npm install ${packageName}`);
    }
    throw new SifreDBError(
      'ERR_SIFREDB_INPUT',
      `${provider} could not load ${packageName} (${typeof code === 'string' ? code : 'import failed'})`,
    );
  });
  return cache.promise;
}

/**
 * The network error code (`ECONNREFUSED`…) of an error or of its causes (fetch-based clients wrap
 * the socket error one or two levels deep), or `undefined` when the error is not a network failure.
 */
export function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const { code, errno } = current as { code?: unknown; errno?: unknown };
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return code;
    if (typeof errno === 'string' && NETWORK_ERROR_CODES.has(errno)) return errno;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Thrown by {@link withDeadline} when an operation took longer than its deadline. */
export class DeadlineExceeded extends Error {
  constructor() {
    super('deadline exceeded');
    this.name = 'DeadlineExceeded';
  }
}

/**
 * Runs `operation` with an `AbortSignal` that fires after `timeoutMs`, and stops waiting then even if
 * the client ignores the signal (a service that accepts connections but never answers must not hang
 * `Vault.open`). Rejects with {@link DeadlineExceeded} on time-out.
 */
export async function withDeadline<T>(timeoutMs: number, operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new DeadlineExceeded());
    }, timeoutMs);
  });
  const run = operation(controller.signal);
  // The losing promise must not surface as an unhandled rejection.
  run.catch(() => undefined);
  try {
    return await Promise.race([run, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Retry settings of an adapter: attempts in all (1 = no retry) and the first back-off delay. */
export interface RetrySettings {
  maxAttempts: number;
  initialDelayMs: number;
}

export const DEFAULT_RETRY: RetrySettings = { maxAttempts: 4, initialDelayMs: 100 };
const MAX_DELAY_MS = 5_000;

/**
 * Calls `attempt(n)` until it succeeds, throws a non-transient error, or `maxAttempts` are used.
 * `attempt` must throw {@link SifreDBKmsError}s (already mapped); transient ones are retried after an
 * exponential back-off with full jitter. The last error is thrown.
 */
export async function withRetries<T>(settings: RetrySettings, attempt: (attemptNumber: number) => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (!(error instanceof SifreDBKmsError) || !error.transient || n >= settings.maxAttempts) throw error;
      const ceiling = Math.min(MAX_DELAY_MS, settings.initialDelayMs * 2 ** (n - 1));
      await new Promise((resolve) => setTimeout(resolve, ceiling / 2 + Math.random() * (ceiling / 2)));
    }
  }
}

/** Checks the retry settings given to a provider. */
export function retrySettings(value: unknown, provider: string): RetrySettings {
  if (value === undefined) return DEFAULT_RETRY;
  const v = value as Partial<RetrySettings>;
  const maxAttempts = v.maxAttempts ?? DEFAULT_RETRY.maxAttempts;
  const initialDelayMs = v.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs;
  if (typeof value !== 'object' || value === null || !Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
    throw new SifreDBError('ERR_SIFREDB_INPUT', `${provider}: retry.maxAttempts must be an integer from 1 to 10`);
  }
  if (typeof initialDelayMs !== 'number' || !(initialDelayMs >= 0) || initialDelayMs > 60_000) {
    throw new SifreDBError('ERR_SIFREDB_INPUT', `${provider}: retry.initialDelayMs must be from 0 to 60000`);
  }
  return { maxAttempts, initialDelayMs };
}

/** Checks a time-out option in milliseconds. */
export function timeoutSetting(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 600_000) {
    throw new SifreDBError('ERR_SIFREDB_INPUT', `${what} must be a number of milliseconds from 1 to 600000`);
  }
  return value;
}
