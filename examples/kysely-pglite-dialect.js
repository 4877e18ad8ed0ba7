// A Kysely dialect for PGlite (there is no published one among the test dependencies): PostgreSQL's
// adapter, introspector and query compiler, and a driver over PGlite's `query(sql, params)`. PGlite is
// one connection, so the driver hands it to one query or transaction at a time: a transaction holds it
// from BEGIN to COMMIT/ROLLBACK and other queries wait.
import { PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';

class PGliteConnection {
  constructor(pglite) {
    this.pglite = pglite;
  }

  async executeQuery(compiled) {
    const result = await this.pglite.query(compiled.sql, [...compiled.parameters]);
    return {
      rows: result.rows,
      ...(result.affectedRows === undefined ? {} : { numAffectedRows: BigInt(result.affectedRows) }),
    };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery() {
    throw new Error('the PGlite test dialect does not stream');
  }
}

class PGliteDriver {
  #connection;
  #queue = Promise.resolve();

  constructor(pglite) {
    this.#connection = new PGliteConnection(pglite);
  }

  async init() {}

  /** Waits for the previous holder to release the connection. */
  acquireConnection() {
    let release;
    const released = new Promise((resolve) => (release = resolve));
    const acquired = this.#queue.then(() => {
      this.#connection.release = release;
      return this.#connection;
    });
    this.#queue = acquired.then(() => released);
    return acquired;
  }

  async beginTransaction(connection) {
    await connection.executeQuery({ sql: 'BEGIN', parameters: [] });
  }

  async commitTransaction(connection) {
    await connection.executeQuery({ sql: 'COMMIT', parameters: [] });
  }

  async rollbackTransaction(connection) {
    await connection.executeQuery({ sql: 'ROLLBACK', parameters: [] });
  }

  async releaseConnection(connection) {
    connection.release();
  }

  async destroy() {}
}

/** A Kysely `Dialect` on a PGlite instance (closing the instance is the caller's). */
export class PGliteDialect {
  constructor(pglite) {
    this.pglite = pglite;
  }

  createAdapter() {
    return new PostgresAdapter();
  }

  createDriver() {
    return new PGliteDriver(this.pglite);
  }

  createIntrospector(db) {
    return new PostgresIntrospector(db);
  }

  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}
