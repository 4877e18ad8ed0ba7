/**
 * `--kms <scheme>:<key>` for the CLI: one row per key service in {@link KMS_SCHEMES}, which turns the
 * text after the colon (and the environment) into the envelope core's adapter. One `--kms` makes a
 * single-service keyring, several a multi-service one (MultiKmsProvider). The SDKs are imported only
 * when their scheme is used.
 */
import { readFileSync } from 'node:fs';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { AuditKeyFile } from '../keys/audit-keys.js';
import type { KmsAdapter } from '../keys/kms/adapter.js';
import type { KmsKeyringDocument } from '../keys/kms/keyring.js';
import { toFormat2 } from '../keys/kms/keyring.js';
import type { MultiKmsProvider } from '../keys/kms/multi.js';
import { list, str, usageError, type Values } from './common.js';

/** One key service of `--kms`. */
export interface KmsScheme {
  /** The adapter's `provider` name as keyrings record it (to reopen a keyring from its own wraps). */
  readonly provider: string;
  /** Shown in help and errors. */
  readonly example: string;
  /** The adapter for `target` (the text after `<scheme>:`, or a wrap's recorded keyId). */
  adapter(target: string, values: Values): Promise<KmsAdapter>;
}

/** The `--kms` schemes, one row each. */
export const KMS_SCHEMES: Readonly<Record<string, KmsScheme>> = {
  aws: {
    provider: 'aws-kms',
    example: 'aws:alias/app (or a key id or ARN; AWS_REGION, AWS credentials as usual)',
    adapter: async (target, values) => (await import('../keys/kms/aws.js')).AwsKmsAdapter.make({ keyId: target, region: str(values, 'region') }),
  },
  vault: {
    provider: 'vault-transit',
    example: 'vault:transit/keys/app or vault:https://host:8200/transit/keys/app (VAULT_ADDR; VAULT_TOKEN or VAULT_ROLE_ID + VAULT_SECRET_ID; VAULT_NAMESPACE)',
    adapter: async (target) => new (await import('../keys/kms/vault.js')).VaultTransitAdapter({ ...vaultTarget(target), ...vaultAuthFromEnv() }),
  },
  gcp: {
    provider: 'gcp-kms',
    example:
      'gcp:projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, metadata server, gcloud; SIFREDB_GCP_KMS_ENDPOINT=https://host[:port] for another endpoint)',
    adapter: async (target) => (await import('../keys/kms/gcp.js')).GcpKmsAdapter.make({ keyName: target, ...gcpEndpointFromEnv() }, '--kms gcp'),
  },
  azure: {
    provider: 'azure-keyvault',
    example: 'azure:https://<vault>.vault.azure.net/keys/<name> (DefaultAzureCredential: AZURE_CLIENT_ID/AZURE_TENANT_ID/…, managed identity, az login)',
    adapter: async (target) => (await import('../keys/kms/azure.js')).AzureKeyVaultAdapter.make({ keyUrl: target }, '--kms azure'),
  },
};

/** `SIFREDB_GCP_KMS_ENDPOINT` (a regional or private endpoint, or a test server) as client options. */
function gcpEndpointFromEnv(): { clientOptions?: Record<string, unknown> } {
  const endpoint = process.env.SIFREDB_GCP_KMS_ENDPOINT;
  if (!endpoint) return {};
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw usageError('SIFREDB_GCP_KMS_ENDPOINT must be a URL, e.g. https://cloudkms.googleapis.com');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.pathname !== '/' || url.search !== '' || url.username !== '') {
    throw usageError('SIFREDB_GCP_KMS_ENDPOINT must be http(s)://host[:port] with nothing after it');
  }
  const protocol = url.protocol.slice(0, -1);
  // Bearer tokens go in the clear over http: only to this machine (a test server).
  if (protocol === 'http' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw usageError('SIFREDB_GCP_KMS_ENDPOINT: http:// is allowed for 127.0.0.1 / localhost only; use https://');
  }
  return { clientOptions: { apiEndpoint: url.hostname, port: Number(url.port || (protocol === 'https' ? 443 : 80)), protocol } };
}

/**
 * `transit/keys/app` (address from VAULT_ADDR), or `https://vault-2:8200/transit/keys/app` for a
 * keyring wrapped by two Vault clusters.
 */
function vaultTarget(target: string): { key: string; address?: string } {
  if (!/^https?:\/\//i.test(target)) {
    // A keyId recorded as <namespace>/<mount>/keys/<name>: with VAULT_NAMESPACE set, the namespace goes in the header.
    const namespace = process.env.VAULT_NAMESPACE?.replace(/^\/+|\/+$/g, '');
    return { key: namespace && target.startsWith(`${namespace}/`) ? target.slice(namespace.length + 1) : target };
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw usageError(`--kms vault:${target}: not a URL`);
  }
  return { address: url.origin, key: url.pathname.replace(/^\/(?:v1\/)?/, '') };
}

/** Vault credentials from the environment: AppRole when VAULT_ROLE_ID and VAULT_SECRET_ID are set, else VAULT_TOKEN. */
function vaultAuthFromEnv(): { appRole?: { roleId: string; secretId: string; mount?: string } } {
  const roleId = process.env.VAULT_ROLE_ID;
  const secretId = process.env.VAULT_SECRET_ID;
  if (!roleId || !secretId) return {};
  const mount = process.env.VAULT_APPROLE_MOUNT || undefined;
  return { appRole: { roleId, secretId, ...(mount ? { mount } : {}) } };
}

/** The `--kms` values, with the older `--kms-key <id>` as `aws:<id>`. */
export function kmsSpecs(values: Values): string[] {
  const specs = list(values, 'kms');
  const legacy = str(values, 'kms-key');
  if (legacy !== undefined) {
    if (specs.length > 0) throw usageError('give --kms or --kms-key, not both (--kms-key <id> is --kms aws:<id>)');
    return [`aws:${legacy}`];
  }
  return specs;
}

/** Adapters for `--kms` specs; a usage error names a malformed or unknown scheme. */
export async function kmsAdapters(specs: readonly string[], values: Values): Promise<KmsAdapter[]> {
  const adapters: KmsAdapter[] = [];
  try {
    for (const spec of specs) {
      const colon = spec.indexOf(':');
      const scheme = colon > 0 ? KMS_SCHEMES[spec.slice(0, colon)] : undefined;
      if (scheme === undefined || colon === spec.length - 1) {
        throw usageError(
          `--kms ${JSON.stringify(spec)}: expected <scheme>:<key>, one of ${Object.values(KMS_SCHEMES).map((s) => s.example).join('; ')}`,
        );
      }
      try {
        adapters.push(await scheme.adapter(spec.slice(colon + 1), values));
      } catch (error) {
        // A key or setting the service cannot be reached with (no VAULT_ADDR, no token…): fix the command line or environment.
        if (error instanceof SifreDBError && error.code === ERROR_CODES.input && !/npm install/.test(error.message)) throw usageError(error.message);
        throw error;
      }
    }
  } catch (error) {
    for (const adapter of adapters) adapter.close?.();
    throw error;
  }
  return adapters;
}

/**
 * The `--kms` specs that reopen `doc` from its own records: one per wrap of its current version, in
 * the recorded order. A provider without a `--kms` scheme is a key error naming it.
 */
export function specsFromKeyring(doc: KmsKeyringDocument, path: string): string[] {
  const normalized = toFormat2(doc);
  const current = normalized.versions.find((v) => v.version === normalized.current) ?? normalized.versions[normalized.versions.length - 1]!;
  return current.wraps.map((wrap) => {
    const scheme = Object.entries(KMS_SCHEMES).find(([, s]) => s.provider === wrap.provider)?.[0];
    if (scheme === undefined) {
      throw new SifreDBError(ERROR_CODES.key, `KMS keyring ${path} is wrapped by "${wrap.provider}", which this sifredb cannot reach; pass --kms`);
    }
    return `${scheme}:${wrap.keyId}`;
  });
}

/** Opens (or, with `create`, creates) a KMS keyring wrapped under `specs`. */
export async function openKmsKeyring(path: string, specs: readonly string[], values: Values, create: boolean): Promise<MultiKmsProvider> {
  const adapters = await kmsAdapters(specs, values);
  const { MultiKmsProvider } = await import('../keys/kms/multi.js');
  const options = { adapters, keyring: path };
  return create ? MultiKmsProvider.create(options) : MultiKmsProvider.open({ ...options, createIfMissing: false });
}

/**
 * Opens (or, with `create`, creates) an audit key file (docs/AUDIT.md). Its secret keys are wrapped
 * under the one `--kms <spec>` when given (keygen) or when its current key is wrapped (then, without
 * `--kms`, under the service and key its wrap records). Close the returned adapter when done.
 */
export async function openAuditKeyFile(path: string, values: Values, create?: { overwrite: boolean }): Promise<{ file: AuditKeyFile; close(): void }> {
  const { AuditKeyFile } = await import('../keys/audit-keys.js');
  const given = kmsSpecs(values);
  if (given.length > 1) throw usageError('audit keys are wrapped under one --kms key');
  let spec = given[0];
  if (spec === undefined && create === undefined) {
    const wrap = currentAuditWrap(path);
    if (wrap !== undefined) {
      const scheme = Object.entries(KMS_SCHEMES).find(([, s]) => s.provider === wrap.provider)?.[0];
      if (scheme === undefined) throw new SifreDBError(ERROR_CODES.key, `audit key file ${path} is wrapped by "${wrap.provider}", which this sifredb cannot reach; pass --kms`);
      spec = `${scheme}:${wrap.keyId}`;
    }
  }
  const [kms] = spec === undefined ? [] : await kmsAdapters([spec], values);
  const close = () => kms?.close?.();
  try {
    const file = create === undefined ? await AuditKeyFile.open(path, { kms }) : await AuditKeyFile.create(path, { overwrite: create.overwrite, kms });
    return { file, close };
  } catch (error) {
    close();
    throw error;
  }
}

/** The wrap of the current key of an audit key file, if wrapped (a bad file is left for AuditKeyFile.open to report). */
function currentAuditWrap(path: string): { provider: string; keyId: string } | undefined {
  try {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { current?: unknown; keys?: { keyId?: unknown; wrappedSecretKey?: { provider?: unknown; keyId?: unknown } }[] };
    const wrap = doc.keys?.find((k) => k.keyId === doc.current)?.wrappedSecretKey;
    return typeof wrap?.provider === 'string' && typeof wrap.keyId === 'string' ? { provider: wrap.provider, keyId: wrap.keyId } : undefined;
  } catch {
    return undefined;
  }
}
