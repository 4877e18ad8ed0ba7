#!/usr/bin/env node
/**
 * The `sifredb` command line. Each command lives in its own module; this file dispatches, prints
 * help, and turns errors into one clear line and an exit code (docs/CLI.md).
 */
// Registers how the default backend is chosen (native addon, else pure JS) for this entry point.
import '../backend/index.js';
import { readFileSync } from 'node:fs';
import { auditCommand } from './audit.js';
import { bench } from './bench.js';
import { type Command, EXIT, exitCodeFor, parse, usageError } from './common.js';
import { constraints, encryptColumnCommand, importRustCommand, reencrypt } from './db.js';
import { demo } from './demo.js';
import { schemaCommand } from './schema.js';
import { keygen, keys } from './keys.js';
import { decrypt, encrypt, index, inspectCommand } from './values.js';

const COMMANDS: readonly Command[] = [keygen, keys, encrypt, decrypt, index, inspectCommand, reencrypt, encryptColumnCommand, importRustCommand, constraints, schemaCommand, auditCommand, demo, bench];

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const MAIN_HELP = `sifredb ${version()} — field-level encryption for Node.js and PostgreSQL

Usage: sifredb <command> [options]        sifredb <command> --help for its options

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(16)}${c.summary}`).join('\n')}

Global options:
  --keys <path>     key store (or env SIFREDB_KEYS)
  --json            machine-readable output on stdout
  --quiet           no progress or notes on stderr
  --verbose         stack traces with errors
  -h, --help        help
  --version         print the version

Exit codes: 0 ok, 1 some rows failed, 2 usage error, 3 key error, 4 data error (not a ciphertext,
wrong key or context, tampered), 5 database error, 6 file unreadable/unwritable, 70 internal error,
130 interrupted. See docs/CLI.md.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    const command = COMMANDS.find((c) => c.name === topic);
    if (topic !== undefined && command === undefined) throw usageError(`unknown command ${JSON.stringify(topic)}; see sifredb --help`);
    process.stdout.write(`${command?.usage ?? MAIN_HELP}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) throw usageError(`unknown command ${JSON.stringify(name)}; see sifredb --help`);
  const args = parse(rest, command.options, command.positionals);
  if (args.values.help === true) {
    process.stdout.write(`${command.usage}\n`);
    return EXIT.ok;
  }
  return command.run(args);
}

const argv = process.argv.slice(2);
const verbose = argv.includes('--verbose');
const json = argv.includes('--json');
try {
  process.exitCode = await main(argv);
} catch (error) {
  const exitCode = exitCodeFor(error);
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    process.stderr.write(`${JSON.stringify({ error: { code: typeof code === 'string' ? code : 'ERR_SIFREDB_INTERNAL', message }, exitCode })}\n`);
  } else {
    process.stderr.write(`sifredb: ${message}\n`);
    if (exitCode === EXIT.usage) process.stderr.write(`see sifredb ${COMMANDS.some((c) => c.name === argv[0]) ? `${argv[0]} ` : ''}--help\n`);
  }
  if (verbose) {
    let e: unknown = error;
    while (e instanceof Error) {
      process.stderr.write(`${e.stack ?? e.message}\n`);
      e = e.cause;
      if (e !== undefined) process.stderr.write('caused by: ');
    }
  }
  process.exitCode = exitCode;
}
