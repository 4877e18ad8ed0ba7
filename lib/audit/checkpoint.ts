/**
 * Checkpoints (docs/AUDIT.md): a signed statement "the chain of table T had N records, the last
 * hashing to H", exported out of the database (a file, stdout) and kept where the database's
 * operators cannot change it. A later `audit verify --checkpoint` then catches a chain rewritten
 * or rolled back as a whole (e.g. the data and audit tables restored from an older backup), which
 * the chain alone cannot show, since every record of an older chain is validly signed.
 */
import { Buffer } from 'node:buffer';
import { databaseError, type DbSession } from '../db/database.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { auditHash, decodeAuditCheckpoint, encodeAuditCheckpoint, GENESIS_HASH } from '../format/audit-record.js';
import type { AuditSigner } from '../keys/audit-keys.js';
import { AUDIT_HEAD_TABLE, AUDIT_TABLE } from './sql.js';

/** `format` of a checkpoint file. */
export const CHECKPOINT_FORMAT = 'sifredb-audit-checkpoint';

/** A checkpoint's bytes (`encodeAuditCheckpoint`) and their signature. */
export interface SignedCheckpoint {
  readonly bytes: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * Signs the current head of `table`'s chain. The head row is read `FOR SHARE` in a transaction, so
 * no audited write of the table commits between reading it and its last record.
 * @throws `ERR_SIFREDB_DATABASE` when the head and the last record disagree (verify the chain first).
 */
export async function createCheckpoint(db: { withSession<T>(fn: (s: DbSession) => Promise<T>): Promise<T> }, table: string, signer: AuditSigner, now: () => number = Date.now): Promise<SignedCheckpoint> {
  return db.withSession(async (session) => {
    let count = 0n;
    let headHash: Uint8Array = GENESIS_HASH;
    try {
      await session.query('BEGIN');
      const { rows: heads } = await session.query<{ seq: unknown; head_hash: Uint8Array }>(`SELECT seq, head_hash FROM ${AUDIT_HEAD_TABLE} WHERE table_name = $1 FOR SHARE`, [table]);
      if (heads[0] !== undefined) {
        count = BigInt(String(heads[0].seq));
        headHash = new Uint8Array(heads[0].head_hash);
        if (count > 0n) {
          const { rows } = await session.query<{ record: Uint8Array }>(`SELECT record FROM ${AUDIT_TABLE} WHERE table_name = $1 AND seq = $2`, [table, count.toString()]);
          if (rows[0] === undefined || !Buffer.from(auditHash(rows[0].record)).equals(Buffer.from(headHash))) {
            throw new SifreDBError(ERROR_CODES.database, `the chain head of ${table} does not match its last record: run sifredb audit verify`);
          }
        }
      }
      await session.query('COMMIT');
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw databaseError(error, `cannot read the chain head of ${table}`);
    }
    const bytes = encodeAuditCheckpoint({ keyId: signer.keyId, count, headHash, timestamp: BigInt(Math.trunc(now())), table });
    return { bytes, signature: signer.sign(bytes) };
  });
}

/** The JSON text of a checkpoint file: the signed bytes, and their fields for people to read. */
export function formatCheckpoint(checkpoint: SignedCheckpoint): string {
  const fields = decodeAuditCheckpoint(checkpoint.bytes);
  const file = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    table: fields.table,
    count: fields.count.toString(),
    headHash: Buffer.from(fields.headHash).toString('hex'),
    keyId: Buffer.from(fields.keyId).toString('hex'),
    createdAt: new Date(Number(fields.timestamp)).toISOString(),
    checkpoint: Buffer.from(checkpoint.bytes).toString('base64'),
    signature: Buffer.from(checkpoint.signature).toString('base64'),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** Parses a checkpoint file; only `checkpoint` and `signature` are trusted (the rest is for people). */
export function parseCheckpoint(text: string, where = 'checkpoint file'): SignedCheckpoint {
  const bad = (why: string) => new SifreDBError(ERROR_CODES.format, `${where} is invalid: ${why}`);
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw bad('not valid JSON');
  }
  if (data === null || typeof data !== 'object' || data.format !== CHECKPOINT_FORMAT) throw bad(`"format" must be "${CHECKPOINT_FORMAT}"`);
  if (typeof data.checkpoint !== 'string' || typeof data.signature !== 'string') throw bad('"checkpoint" and "signature" must be base64 strings');
  const bytes = new Uint8Array(Buffer.from(data.checkpoint, 'base64'));
  const signature = new Uint8Array(Buffer.from(data.signature, 'base64'));
  decodeAuditCheckpoint(bytes);
  return { bytes, signature };
}
