/**
 * The audit tables (docs/AUDIT.md), shared by every audited table of a database and emitted by
 * `sifredb schema sql --audit`:
 * - `sifredb_audit`: one signed record per write, keyed by (table, sequence). `record` and
 *   `signature` are what the verifier trusts; the other columns only repeat them for queries.
 * - `sifredb_audit_head`: one row per table, its chain head (last sequence and record hash). Every
 *   audited write locks it (`SELECT … FOR UPDATE`), which orders the table's writers into one chain.
 * - `sifredb_audit_keys`: the public keys records were signed with, for a verifier without a public
 *   key file (it then says that it trusts the database's keys).
 */
export const AUDIT_TABLE = 'public.sifredb_audit';
export const AUDIT_HEAD_TABLE = 'public.sifredb_audit_head';
export const AUDIT_KEYS_TABLE = 'public.sifredb_audit_keys';

export const AUDIT_DDL: readonly string[] = Object.freeze([
  `CREATE TABLE IF NOT EXISTS ${AUDIT_TABLE} (
  table_name text NOT NULL,
  seq bigint NOT NULL,
  row_id text NOT NULL,
  operation text NOT NULL,
  key_id bytea NOT NULL,
  record bytea NOT NULL,
  signature bytea NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, seq)
);`,
  `CREATE INDEX IF NOT EXISTS sifredb_audit_row_idx ON ${AUDIT_TABLE} (table_name, row_id, seq);`,
  `CREATE TABLE IF NOT EXISTS ${AUDIT_HEAD_TABLE} (
  table_name text PRIMARY KEY,
  seq bigint NOT NULL,
  head_hash bytea NOT NULL
);`,
  `CREATE TABLE IF NOT EXISTS ${AUDIT_KEYS_TABLE} (
  key_id bytea PRIMARY KEY,
  public_key bytea NOT NULL,
  added_at timestamptz NOT NULL DEFAULT now()
);`,
]);
