// Test harness: a throwaway PostgreSQL server from Debian's packages (installed by
// scripts/setup-test-services.sh), in a temporary data directory, listening on 127.0.0.1 with a free
// port and trusting local connections. The server refuses to run as root, so when the tests run as
// root it runs as the `postgres` system user. When it cannot start, startPostgres() rejects and the
// test file fails: there is no skip.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, sleep } from './net.js';

const START_TIMEOUT_MS = 30_000;

/** The newest /usr/lib/postgresql/<version>/bin, or SIFREDB_PG_BIN. */
function binDir() {
  if (process.env.SIFREDB_PG_BIN) return process.env.SIFREDB_PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql; run `bash scripts/setup-test-services.sh`');
  }
  return join(root, versions[0], 'bin');
}

/** uid/gid to run the server as: the `postgres` user when we are root, else ourselves. */
function serverUser() {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts a server. Returns `{ url, pool, stop }`: `url` is a postgres:// URL for the CLI, `pool` a
 * pg.Pool on it for the test's own queries, `stop()` ends both and removes the data directory.
 * `durable: false` (default) turns fsync off: the tests crash clients, never the server.
 */
export async function startPostgres({ durable = false } = {}) {
  const bin = binDir();
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-pg-'));
  const data = join(dir, 'data');
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid);
  const run = (cmd, args) => execFileSync(join(bin, cmd), args, { ...user, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C']);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${error.stderr?.toString() || error.message}`);
  }
  const settings = ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'max_connections=50'];
  if (!durable) settings.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');

  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), ...settings], {
      ...user,
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    running.add(child);
    let log = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      if (log.length < 16_384) log += chunk;
    });
    let exited = false;
    const exit = new Promise((resolve) => {
      child.once('exit', () => {
        exited = true;
        running.delete(child);
        resolve();
      });
      child.once('error', (error) => {
        log += String(error);
        exited = true;
        running.delete(child);
        resolve();
      });
    });
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!exited && Date.now() < deadline) {
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        await client.end();
        const pool = new pg.Pool({ connectionString: url, max: 8 });
        pool.on('error', () => undefined);
        const stop = async () => {
          await pool.end().catch(() => undefined);
          if (!exited) {
            child.kill('SIGINT'); // fast shutdown
            await Promise.race([exit, sleep(10_000)]);
            if (!exited) child.kill('SIGKILL');
            await exit;
          }
          rmSync(dir, { recursive: true, force: true });
        };
        return { url, pool, stop, port };
      } catch {
        await client.end().catch(() => undefined);
        await sleep(100);
      }
    }
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
    lastError = log;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`PostgreSQL did not start:\n${lastError}`);
}
