// Writes test-vectors/audit-record-v1.json, once: `node scripts/audit-vectors.js --write` (after
// `npm run build:ts`). The file is frozen: __test__/audit-record.spec.js rebuilds every record and
// checkpoint from its inputs on both backends and compares bytes, hashes and signatures. Never
// regenerate it; a change to these bytes is a new record format version.
import { writeFileSync } from 'node:fs';
import { EncryptionContext, auditHash, auditKeyId, ed25519, encodeAuditCheckpoint, encodeAuditRecord } from '../dist/index.js';

const hex = (b) => Buffer.from(b).toString('hex');
const secretKey = Buffer.from('8f2b1c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809', 'hex');
const publicKey = ed25519.publicKey(secretKey);
const keyId = auditKeyId(publicKey);
const sha = (text) => auditHash(Buffer.from(text));
const ctx = (init) => new EncryptionContext(init).bytes;

const inputs = [
  {
    name: 'insert, two columns, one NULL',
    operation: 'insert', sequence: 1n, timestamp: 1767225600000n, previousHash: new Uint8Array(32),
    table: 'users', idColumn: 'id', rowId: '42', actor: 'app:signup',
    columns: [
      { name: 'phone' },
      { name: 'email', value: { keyVersion: 1, context: ctx({ table: 'users', column: 'email' }), hash: sha('sdb1:example-email') } },
    ],
  },
  {
    name: 'update, tenant context, key version 2, non-ASCII actor',
    operation: 'update', sequence: 2n, timestamp: 1767225601234n, previousHash: sha('record 1'),
    table: 'crm.customers', idColumn: 'customer_id', rowId: '7f9c2ba4-e88f-11ee-a1b2-0242ac120002', actor: 'müşteri-servisi',
    columns: [
      { name: 'ssn', value: { keyVersion: 2, context: ctx({ table: 'customers', column: 'ssn', tenant: 'acme', version: 1 }), hash: sha('ssn ciphertext') } },
      { name: 'name', value: { keyVersion: 2, context: ctx({ table: 'customers', column: 'name', tenant: 'acme', version: 1 }), hash: sha('name ciphertext') } },
    ],
  },
  {
    name: 'delete',
    operation: 'delete', sequence: 18446744073709551615n, timestamp: 0n, previousHash: sha('record before'),
    table: 'users', idColumn: 'id', rowId: '', actor: 'ops', columns: [],
  },
];

const records = inputs.map((r) => {
  const bytes = encodeAuditRecord({ ...r, keyId });
  return {
    name: r.name,
    operation: r.operation,
    sequence: r.sequence.toString(),
    timestamp: r.timestamp.toString(),
    previousHash: hex(r.previousHash),
    table: r.table,
    idColumn: r.idColumn,
    rowId: r.rowId,
    actor: r.actor,
    columns: r.columns.map((c) => (c.value === undefined ? { name: c.name } : { name: c.name, keyVersion: c.value.keyVersion, context: hex(c.value.context), hash: hex(c.value.hash) })),
    record: hex(bytes),
    recordHash: hex(auditHash(bytes)),
    signature: hex(ed25519.sign(secretKey, bytes)),
  };
});
const checkpointFields = { keyId, count: 2n, headHash: auditHash(Buffer.from(records[1].record, 'hex')), timestamp: 1767225700000n, table: 'users' };
const checkpointBytes = encodeAuditCheckpoint(checkpointFields);
const file = {
  description: 'SifreDB audit record and checkpoint format v1 (docs/AUDIT.md, "Record format"). Frozen: every record and checkpoint is rebuilt from its fields by both backends (__test__/audit-record.spec.js); the bytes, SHA-256 record hashes and Ed25519 signatures must match.',
  secretKey: hex(secretKey),
  publicKey: hex(publicKey),
  keyId: hex(keyId),
  records,
  checkpoints: [
    {
      count: '2', headHash: hex(checkpointFields.headHash), timestamp: checkpointFields.timestamp.toString(), table: 'users',
      checkpoint: hex(checkpointBytes), signature: hex(ed25519.sign(secretKey, checkpointBytes)),
    },
  ],
};
if (process.argv.includes('--write')) writeFileSync(new URL('../test-vectors/audit-record-v1.json', import.meta.url), `${JSON.stringify(file, null, 2)}\n`);
else process.stdout.write(`${JSON.stringify(file, null, 2)}\n`);
