/** Audit signatures (docs/AUDIT.md): signed writes, checkpoints and the offline verifier. */
export { AuditedTable, type AuditedTableOptions } from './audited-table.js';
export { AuditChain, AuditChainWriter, type AuditedWriteOptions, publishAuditKey } from './chain.js';
export { CHECKPOINT_FORMAT, createCheckpoint, formatCheckpoint, parseCheckpoint, type SignedCheckpoint } from './checkpoint.js';
export { AUDIT_DDL, AUDIT_HEAD_TABLE, AUDIT_KEYS_TABLE, AUDIT_TABLE } from './sql.js';
export { type AuditFinding, type AuditFindingKind, type AuditReport, formatFinding, verifyAudit, type VerifyAuditOptions } from './verify.js';
