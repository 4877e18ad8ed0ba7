/** `sifredb encrypt`, `decrypt`, `index` and `inspect`: one value at a time. */
import { Buffer } from 'node:buffer';
import { writeFile } from 'node:fs/promises';
import { BlindIndex, type BlindIndexTransform } from '../blind-index/blind-index.js';
import { MAGIC } from '../format/envelope.js';
import { inspect } from '../format/inspect.js';
import { toText } from '../format/text.js';
import { Keyring } from '../keys/keyring.js';
import { DeterministicVault } from '../vault/deterministic-vault.js';
import { Vault } from '../vault/vault.js';
import {
  chompText,
  closeProvider,
  type Command,
  CONTEXT_OPTIONS,
  contextFrom,
  int,
  ioError,
  openKeyProvider,
  Output,
  readInput,
  str,
  usageError,
  type Values,
} from './common.js';

const CONTEXT_HELP = `  --table <name>            table in the encryption context (required)
  --column <name>           column in the encryption context (required)
  --tenant <id>             tenant in the encryption context
  --context-version <n>     context version (default 1)`;

const KEY_HELP = `  --keys <path>             key store (or env SIFREDB_KEYS)
  --kms <scheme>:<key>      for a KMS keyring: the key(s) to open it with (default: the ones it
                            records; see sifredb keys --help)`;

const AAD_HELP = `  --aad <value>             row binding: the row's id (or other per-value data) the ciphertext is
                            bound to, as UTF-8 text; the same value must be given to decrypt
  --bind-row <value>        the same as --aad`;

const AAD_OPTIONS = { aad: { type: 'string' }, 'bind-row': { type: 'string' } } as const;

/** Which keys open a KMS keyring (default: those it records); see `sifredb keys --help`. */
const KMS_OPTIONS = { kms: { type: 'string', multiple: true }, 'kms-key': { type: 'string' }, region: { type: 'string' } } as const;

/** `{ aad }` from --aad / --bind-row, or undefined (unbound). */
function rowBindingFrom(values: Values): { aad: string } | undefined {
  const aad = str(values, 'aad');
  const bindRow = str(values, 'bind-row');
  if (aad !== undefined && bindRow !== undefined && aad !== bindRow) throw usageError('--aad and --bind-row give different values');
  const value = aad ?? bindRow;
  return value === undefined ? undefined : { aad: value };
}

/** Opens a keyring on the key store; the caller closes it with the returned `close`. */
async function openKeyring(values: Values): Promise<{ keyring: Keyring; close(): void }> {
  const provider = await openKeyProvider(values);
  try {
    return { keyring: await Keyring.open(provider), close: () => closeProvider(provider) };
  } catch (error) {
    closeProvider(provider);
    throw error;
  }
}

async function writeOutput(values: Values, data: Buffer | string): Promise<void> {
  const file = str(values, 'output');
  if (file === undefined) {
    process.stdout.write(data);
    return;
  }
  try {
    await writeFile(file, data, { mode: 0o600 });
  } catch (error) {
    throw ioError('write', file, error);
  }
}

export const encrypt: Command = {
  name: 'encrypt',
  summary: 'encrypt one value (argument, --input file or stdin)',
  usage: `Usage: sifredb encrypt [<value>] --table <t> --column <c> [options]

Encrypts one value under the current key version and prints the "sdb1:" text form.
Without <value>, reads --input <file> or stdin (one trailing newline is dropped from text).

Options:
${CONTEXT_HELP}
  --deterministic           AES-256-SIV: equal values give equal ciphertexts (for lookups)
  --algorithm <name>        chacha20-poly1305 (default) or xchacha20-poly1305
  --bytes                   encrypt the input as raw bytes instead of a UTF-8 string
  --binary                  write the binary envelope instead of the text form
  --input <file>            read the value from a file
  --output <file>           write the ciphertext to a file (mode 0600)
${AAD_HELP}
${KEY_HELP}
  --json                    print {"ciphertext","keyVersion","algorithm"}`,
  options: {
    ...CONTEXT_OPTIONS,
    ...AAD_OPTIONS,
    ...KMS_OPTIONS,
    deterministic: { type: 'boolean' },
    algorithm: { type: 'string' },
    bytes: { type: 'boolean' },
    binary: { type: 'boolean' },
    input: { type: 'string' },
    output: { type: 'string' },
  },
  positionals: 1,
  async run({ values, positionals }) {
    const out = new Output(values);
    const ctx = contextFrom(values);
    const algorithm = str(values, 'algorithm');
    if (algorithm !== undefined && values.deterministic === true) throw usageError('--algorithm and --deterministic exclude each other');
    if (algorithm !== undefined && algorithm !== 'chacha20-poly1305' && algorithm !== 'xchacha20-poly1305') {
      throw usageError('--algorithm must be chacha20-poly1305 or xchacha20-poly1305');
    }
    if (values.binary === true && values.json === true) throw usageError('--binary and --json exclude each other');
    const input = await readInput(positionals[0], values, 'value');
    const value = values.bytes === true ? input.bytes : input.fromArg ? input.bytes.toString('utf8') : chompText(input.bytes, 'value');
    const { keyring, close } = await openKeyring(values);
    try {
      const vault =
        values.deterministic === true ? await DeterministicVault.open(keyring) : await Vault.open(keyring, { algorithm: algorithm as never });
      const envelope = vault.encrypt(value, ctx, rowBindingFrom(values));
      const info = inspect(envelope);
      if (out.json) out.result({ ciphertext: toText(envelope), keyVersion: info.keyVersion, algorithm: info.algorithm });
      else await writeOutput(values, values.binary === true ? envelope : `${toText(envelope)}\n`);
      return 0;
    } finally {
      close();
    }
  },
};

/**
 * Binary envelopes start with the magic byte and format 1; anything else is taken as the text form,
 * less the one trailing newline a file or `echo` adds. Other whitespace is left for the strict
 * text-form parser to refuse, as the library does.
 */
function ciphertextFrom(bytes: Buffer): Buffer | string {
  return bytes.length > 1 && bytes[0] === MAGIC && bytes[1] === 1 ? bytes : chompText(bytes, 'ciphertext');
}

export const decrypt: Command = {
  name: 'decrypt',
  summary: 'decrypt one ciphertext (argument, --input file or stdin)',
  usage: `Usage: sifredb decrypt [<ciphertext>] --table <t> --column <c> [options]

Decrypts one ciphertext (text form or binary envelope; randomized or deterministic, as its header
says) with the key version named in its header, and prints the value: strings as they are, bytes
raw, numbers, booleans, bigints and dates as text, JSON as JSON. Fails (exit 4) for anything that is
not a valid ciphertext of this context — never passes input through.

Options:
${CONTEXT_HELP}
  --input <file>            read the ciphertext from a file
  --output <file>           write the value to a file (mode 0600)
${AAD_HELP}
${KEY_HELP}
  --json                    print {"value","type","keyVersion"} (bytes as base64)`,
  options: { ...CONTEXT_OPTIONS, ...AAD_OPTIONS, ...KMS_OPTIONS, input: { type: 'string' }, output: { type: 'string' } },
  positionals: 1,
  async run({ values, positionals }) {
    const out = new Output(values);
    const ctx = contextFrom(values);
    const input = await readInput(positionals[0], values, 'ciphertext');
    const ciphertext = ciphertextFrom(input.bytes);
    const info = inspect(ciphertext);
    const { keyring, close } = await openKeyring(values);
    try {
      const vault = info.algorithm === 'aes-256-siv' ? await DeterministicVault.open(keyring) : await Vault.open(keyring);
      const value = vault.decrypt(ciphertext, ctx, rowBindingFrom(values));
      if (out.json) {
        const type = Buffer.isBuffer(value) ? 'bytes' : value instanceof Date ? 'date' : value === null || typeof value === 'object' ? 'json' : typeof value;
        const shown = Buffer.isBuffer(value) ? value.toString('base64') : typeof value === 'bigint' ? value.toString() : value;
        out.result({ value: shown, type, keyVersion: info.keyVersion });
        return 0;
      }
      if (Buffer.isBuffer(value)) await writeOutput(values, value);
      else if (typeof value === 'string') await writeOutput(values, `${value}\n`);
      else if (value instanceof Date) await writeOutput(values, `${value.toISOString()}\n`);
      else if (value === null || typeof value === 'object') await writeOutput(values, `${JSON.stringify(value)}\n`);
      else await writeOutput(values, `${String(value)}\n`);
      return 0;
    } finally {
      close();
    }
  },
};

/** Parses `lowercase,trim,digits,nfc,uppercase,last4` into transforms. */
export function parseTransforms(spec: string | undefined): BlindIndexTransform[] {
  if (spec === undefined || spec === '') return [];
  return spec.split(',').map((name): BlindIndexTransform => {
    const last = /^last(\d+)$/.exec(name);
    if (last) return { lastN: Number(last[1]) };
    if (name === 'lowercase' || name === 'uppercase' || name === 'trim' || name === 'digits' || name === 'nfc') return name;
    throw usageError(`unknown transform ${JSON.stringify(name)} (lowercase, uppercase, trim, digits, nfc, lastN)`);
  });
}

export const index: Command = {
  name: 'index',
  summary: 'compute the blind-index term(s) of one value',
  usage: `Usage: sifredb index [<value>] --table <t> --column <c> --name <index> [options]

Prints the blind-index term of a value under the current key version (what to store with the row),
or with --query every term a stored value may have across the active key versions (what to put in
WHERE idx = ANY(...) during a rotation).

Options:
${CONTEXT_HELP}
  --name <index>            index name (part of its key)
  --bits <n>                term length, 8..256 (default 16)
  --transform <list>        comma-separated: lowercase, uppercase, trim, digits, nfc, lastN (e.g. last4)
  --query                   all query terms, current version first
  --format <f>              int (default for ≤ 53 bits), hex, or both
  --input <file>            read the value from a file
${KEY_HELP}
  --json                    print {"name","bits","terms":[{"version","hex","int"}]}`,
  options: {
    ...CONTEXT_OPTIONS,
    ...KMS_OPTIONS,
    name: { type: 'string' },
    bits: { type: 'string' },
    transform: { type: 'string' },
    query: { type: 'boolean' },
    format: { type: 'string' },
    input: { type: 'string' },
  },
  positionals: 1,
  async run({ values, positionals }) {
    const out = new Output(values);
    const ctx = contextFrom(values);
    const name = str(values, 'name');
    if (name === undefined || name === '') throw usageError('--name is required');
    const bits = int(values, 'bits', 8, 256) ?? 16;
    const transforms = parseTransforms(str(values, 'transform'));
    const format = str(values, 'format') ?? (bits <= 53 ? 'int' : 'hex');
    if (format !== 'int' && format !== 'hex' && format !== 'both') throw usageError('--format must be int, hex or both');
    const input = await readInput(positionals[0], values, 'value');
    const value = input.fromArg ? input.bytes.toString('utf8') : chompText(input.bytes, 'value to index');
    const { keyring, close } = await openKeyring(values);
    try {
      const bi = await BlindIndex.open(keyring, { name, bits, transforms });
      const terms = values.query === true ? bi.queryTerms(value, ctx) : [bi.compute(value, ctx)];
      out.result({ name, bits, terms: terms.map((t) => ({ version: t.version, hex: t.hex, int: String(t.int) })) });
      for (const t of terms) {
        const shown = format === 'int' ? String(t.int) : format === 'hex' ? t.hex : `${String(t.int)} ${t.hex}`;
        out.line(values.query === true ? `v${t.version} ${shown}` : shown);
      }
      return 0;
    } finally {
      close();
    }
  },
};

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show the header of a ciphertext (no key needed)',
  usage: `Usage: sifredb inspect [<ciphertext>] [--input <file>] [--json]

Parses a ciphertext's header without any key: format, algorithm, key version, sizes. Exit 4 when
the input is not a SifreDB ciphertext.`,
  options: { input: { type: 'string' } },
  positionals: 1,
  async run({ values, positionals }) {
    const out = new Output(values);
    const input = await readInput(positionals[0], values, 'ciphertext');
    const info = inspect(ciphertextFrom(input.bytes));
    out.result(info);
    out.line(`format          v${info.format} (${info.form})`);
    out.line(`algorithm       ${info.algorithm}`);
    out.line(`key version     ${info.keyVersion}`);
    out.line(`nonce           ${info.nonceLength} bytes`);
    out.line(`body            ${info.bodyLength} bytes`);
    out.line(`plaintext       ${info.plaintextLength} bytes`);
    return 0;
  },
};
