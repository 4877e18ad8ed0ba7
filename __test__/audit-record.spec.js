// The frozen audit record and checkpoint format v1 (test-vectors/audit-record-v1.json) on the backend
// in use: every record is rebuilt from its fields (bytes, SHA-256 hash, Ed25519 signature) and parsed
// back; malformed records are refused with ERR_SIFREDB_FORMAT.
import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  auditHash,
  auditKeyId,
  backend,
  decodeAuditCheckpoint,
  decodeAuditRecord,
  ed25519,
  encodeAuditCheckpoint,
  encodeAuditRecord,
} from '../dist/index.js';

const vectors = JSON.parse(readFileSync(new URL('../test-vectors/audit-record-v1.json', import.meta.url), 'utf8'));
const hex = (s) => Buffer.from(s, 'hex');
const toHex = (b) => Buffer.from(b).toString('hex');
const keyId = hex(vectors.keyId);

const fields = (v) => ({
  operation: v.operation,
  keyId,
  sequence: BigInt(v.sequence),
  timestamp: BigInt(v.timestamp),
  previousHash: hex(v.previousHash),
  table: v.table,
  idColumn: v.idColumn,
  rowId: v.rowId,
  actor: v.actor,
  columns: v.columns.map((c) => (c.keyVersion === undefined ? { name: c.name } : { name: c.name, value: { keyVersion: c.keyVersion, context: hex(c.context), hash: hex(c.hash) } })),
});

test(`audit key: public key and key id [${backend}]`, (t) => {
  const publicKey = ed25519.publicKey(hex(vectors.secretKey));
  t.is(toHex(publicKey), vectors.publicKey);
  t.is(toHex(auditKeyId(publicKey)), vectors.keyId);
});

test(`every record: bytes, hash and signature reproduce; parsing gives the fields back [${backend}]`, (t) => {
  t.true(vectors.records.length >= 3);
  for (const v of vectors.records) {
    const bytes = encodeAuditRecord(fields(v));
    t.is(toHex(bytes), v.record, v.name);
    t.is(toHex(auditHash(bytes)), v.recordHash, v.name);
    t.is(toHex(ed25519.sign(hex(vectors.secretKey), bytes)), v.signature, v.name);
    t.true(ed25519.verify(hex(vectors.publicKey), bytes, hex(v.signature)), v.name);
    const parsed = decodeAuditRecord(hex(v.record));
    const expected = fields(v);
    t.is(parsed.operation, expected.operation);
    t.is(parsed.sequence, expected.sequence);
    t.is(parsed.timestamp, expected.timestamp);
    t.is(parsed.actor, expected.actor);
    t.is(parsed.rowId, expected.rowId);
    t.deepEqual(parsed.columns.map((c) => c.name), [...expected.columns.map((c) => c.name)].sort());
    // Column order given does not change the bytes: they are sorted.
    t.is(toHex(encodeAuditRecord({ ...expected, columns: [...expected.columns].reverse() })), v.record);
  }
});

test(`checkpoints reproduce [${backend}]`, (t) => {
  for (const v of vectors.checkpoints) {
    const bytes = encodeAuditCheckpoint({ keyId, count: BigInt(v.count), headHash: hex(v.headHash), timestamp: BigInt(v.timestamp), table: v.table });
    t.is(toHex(bytes), v.checkpoint);
    t.is(toHex(ed25519.sign(hex(vectors.secretKey), bytes)), v.signature);
    const parsed = decodeAuditCheckpoint(bytes);
    t.is(parsed.count, BigInt(v.count));
    t.is(parsed.table, v.table);
  }
});

test(`malformed records are refused with ERR_SIFREDB_FORMAT, bad fields with ERR_SIFREDB_INPUT [${backend}]`, (t) => {
  const good = hex(vectors.records[0].record);
  const cases = {
    truncated: good.subarray(0, good.length - 1),
    trailing: Buffer.concat([good, Buffer.of(0)]),
    magic: Buffer.concat([Buffer.from('XDBR'), good.subarray(4)]),
    version: Buffer.concat([good.subarray(0, 4), Buffer.of(2), good.subarray(5)]),
    operation: Buffer.concat([good.subarray(0, 5), Buffer.of(9), good.subarray(6)]),
    empty: Buffer.alloc(0),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    t.is(t.throws(() => decodeAuditRecord(bytes), undefined, name).code, 'ERR_SIFREDB_FORMAT', name);
  }
  const base = fields(vectors.records[0]);
  for (const bad of [
    { ...base, operation: 'upsert' },
    { ...base, keyId: Buffer.alloc(15) },
    { ...base, sequence: 0n },
    { ...base, sequence: 2n ** 64n },
    { ...base, timestamp: 1 },
    { ...base, actor: '\ud800' },
    { ...base, columns: [base.columns[1], base.columns[1]] },
    { ...base, operation: 'delete' },
  ]) {
    t.is(t.throws(() => encodeAuditRecord(bad)).code, 'ERR_SIFREDB_INPUT');
  }
});
