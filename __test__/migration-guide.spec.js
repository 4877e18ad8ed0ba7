// docs/MIGRATION.md: each procedure is a script in examples/migrations/ that runs end to end and
// checks its own invariants. This file runs every script on a fresh PGlite directory and on a
// throwaway PostgreSQL server (one for the file; each script gets its own database), and checks that
// every `sifredb …` command the guide quotes is one the scripts actually ran (and its SQL is theirs).
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode } from './helpers/cli.js';
import { startPostgres } from './helpers/postgres.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sifredb-migration-guide-'));
// No skip: when PostgreSQL cannot start, this rejects and the whole file fails.
const server = await startPostgres();

test.after.always(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Each script, with the steps its log must show and what its CLI runs must report. */
const SCRIPTS = [
  {
    file: '1-encrypt-existing-column.js',
    steps: ['1. add the encrypted column', '2. dual-write', '3. backfill', '4. switch reads', '5. stop writing the plaintext', '6. VALIDATE the CHECK constraint', '7. drop the plaintext column', '8. schema check'],
    lines: [
      /^\$ sifredb schema sql .*--not-valid --apply$/m,
      /^\$ sifredb encrypt-column .*--target-column email_enc/m,
      /^   \| schema check: mig1_users match the schema$/m,
      /the database refuses a plaintext in email_enc \(23514/,
      /plaintext column gone; all \d+ rows decrypt/,
      /after: \d+ lookups by email \(encrypted\) each found exactly their row/,
    ],
    concurrent: true,
  },
  {
    file: '2-rotate-keys.js',
    steps: ['1. rotate', '2. roll out', '3. re-encrypt', '4. retire version 1', '5. schema check'],
    lines: [
      /^\$ sifredb keys rotate/m,
      /during: \d+ lookups by email \(2 terms each\) found exactly their row/,
      /^\$ sifredb schema sql .*--schema examples\/migrations\/schemas\/mig2_users\.json --apply$/m,
      /^\$ sifredb reencrypt .*--schema examples\/migrations\/schemas\/mig2_users\.json --column email$/m,
      /after reencrypt: all \d+ rows decrypt to their address; rows per key version \{"2":\d+\}/,
      /^\$ sifredb keys retire 1/m,
      /after retire: \d+ lookups by email \(1 term each\) found exactly their row/,
      /^   \| schema check: mig2_users match the schema$/m,
    ],
    concurrent: true,
  },
  {
    file: '3-change-blind-index.js',
    steps: ['1. add the new index column', '2. dual-write', '3. backfill the new column', '4. switch queries', '5. stop writing the old term', '6. schema check'],
    lines: [
      /^\$ sifredb schema sql .*--schema examples\/migrations\/schemas\/mig3_users\.both\.json --apply$/m,
      /^\$ sifredb reencrypt .*--schema examples\/migrations\/schemas\/mig3_users\.both\.json --column email$/m,
      /the \d+ rows the application did not write meanwhile keep their ciphertext/,
      /backfilled: all \d+ rows decrypt to their address and have their new term/,
      /after: \d+ lookups with the new index found exactly their row/,
      /^   \| schema check: mig3_users match the schema$/m,
    ],
    concurrent: true,
  },
  {
    file: '4-from-rust.js',
    steps: [
      '0. the starting point: a table written by SifreDB for Rust',
      '1. Node services read both formats and write the Rust one',
      '2. the last Rust service is gone: Node writes format v1',
      '3. import-rust',
      '4. retire the Rust format',
      '5. schema check',
    ],
    lines: [
      /^\$ sifredb import-rust .*--schema examples\/migrations\/schemas\/mig4_users\.json --column email --rust-deterministic-key "\$RUST_KEY" --rust-key-dir "\$RUST_KEYS" --rust-blind-index-column email_bidx$/m,
      /would be imported 0\b/,
      /after import-rust: all \d+ rows read as their address \(\d+ in format v1, 0 in the Rust format\)/,
      /the database refuses a Rust value in email \(23514\)/,
      /format v1 only: \d+ lookups by email found exactly their row/,
      /^   \| schema check: mig4_users match the schema$/m,
    ],
    concurrent: true,
  },
];

/** Runs a migration script; resolves to { code, stdout, stderr }. */
const run = (file, args) => runNode(join(root, 'examples', 'migrations', file), args, { cwd: root });

/** Runs are shared by the per-script tests and the guide check (each script runs once per database). */
const runs = new Map();
function runOn(database, script) {
  const key = `${database}:${script.file}`;
  if (!runs.has(key)) {
    runs.set(
      key,
      (async () => {
        if (database === 'pglite') return run(script.file, ['--db', join(dir, script.file.replace('.js', ''))]);
        const name = `mig_${script.file.slice(0, 1)}`;
        await server.pool.query(`CREATE DATABASE ${name}`);
        const url = new URL(server.url);
        url.pathname = `/${name}`;
        return run(script.file, ['--db', url.toString()]);
      })(),
    );
  }
  return runs.get(key);
}

function assertRun(t, script, result, database) {
  t.is(result.code, 0, `${script.file} on ${database} failed:\n${result.stderr}\n${result.stdout}`);
  for (const s of script.steps) t.true(result.stdout.includes(`== ${s}`), `missing step "${s}"`);
  for (const line of script.lines) t.regex(result.stdout, line);
  t.regex(result.stdout, /^== OK: every check passed$/m);
  t.is(result.stderr, '');
  // Nothing secret in the log: no key material, and the PostgreSQL URL appears only as "$DB".
  t.false(result.stdout.includes('postgres://'));
}

for (const script of SCRIPTS) {
  test(`pglite: ${script.file} runs end to end and passes its checks`, async (t) => {
    assertRun(t, script, await runOn('pglite', script), 'pglite');
  });

  test(`postgres: ${script.file} runs end to end and passes its checks`, async (t) => {
    const result = await runOn('postgres', script);
    assertRun(t, script, result, 'postgres');
    if (script.concurrent) {
      // On a server the application keeps writing while the CLI job runs; the run must show it did.
      t.regex(result.stdout, /\(the application made [1-9]\d* writes while this ran\)/);
    }
  });
}

test('a script refuses to run without --db, or with too few rows (exit 2, usage on stderr)', async (t) => {
  const none = await run(SCRIPTS[0].file, []);
  t.is(none.code, 2);
  t.regex(none.stderr, /--db .* is required/);
  const few = await run(SCRIPTS[0].file, ['--db', join(dir, 'unused'), '--rows', '3']);
  t.is(few.code, 2);
  t.regex(few.stderr, /--rows must be/);
});

test('a failed check exits 1 with its message; an unexpected error exits 70 without the database password', async (t) => {
  // The scripts' plumbing, with a procedure whose check fails (the scripts' own checks pass).
  const failing = join(dir, 'failing.mjs');
  const common = new URL('../examples/migrations/common.js', import.meta.url).href;
  writeFileSync(failing, `import { check, main } from ${JSON.stringify(common)};
await main('failing.mjs', async (env) => {
  const { rows } = await env.query('SELECT 1 AS one');
  check(rows[0].one === 2, 'one is not two');
});
`);
  const failed = await runNode(failing, ['--db', join(dir, 'failing-db')]);
  t.is(failed.code, 1);
  t.regex(failed.stderr, /^failing\.mjs: CHECK FAILED: one is not two$/m);
  t.false(failed.stdout.includes('== OK'));

  const unreachable = await run(SCRIPTS[1].file, ['--db', 'postgres://postgres:s3cret-pw@127.0.0.1:1/none']);
  t.is(unreachable.code, 70);
  t.regex(unreachable.stderr, /2-rotate-keys\.js: unexpected error: .*cannot connect/);
  t.false((unreachable.stdout + unreachable.stderr).includes('s3cret-pw'));
});

test('docs/MIGRATION.md: every `sifredb …` command it quotes is one a script ran', async (t) => {
  const guide = readFileSync(join(root, 'docs', 'MIGRATION.md'), 'utf8');
  const blocks = [...guide.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)].map((m) => m[1]);
  const quoted = blocks.flatMap((b) => b.split('\n')).map((l) => l.trim()).filter((l) => l.startsWith('sifredb '));
  t.true(quoted.length >= 8, `the guide quotes only ${quoted.length} sifredb commands`);
  const ran = new Set();
  for (const script of SCRIPTS) {
    const { stdout } = await runOn('pglite', script);
    for (const line of stdout.split('\n')) if (line.startsWith('$ sifredb ')) ran.add(line.slice(2));
  }
  for (const command of quoted) t.true(ran.has(command), `the guide quotes a command no script runs: ${command}`);
  // And the other way: every command a script runs is in the guide.
  for (const command of ran) t.true(quoted.includes(command), `a script runs a command the guide does not quote: ${command}`);
});

test('docs/MIGRATION.md: every SQL statement it quotes is in a script', (t) => {
  const guide = readFileSync(join(root, 'docs', 'MIGRATION.md'), 'utf8');
  const squash = (text) => text.replace(/\s+/g, ' ').trim();
  const statements = [...guide.matchAll(/```sql\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1].split(';'))
    .map(squash)
    .filter((s) => s !== '');
  t.true(statements.length >= 3, `the guide quotes only ${statements.length} SQL statements`);
  // The scripts write their table as ${TABLE}; the guide writes its name.
  const sources = SCRIPTS.map((script) => {
    const text = readFileSync(join(root, 'examples', 'migrations', script.file), 'utf8');
    const table = /const TABLE = '([a-z0-9_]+)'/.exec(text)[1];
    return squash(text.replaceAll('${TABLE}', table));
  });
  for (const statement of statements) t.true(sources.some((s) => s.includes(statement)), `no script runs the guide's SQL: ${statement}`);
});

test('docs/MIGRATION.md links each script, and each script exists', (t) => {
  const guide = readFileSync(join(root, 'docs', 'MIGRATION.md'), 'utf8');
  for (const script of SCRIPTS) {
    t.true(guide.includes(`../examples/migrations/${script.file}`), `the guide does not link ${script.file}`);
    t.notThrows(() => readFileSync(join(root, 'examples', 'migrations', script.file)));
  }
});
