/**
 * The database adapters the batch jobs run on: PostgreSQL through `pg` (a connection pool) and the
 * embedded PGlite (`@electric-sql/pglite`, one in-process connection). Both drivers are optional peer
 * dependencies, imported on first use.
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';

/** Rows and affected-row count of one statement. */
export interface QueryResult<R> {
  readonly rows: R[];
  /** Rows inserted, updated or deleted (0 for a SELECT on some drivers). */
  readonly rowCount: number;
}

/** One connection: statements run in order, so `BEGIN … COMMIT` on it is one transaction. */
export interface DbSession {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

/**
 * A database the batch jobs can use. `query` runs on any connection; `withSession` lends one
 * connection exclusively (for a transaction). {@link openDatabase} makes one from a URL or a path;
 * {@link fromPgPool} and {@link fromPGlite} wrap a pool or instance the application already has.
 */
export interface Database extends DbSession {
  /** `postgres` (a server, several connections, row locks across processes) or `pglite` (embedded, one connection). */
  readonly kind: 'postgres' | 'pglite';
  /** Where it is, for messages; never a password. */
  readonly description: string;
  /** How many sessions can be open at once; the jobs pipeline up to this many batches. */
  readonly maxSessions: number;
  /** Runs `fn` on a connection no one else uses meanwhile. */
  withSession<T>(fn: (session: DbSession) => Promise<T>): Promise<T>;
  /** Closes what {@link openDatabase} opened; a no-op for a wrapped pool or instance. */
  close(): Promise<void>;
}

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** Connections in the PostgreSQL pool (default 4). Ignored for PGlite. */
  poolSize?: number;
}

/** The parts of a `pg.Pool` used here (typed structurally so that `pg` stays optional). */
export interface PgPoolLike {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
  connect(): Promise<{ query: PgPoolLike['query']; release(error?: Error | boolean): void }>;
  end(): Promise<void>;
}

/** The parts of a `PGlite` instance used here. */
export interface PGliteLike {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>;
  close(): Promise<void>;
}

/**
 * Throws `ERR_SIFREDB_INPUT` unless `db` can run SifreDB's statements: an ORM's own object (a Drizzle
 * or Kysely `db`) is a common slip, and its failure would otherwise be a TypeError deep inside.
 */
export function assertDatabase(db: unknown, what: string, needsSessions = false): void {
  const ok = typeof (db as DbSession | null)?.query === 'function' && (!needsSessions || typeof (db as Database).withSession === 'function');
  if (!ok) {
    throw new SifreDBError(
      ERROR_CODES.input,
      `${what} needs a SifreDB Database: fromPgPool(pool), fromPGlite(client) or await openDatabase(url) — not an ORM's db object`,
    );
  }
}

/** True for the URLs that select PostgreSQL; anything else is a PGlite data directory. */
export function isPostgresUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//i.test(target);
}

/** The URL without its password (for messages and logs). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * Wraps a driver error as `ERR_SIFREDB_DATABASE`. Only the driver's message and SQLSTATE are kept:
 * a server's `detail` can quote row contents (e.g. "Failing row contains …"), which may be plaintext.
 */
export function databaseError(error: unknown, doing: string): SifreDBError {
  if (error instanceof SifreDBError) return error;
  const e = error as { message?: unknown; code?: unknown };
  const state = typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? ` [${e.code}]` : '';
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : String(error);
  return new SifreDBError(ERROR_CODES.database, `${doing}: ${message}${state}`);
}

async function importDriver<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new SifreDBError(ERROR_CODES.input, `this database needs the optional peer dependency ${name}: npm install ${name}`);
    }
    throw error;
  }
}

/**
 * Opens `target`: a `postgres://` / `postgresql://` URL (a `pg` pool), or else the path of a PGlite
 * data directory (created when missing; `memory://` for an in-memory database).
 * @throws `ERR_SIFREDB_DATABASE` when the database cannot be reached; `ERR_SIFREDB_INPUT` when the
 *   driver is not installed.
 */
export async function openDatabase(target: string, options: OpenDatabaseOptions = {}): Promise<Database> {
  if (typeof target !== 'string' || target === '') {
    throw new SifreDBError(ERROR_CODES.input, 'database must be a postgres:// URL or a PGlite data directory path');
  }
  if (isPostgresUrl(target)) {
    const poolSize = options.poolSize ?? 4;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new SifreDBError(ERROR_CODES.input, 'poolSize must be a positive integer');
    const pg = await importDriver('pg', async () => {
      // Guarded in place: a bundler then leaves a missing optional driver to run time.
      try {
        return await import('pg');
      } catch (error) {
        throw error;
      }
    });
    const Pool = (pg.default ?? pg).Pool;
    const pool = new Pool({ connectionString: target, max: poolSize });
    // An idle client that loses its connection emits 'error' on the pool; without a listener that
    // would crash the process instead of failing the next query.
    pool.on('error', () => undefined);
    const db = new PgDatabase(pool as unknown as PgPoolLike, redactUrl(target), poolSize, true);
    try {
      await db.query('SELECT 1');
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw databaseError(error, `cannot connect to ${db.description}`);
    }
    return db;
  }
  const { PGlite } = await importDriver('@electric-sql/pglite', async () => {
    try {
      return await import('@electric-sql/pglite');
    } catch (error) {
      throw error;
    }
  });
  let instance: InstanceType<typeof PGlite>;
  try {
    instance = new PGlite(target);
    await instance.waitReady;
  } catch (error) {
    throw databaseError(error, `cannot open the PGlite database at ${target}`);
  }
  return new PGliteDatabase(instance as unknown as PGliteLike, `pglite:${target}`, true);
}

/** Wraps a `pg.Pool` the application already has; `close()` leaves it open. */
export function fromPgPool(pool: PgPoolLike, options: { description?: string; maxSessions?: number } = {}): Database {
  return new PgDatabase(pool, options.description ?? 'postgres (pool)', options.maxSessions ?? 4, false);
}

/** Wraps a `PGlite` instance the application already has; `close()` leaves it open. */
export function fromPGlite(instance: PGliteLike, options: { description?: string } = {}): Database {
  return new PGliteDatabase(instance, options.description ?? 'pglite', false);
}

class PgDatabase implements Database {
  readonly kind = 'postgres' as const;
  readonly #pool: PgPoolLike;
  readonly #owned: boolean;
  constructor(
    pool: PgPoolLike,
    readonly description: string,
    readonly maxSessions: number,
    owned: boolean,
  ) {
    this.#pool = pool;
    this.#owned = owned;
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const result = await this.#pool.query(sql, params as unknown[]);
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
  }

  async withSession<T>(fn: (session: DbSession) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      return await fn({
        query: async <R>(sql: string, params: readonly unknown[] = []) => {
          const result = await client.query(sql, params as unknown[]);
          return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
        },
      });
    } catch (error) {
      // A connection that failed mid-transaction is discarded rather than handed to the next batch.
      broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#pool.end();
  }
}

class PGliteDatabase implements Database {
  readonly kind = 'pglite' as const;
  readonly maxSessions = 1;
  readonly #db: PGliteLike;
  readonly #owned: boolean;
  /** PGlite has a single connection: sessions take turns, so two transactions never interleave. */
  #turn: Promise<unknown> = Promise.resolve();
  constructor(
    db: PGliteLike,
    readonly description: string,
    owned: boolean,
  ) {
    this.#db = db;
    this.#owned = owned;
  }

  query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    return this.withSession((session) => session.query<R>(sql, params));
  }

  withSession<T>(fn: (session: DbSession) => Promise<T>): Promise<T> {
    const run = this.#turn.then(() =>
      fn({
        query: async <R>(sql: string, params: readonly unknown[] = []) => {
          const result = await this.#db.query<R>(sql, params as unknown[]);
          return { rows: result.rows, rowCount: result.affectedRows ?? 0 };
        },
      }),
    );
    this.#turn = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#db.close();
  }
}
