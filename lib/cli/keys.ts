/** `sifredb keygen` and `sifredb keys list|rotate|retire`. */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { FileKeyProvider } from '../keys/file.js';
import { closeProvider, type Command, int, keysPath, openKeyProvider, Output, usageError } from './common.js';
import { KMS_SCHEMES, kmsAdapters, kmsSpecs, openKmsKeyring } from './kms.js';

/** A wrapping key that is not this keyring's, or its last: a command-line mistake (exit 2). */
function asUsageError(error: unknown): never {
  if (error instanceof SifreDBError && error.code === ERROR_CODES.input) throw usageError(error.message);
  throw error;
}

const KMS_HELP = Object.values(KMS_SCHEMES)
  .map((s) => `                     ${s.example}`)
  .join('\n');

export const keygen: Command = {
  name: 'keygen',
  summary: 'create a new key store (a local key file, or a KMS keyring with --kms)',
  usage: `Usage: sifredb keygen --keys <path> [--force] [--kms <scheme>:<key> …]

Creates a key store holding key version 1.
  File keystore (default): 32 random bytes per version in a JSON file, mode 0600, written
  atomically. Back it up: losing it loses every value encrypted under it.
  KMS keyring (--kms): each version is a data key stored only wrapped by the key service; the file
  is useless without it. Several --kms wrap every version under each key (any one of them can
  read the keyring: disaster recovery across regions or providers; see docs/KMS.md).

Options:
  --keys <path>      where to write it (or env SIFREDB_KEYS)
  --force            replace an existing file keystore (its keys are lost!)
  --kms <scheme>:<key>  a key that wraps the data keys; repeat for a multi-service keyring:
${KMS_HELP}
  --kms-key <id>     the same as --kms aws:<id>
  --region <region>  AWS region for KMS
  --json             print {"path","type","current","wrappedBy"}`,
  options: {
    force: { type: 'boolean' },
    kms: { type: 'string', multiple: true },
    'kms-key': { type: 'string' },
    region: { type: 'string' },
  },
  positionals: 0,
  async run({ values }) {
    const out = new Output(values);
    const path = keysPath(values);
    const specs = kmsSpecs(values);
    if (specs.length > 0) {
      if (values.force === true) throw usageError('--force applies to file keystores only; a KMS keyring is never replaced');
      const provider = await openKmsKeyring(path, specs, values, true);
      const wrappedBy = provider.wrappingKeys;
      closeProvider(provider);
      out.line(`created KMS keyring ${path} (key version 1, wrapped by ${wrappedBy.join(' and ')})`);
      out.result({ path, type: 'kms', current: 1, wrappedBy });
      return 0;
    }
    await FileKeyProvider.create(path, { overwrite: values.force === true });
    out.line(`created key store ${path} (key version 1, mode 0600) — back it up`);
    out.result({ path, type: 'file', current: 1 });
    return 0;
  },
};

export const keys: Command = {
  name: 'keys',
  summary: 'list the key versions, rotate, retire; add or remove a KMS wrapping key, rewrap',
  usage: `Usage: sifredb keys list   [--keys <path>]
       sifredb keys rotate [--keys <path>]
       sifredb keys retire <version> [--keys <path>]
       sifredb keys add-kms <scheme>:<key> [--keys <path>]      (KMS keyrings)
       sifredb keys remove-kms <scheme>:<key> [--keys <path>]   (KMS keyrings)
       sifredb keys rewrap [--keys <path>]                      (KMS keyrings)

  list        every version with its creation time and status; the current one is marked
  rotate      adds a version and makes it current. Old versions stay readable; run
              \`sifredb reencrypt\` to move existing values to the new version.
  retire      marks an old version retired: still decrypts, left out of lookup query terms. Do it
              once \`reencrypt\` has moved every value off it.
  add-kms     wraps every version under one more KMS key (any one key then reads the keyring:
              disaster recovery, docs/KMS.md). Back the keyring up afterwards.
  remove-kms  drops a KMS key's wraps (never a version's last one). Back the keyring up afterwards.
  rewrap      re-wraps every version under each key's newest key version (e.g. after rotating a
              Vault Transit key), so older key versions can be retired in the key service.

Options:
  --keys <path>      key store (or env SIFREDB_KEYS)
  --kms <scheme>:<key>  the key(s) to use for a KMS keyring (default: the keys wrapping its
                     current version, as recorded in it); repeatable, e.g.
${KMS_HELP}
  --kms-key <id>     the same as --kms aws:<id>
  --region <region>  AWS region for KMS
  --json             machine-readable output`,
  options: {
    kms: { type: 'string', multiple: true },
    'kms-key': { type: 'string' },
    region: { type: 'string' },
  },
  positionals: 2,
  async run({ values, positionals }) {
    const out = new Output(values);
    const [action, arg] = positionals;
    const actions = ['list', 'rotate', 'retire', 'add-kms', 'remove-kms', 'rewrap'];
    if (action === undefined || !actions.includes(action)) {
      throw usageError(action === undefined ? `keys needs an action: ${actions.join(', ')}` : `unknown keys action ${JSON.stringify(action)}`);
    }
    const takesArgument = action === 'retire' || action === 'add-kms' || action === 'remove-kms';
    if (!takesArgument && arg !== undefined) throw usageError(`unexpected argument ${JSON.stringify(arg)}`);
    if (takesArgument && arg === undefined) throw usageError(`keys ${action} needs ${action === 'retire' ? 'a version' : 'a <scheme>:<key>'}`);
    const provider = await openKeyProvider(values);
    try {
      if (action === 'add-kms' || action === 'remove-kms' || action === 'rewrap') {
        const { MultiKmsProvider } = await import('../keys/kms/multi.js');
        if (!(provider instanceof MultiKmsProvider)) throw usageError(`${provider.description} is not a KMS keyring`);
        if (action === 'rewrap') {
          const result = await provider.rewrap();
          out.line(`re-wrapped ${result.versions} key versions under ${provider.wrappingKeys.join(' and ')}`);
          out.result({ versions: result.versions, wrappedBy: provider.wrappingKeys });
          return 0;
        }
        const [adapter] = await kmsAdapters([arg!], values);
        if (action === 'add-kms') {
          const wrapped = await provider.addWrappingKey(adapter!).catch((error: unknown) => {
            adapter!.close?.();
            return asUsageError(error);
          });
          out.line(`wrapped ${wrapped} key versions under ${adapter!.description}; back the keyring up`);
          out.result({ wrapped, wrappedBy: provider.wrappingKeys });
          return 0;
        }
        adapter!.close?.();
        const removed = await provider.removeWrappingKey(adapter!.keyId).catch(asUsageError);
        out.line(`removed ${removed} wraps of ${adapter!.description}; back the keyring up`);
        out.result({ removed, wrappedBy: provider.wrappingKeys });
        return 0;
      }
      if (action === 'rotate') {
        const version = await provider.rotate();
        out.line(`rotated: key version ${version} is now current (older versions still decrypt; run \`sifredb reencrypt\`)`);
        out.result({ current: version });
        return 0;
      }
      if (action === 'retire') {
        const version = int({ version: arg }, 'version', 1, 0xffffffff)!;
        if (provider.retire === undefined) throw usageError(`${provider.description} cannot retire versions`);
        await provider.retire(version);
        out.line(`retired key version ${version}`);
        out.result({ retired: version });
        return 0;
      }
      const [versions, current] = await Promise.all([provider.listVersions(), provider.currentVersion()]);
      out.line(`${provider.description}`);
      for (const v of versions) {
        out.line(`${v.version === current ? '*' : ' '} v${v.version}  ${v.status.padEnd(7)}  created ${v.createdAt.toISOString()}`);
      }
      out.result({
        current,
        ...('wrappingKeys' in provider ? { wrappedBy: (provider as { wrappingKeys: string[] }).wrappingKeys } : {}),
        versions: versions.map((v) => ({ version: v.version, status: v.status, createdAt: v.createdAt.toISOString(), current: v.version === current })),
      });
      return 0;
    } finally {
      closeProvider(provider);
    }
  },
};
