// Runs the built CLI (dist/cli/main.js), or any Node script, as a user would: a child process whose
// exit code and output come back, with no key store or database from the environment unless given.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Runs `node <script> <args>`; `input` goes to stdin. Resolves to `{ code, stdout, stderr }`. */
export function runNode(script, args, { input = '', env = {}, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd,
      env: { ...process.env, SIFREDB_KEYS: '', SIFREDB_DB: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Runs `sifredb <args>`. */
export function runCli(args, options) {
  return runNode(CLI, args, options);
}
