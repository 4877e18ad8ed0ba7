/** `sifredb audit keygen|rotate|public-key|checkpoint|verify`: audit keys, checkpoints and the offline verifier. */
import { readFile, writeFile } from 'node:fs/promises';
import { createCheckpoint, formatCheckpoint, parseCheckpoint, type SignedCheckpoint } from '../audit/checkpoint.js';
import { formatFinding, verifyAudit } from '../audit/verify.js';
import { openDatabase } from '../db/database.js';
import { AuditKeyFile, type AuditPublicKey, parsePublicKeys } from '../keys/audit-keys.js';
import { type Command, EXIT, ioError, Output, required, str, usageError, type Values } from './common.js';
import { openAuditKeyFile } from './kms.js';

const ACTIONS = ['keygen', 'rotate', 'public-key', 'checkpoint', 'verify'] as const;

function dbTarget(values: Values): string {
  const db = str(values, 'db') ?? (process.env.SIFREDB_DB || undefined);
  if (db === undefined || db === '') throw usageError('--db is required (a postgres:// URL or a PGlite directory; or env SIFREDB_DB)');
  return db;
}

/** `--audit-keys`, else SIFREDB_AUDIT_KEYS, else beside the keystore (`<keys>.audit.json`). */
function auditKeysPath(values: Values): string {
  const path = str(values, 'audit-keys') ?? (process.env.SIFREDB_AUDIT_KEYS || undefined);
  if (path !== undefined && path !== '') return path;
  const keystore = str(values, 'keys') ?? (process.env.SIFREDB_KEYS || undefined);
  if (keystore !== undefined && keystore !== '') return AuditKeyFile.pathBeside(keystore);
  throw usageError('--audit-keys is required (the audit key file; or env SIFREDB_AUDIT_KEYS, or --keys to keep it beside the keystore)');
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw ioError(`read ${what}`, path, error);
  }
}

/** Writes `text` to `--out`, or stdout. */
async function emit(values: Values, out: Output, text: string, what: string): Promise<void> {
  const path = str(values, 'out');
  if (path === undefined) {
    if (out.json) out.result(JSON.parse(text));
    else process.stdout.write(text);
    return;
  }
  try {
    await writeFile(path, text, { flag: values.overwrite === true ? 'w' : 'wx' });
  } catch (error) {
    throw ioError(`write ${what}`, path, error);
  }
  out.note(`wrote ${what} to ${path}`);
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'audit signatures: keys, checkpoints, and the offline verifier of signed writes',
  usage: `Usage: sifredb audit keygen     --audit-keys <file> [--kms <scheme:key>] [--overwrite]
       sifredb audit rotate     --audit-keys <file>
       sifredb audit public-key --audit-keys <file> [--out <file>]
       sifredb audit checkpoint --db <url|path> --table <t> --audit-keys <file> [--out <file>]
       sifredb audit verify     --db <url|path> --table <t> [--public-key <file>] [--checkpoint <file>] [--json]

  keygen      creates the audit key file (Ed25519, mode 0600), apart from the encryption keys
  rotate      adds a key and makes it current (older keys stay, so their records still verify)
  public-key  prints the public keys alone, the file to give auditors
  checkpoint  signs the table's chain head (record count and head hash); keep the file outside
              the database, and pass it to a later verify to catch a rewritten or rolled-back chain
  verify      checks, without any encryption key, every record's signature, the chain, the
              checkpoint, and that each row's ciphertexts are those of its latest record. One line
              per finding: row <id>: <kind>: <what>, kinds: modified, rolled back, copied, deleted,
              unsigned, bad signature, chain broken. Exit 0 when clean, 1 with findings.
              Without --public-key the keys published in the database are trusted (said on stderr).

Options:
  --audit-keys <file>   the audit key file (or env SIFREDB_AUDIT_KEYS; default with --keys <k>:
                        <k>.audit.json, beside the keystore and apart from it)
  --kms <scheme:key>    keygen: keep the secret keys wrapped under this KMS key (aws:, vault:, gcp:,
                        azure:; as for keygen --kms); a wrapped file is later opened under the
                        service and key its wrap records (or pass --kms)
  --region <r>          AWS region for --kms aws:
  --db <url|path>       database (or env SIFREDB_DB)
  --table <t>           the audited table
  --public-key <file>   the trusted public keys (from audit public-key)
  --checkpoint <file>   a checkpoint file (from audit checkpoint)
  --out <file>          write to this file instead of stdout (--overwrite to replace it)
  --json              verify: {"table","records","rows","keys","findings":[{"kind","rowId","sequence","column","message"}]}`,
  options: {
    'audit-keys': { type: 'string' },
    db: { type: 'string' },
    table: { type: 'string' },
    'public-key': { type: 'string' },
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    overwrite: { type: 'boolean' },
    kms: { type: 'string', multiple: true },
    'kms-key': { type: 'string' },
    region: { type: 'string' },
  },
  positionals: 1,
  async run({ values, positionals }) {
    const out = new Output(values);
    const [action] = positionals;
    if (!ACTIONS.includes(action as (typeof ACTIONS)[number])) {
      throw usageError(action === undefined ? `audit needs an action: ${ACTIONS.join(', ')}` : `unknown audit action ${JSON.stringify(action)}`);
    }
    if (action === 'keygen') {
      const { file, close } = await openAuditKeyFile(auditKeysPath(values), values, { overwrite: values.overwrite === true });
      close();
      const [key] = await file.publicKeys();
      out.result({ path: file.path, keyId: Buffer.from(key!.keyId).toString('hex') });
      out.line(`created audit key file ${file.path} (key ${Buffer.from(key!.keyId).toString('hex')})`);
      return EXIT.ok;
    }
    if (action === 'rotate') {
      const { file, close } = await openAuditKeyFile(auditKeysPath(values), values);
      const key = await file.rotate().finally(close);
      out.result({ keyId: Buffer.from(key.keyId).toString('hex') });
      out.line(`new current audit key ${Buffer.from(key.keyId).toString('hex')}; export the public keys again for auditors`);
      return EXIT.ok;
    }
    if (action === 'public-key') {
      const file = await AuditKeyFile.open(auditKeysPath(values));
      await emit(values, out, await file.exportPublicKeys(), 'the audit public keys');
      return EXIT.ok;
    }
    const table = required(values, 'table');
    if (action === 'checkpoint') {
      const { file, close } = await openAuditKeyFile(auditKeysPath(values), values);
      const signer = await file.signer().finally(close);
      const db = await openDatabase(dbTarget(values));
      try {
        await emit(values, out, formatCheckpoint(await createCheckpoint(db, table, signer)), 'the checkpoint');
      } finally {
        signer.close();
        await db.close();
      }
      return EXIT.ok;
    }
    const publicKeyPath = str(values, 'public-key');
    const publicKeys: AuditPublicKey[] | undefined = publicKeyPath === undefined ? undefined : parsePublicKeys(await readText(publicKeyPath, 'public key file'), publicKeyPath);
    const checkpointPath = str(values, 'checkpoint');
    const checkpoint: SignedCheckpoint | undefined = checkpointPath === undefined ? undefined : parseCheckpoint(await readText(checkpointPath, 'checkpoint file'), checkpointPath);
    if (publicKeys === undefined) out.note('no --public-key: trusting the audit public keys published in the database');
    const db = await openDatabase(dbTarget(values));
    try {
      const report = await verifyAudit(db, table, { publicKeys, checkpoint });
      out.result(report);
      for (const finding of report.findings) out.line(formatFinding(finding));
      out.note(`audit verify ${table}: ${report.records} records, ${report.rows} rows, ${report.findings.length === 0 ? 'clean' : `${report.findings.length} findings`}`);
      return report.findings.length === 0 ? EXIT.ok : EXIT.rowsFailed;
    } finally {
      await db.close();
    }
  },
};
