/**
 * What every `sifredb` command shares: exit codes, argument parsing, output (text or `--json`),
 * reading a value from an argument, a file or stdin, and opening the key store.
 */
import { Buffer } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { isUtf8 } from '../format/bytes.js';
import { FileKeyProvider } from '../keys/file.js';
import type { KeyProvider } from '../keys/provider.js';

/** Exit codes (docs/CLI.md). Stable: scripts depend on them. */
export const EXIT = {
  ok: 0,
  /** A batch job finished, but some rows failed (each is reported with its id); or the demo's check failed. */
  rowsFailed: 1,
  /** Bad command line: unknown command or option, missing or invalid argument. */
  usage: 2,
  /** Key store missing, unreadable, corrupted or too permissive; unknown key version; KMS failure. */
  key: 3,
  /** A value could not be processed: not a ciphertext, wrong key or context, tampered, invalid input. */
  data: 4,
  /** The database could not be reached, or a statement failed. */
  database: 5,
  /** An input or output file could not be read or written. */
  io: 6,
  /** Interrupted (SIGINT/SIGTERM); batches already committed stay, rerun to finish. */
  interrupted: 130,
  /** A bug: an unexpected error (rerun with --verbose and report it). */
  internal: 70,
} as const;

/** An error meant for the user, with the exit code to leave with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A bad command line (exit 2). */
export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage, 'ERR_SIFREDB_USAGE');
}

/** A file that cannot be read or written (exit 6). The OS message names the reason, never content. */
export function ioError(action: string, path: string, error: unknown): CliError {
  const reason = (error as { code?: unknown })?.code;
  return new CliError(`cannot ${action} ${path}${typeof reason === 'string' ? ` (${reason})` : ''}`, EXIT.io, 'ERR_SIFREDB_IO');
}

/** The exit code for any error a command throws. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof SifreDBError) {
    switch (error.code) {
      case ERROR_CODES.key:
      case ERROR_CODES.kms:
      case ERROR_CODES.backend:
        return EXIT.key;
      case ERROR_CODES.database:
        return EXIT.database;
      default:
        return EXIT.data;
    }
  }
  return EXIT.internal;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  keys: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** The context options of the value commands and the jobs. */
export const CONTEXT_OPTIONS = {
  table: { type: 'string' },
  column: { type: 'string' },
  tenant: { type: 'string' },
  'context-version': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** Parsed option values: strings, booleans, or arrays of strings for `multiple` options. */
export type Values = Record<string, string | boolean | string[] | undefined>;

/** `parseArgs`, with its errors turned into usage errors. */
export function parse(
  argv: readonly string[],
  options: ParseArgsConfig['options'],
  maxPositionals: number,
): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs' messages are clear ("Unknown option '--x'…") and quote only the command line.
    throw usageError((error as Error).message.split('\n')[0]!);
  }
  if (parsed.positionals.length > maxPositionals && parsed.values.help !== true) {
    throw usageError(`unexpected argument ${JSON.stringify(parsed.positionals[maxPositionals])}`);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

/** A string option, or undefined. */
export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A required string option. */
export function required(values: Values, name: string): string {
  const v = str(values, name);
  if (v === undefined || v === '') throw usageError(`--${name} is required`);
  return v;
}

/** A repeatable string option. */
export function list(values: Values, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** An integer option within [min, max]. */
export function int(values: Values, name: string, min: number, max: number): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  if (!/^(?:0|[1-9]\d*)$/.test(v) || Number(v) < min || Number(v) > max) throw usageError(`--${name} must be an integer in ${min}..${max}`);
  return Number(v);
}

/** The encryption context from --table, --column, --tenant and --context-version. */
export function contextFrom(values: Values): EncryptionContext {
  try {
    return new EncryptionContext({
      table: required(values, 'table'),
      column: required(values, 'column'),
      tenant: str(values, 'tenant'),
      version: int(values, 'context-version', 1, 0xffffffff),
    });
  } catch (error) {
    if (error instanceof SifreDBError) throw usageError(error.message);
    throw error;
  }
}

/** Where command output goes. Text for people by default; `--json` prints one JSON document on stdout. */
export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  constructor(values: Values) {
    this.json = values.json === true;
    this.quiet = values.quiet === true;
    this.verbose = values.verbose === true;
  }

  /** Prints a line for people (not in --json mode). */
  line(text = ''): void {
    if (!this.json) process.stdout.write(`${text}\n`);
  }

  /** A progress or status note on stderr (silenced by --quiet). */
  note(text: string): void {
    if (!this.quiet) process.stderr.write(`${text}\n`);
  }

  /** Prints the JSON document (in --json mode only). */
  result(value: unknown): void {
    if (this.json) {
      process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
    }
  }
}

/** Reads all of stdin. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The input value: the positional argument, else `--input <file>`, else stdin (which must not be a
 * terminal). Text from a file or stdin loses one trailing newline, so `echo x | sifredb …` means "x".
 */
export async function readInput(positional: string | undefined, values: Values, what: string): Promise<{ bytes: Buffer; fromArg: boolean }> {
  const file = str(values, 'input');
  if (positional !== undefined && file !== undefined) throw usageError(`give the ${what} as an argument or with --input, not both`);
  if (positional !== undefined) return { bytes: Buffer.from(positional, 'utf8'), fromArg: true };
  if (file !== undefined) {
    try {
      return { bytes: await readFile(file), fromArg: false };
    } catch (error) {
      throw ioError('read', file, error);
    }
  }
  if (process.stdin.isTTY) throw usageError(`give the ${what} as an argument, with --input <file>, or on stdin`);
  return { bytes: await readStdin(), fromArg: false };
}

/**
 * `bytes` as text without one trailing newline (`\n` or `\r\n`). Bytes that are not UTF-8 are a
 * usage error, never silently turned into U+FFFD and encrypted so.
 */
export function chompText(bytes: Buffer, what: string): string {
  if (!isUtf8(bytes)) throw usageError(`the ${what} is not valid UTF-8${what === 'value' ? '; pass --bytes to take it as raw bytes' : ''}`);
  const text = bytes.toString('utf8');
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** The key store path from --keys or SIFREDB_KEYS. */
export function keysPath(values: Values): string {
  const path = str(values, 'keys') ?? (process.env.SIFREDB_KEYS || undefined);
  if (path === undefined || path === '') throw usageError('no key store: pass --keys <path> or set SIFREDB_KEYS');
  return path;
}

/**
 * Opens the key store: a KMS keyring (its JSON says `"type": "sifredb-kms-keyring"`), wrapped under
 * the keys of `--kms` (or `--kms-key`), else under the keys its current version records; or a file
 * keystore.
 */
export async function openKeyProvider(values: Values): Promise<KeyProvider> {
  const path = keysPath(values);
  const { kmsSpecs, openKmsKeyring, specsFromKeyring } = await import('./kms.js');
  const given = kmsSpecs(values);
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    // Missing, unreadable or corrupted: the provider's open reports it precisely (ERR_SIFREDB_KEY).
  }
  const kms = (doc as { type?: unknown } | undefined)?.type === 'sifredb-kms-keyring';
  if (!kms && given.length === 0) return FileKeyProvider.open(path);
  let specs = given;
  if (specs.length === 0) {
    // The store's own strict read (permissions, UTF-8, repeated members, every field), so that a bad
    // keyring is reported as such before any key service is configured from what it records.
    const { FileKeyringStore } = await import('../keys/kms/keyring.js');
    const stored = await new FileKeyringStore(path).read();
    if (stored === undefined) return FileKeyProvider.open(path);
    specs = specsFromKeyring(stored, path);
  }
  return openKmsKeyring(path, specs, values, false);
}

/** Closes a provider that holds a client (KMS); a no-op for the others. */
export function closeProvider(provider: KeyProvider): void {
  (provider as { close?: () => void }).close?.();
}

/** Formats an integer with thousands separators. */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** One `sifredb` command. */
export interface Command {
  readonly name: string;
  /** One line for `sifredb --help`. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly usage: string;
  /** Its options (the global ones are added). */
  readonly options: ParseArgsConfig['options'];
  /** Most positional arguments accepted. */
  readonly positionals: number;
  /** Runs it; resolves to the exit code. */
  run(args: { values: Values; positionals: string[] }): Promise<number>;
}
