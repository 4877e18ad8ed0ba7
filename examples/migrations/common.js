// Shared plumbing of the migration scripts (docs/MIGRATION.md): argument parsing, the database the
// "application" uses, the `sifredb` CLI run as a child process, checks that stop the script with a
// clear message, and the step log. The procedures themselves are in the numbered scripts.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openDatabase } from 'sifredb';

/** The CLI of this checkout, so the scripts test the code next to them, not an installed copy. */
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** The repository root: the CLI runs there, so schema files are named as the guide names them. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A failed invariant: the script prints the message and exits 1. */
export class CheckFailed extends Error {}

/** Throws {@link CheckFailed} with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

/** Prints one step of the log (the test looks for these lines). */
export function step(text) {
  console.log(`== ${text}`);
}

export function note(text) {
  console.log(`   ${text}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Parses `--db <postgres://url | PGlite dir>` (and `--rows n`), and runs `procedure(env)` with a
 * keystore in a temporary directory. Exit 0 when it returns, 1 with the message when a check fails,
 * 2 for bad arguments, 70 for anything unexpected.
 */
export async function main(name, procedure, { rows: defaultRows = 1000 } = {}) {
  let values;
  try {
    ({ values } = parseArgs({ options: { db: { type: 'string' }, rows: { type: 'string' } }, strict: true }));
    if (!values.db) throw new Error('--db <postgres://url | PGlite directory> is required');
  } catch (error) {
    console.error(`${name}: ${error.message}`);
    console.error(`usage: node ${name} --db <postgres://url | PGlite directory> [--rows n]`);
    process.exit(2);
  }
  const rows = values.rows === undefined ? defaultRows : Number(values.rows);
  if (!Number.isInteger(rows) || rows < 10) {
    console.error(`${name}: --rows must be an integer ≥ 10`);
    process.exit(2);
  }
  // The keystore is throwaway, like the table: a real one is created once and backed up (KEYS.md).
  const work = mkdtempSync(join(tmpdir(), 'sifredb-migration-'));
  const target = /^postgres(ql)?:\/\//i.test(values.db) ? values.db : resolve(values.db);
  const env = new Env(target, join(work, 'keys.json'), rows);
  let code = 0;
  try {
    await env.open();
    await procedure(env);
    step('OK: every check passed');
  } catch (error) {
    if (error instanceof CheckFailed) {
      console.error(`${name}: CHECK FAILED: ${error.message}`);
      code = 1;
    } else {
      console.error(`${name}: unexpected error: ${error?.stack ?? error}`);
      code = 70;
    }
  } finally {
    await env.db?.close().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
  process.exit(code);
}

/** What a procedure works with: the application's database connection, and the CLI. */
class Env {
  constructor(target, keysFile, rows) {
    this.target = target;
    this.keysFile = keysFile;
    this.rows = rows;
    this.isPostgres = /^postgres(ql)?:\/\//i.test(target);
    this.db = undefined;
  }

  async open() {
    if (!this.isPostgres) mkdirSync(this.target, { recursive: true });
    this.db = await openDatabase(this.target);
  }

  /** Runs a statement as the application would. */
  query(sql, params) {
    return this.db.query(sql, params);
  }

  /**
   * Runs `sifredb <args>` with `--keys` (unless `keys` is false) and `--db` (when `db`), logging the command line as the guide
   * writes it (`"$KEYS"`, `"$DB"`, and `shownAs`'s names), and returns `{ code, stdout, stderr }`. Exit codes other than
   * `expect` fail the script. PGlite is a single-process database, so the application's connection
   * is closed while the CLI has the directory, and opened again after.
   */
  async sifredb(args, { db = false, keys = true, expect = 0, whileRunning, shownAs = {} } = {}) {
    const [command, ...rest] = args;
    const positional = [];
    while (rest.length > 0 && !rest[0].startsWith('--')) positional.push(rest.shift());
    const argv = [command, ...positional, ...(keys ? ['--keys', this.keysFile] : []), ...(db ? ['--db', this.target] : []), ...rest];
    // `shownAs` maps an argument (a temporary path) to how the guide writes it (`"$RUST_KEY"`).
    const shown = [command, ...positional, ...(keys ? ['--keys', '"$KEYS"'] : []), ...(db ? ['--db', '"$DB"'] : []), ...rest.map((a) => shownAs[a] ?? a)];
    console.log(`$ sifredb ${shown.join(' ')}`);
    const pglite = db && !this.isPostgres;
    if (pglite) await this.db.close();
    const child = spawn(process.execPath, [CLI, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code));
    });
    // On PostgreSQL the application keeps writing while the job runs: that is what "no downtime"
    // has to survive. (On PGlite the writes happen before and after instead; see the scripts.)
    let finished = false;
    let concurrentWrites = 0;
    const writer = (async () => {
      if (!whileRunning || pglite) return;
      while (!finished) {
        await whileRunning();
        concurrentWrites += 1;
        await sleep(2);
      }
    })();
    let code;
    try {
      code = await done;
    } finally {
      finished = true;
      await writer;
      if (pglite) this.db = await openDatabase(this.target);
    }
    for (const line of stdout.trimEnd().split('\n')) if (line !== '') note(`| ${line}`);
    if (concurrentWrites > 0) note(`(the application made ${concurrentWrites} writes while this ran)`);
    check(code === expect, `sifredb ${command} exited ${code}, expected ${expect}\n${stderr.trim()}`);
    return { code, stdout, stderr, concurrentWrites };
  }

  /** The columns of `table`, from the catalog. */
  async columns(table) {
    const result = await this.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`,
      [table],
    );
    return new Set(result.rows.map((r) => r.column_name));
  }

  /** Runs `sql` and returns the SQLSTATE it failed with (or undefined if it succeeded). */
  async sqlState(sql, params) {
    try {
      await this.query(sql, params);
      return undefined;
    } catch (error) {
      return String(error?.code ?? error?.cause?.code ?? /\[([0-9A-Z]{5})\]/.exec(String(error?.message))?.[1] ?? 'unknown');
    }
  }
}

/** A deterministic pseudo-random generator (the same rows on every run). */
export function random(seed = 1) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The address of user `n`, with the mixed case and spacing that real input has. */
export function emailOf(n, variant = 0) {
  const domains = ['example.com', 'Example.org', 'mail.example.net'];
  const local = n % 3 === 0 ? `User.${n}` : `user${n}`;
  return `${local}${variant ? `+v${variant}` : ''}@${domains[n % domains.length]}`;
}
