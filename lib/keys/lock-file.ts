/**
 * An exclusive cross-process lock for a key file: `<path>.lock`, created with `O_EXCL` (`wx`),
 * holding `{ pid, hostname, createdAt }`, removed when the locked operation ends. Internal.
 *
 * A lock whose holder is gone is broken: a process on this host that no longer exists (it crashed
 * or was killed mid-update), or a lock file left empty or unreadable for longer than `staleMs`
 * (its writer died between creating and filling it). A lock held by a live process — or by a
 * process on another host, whose liveness cannot be checked — is waited for, up to `timeoutMs`,
 * then the operation fails with `ERR_SIFREDB_KEY` "... is locked by another process".
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { SifreDBError } from '../errors.js';

/** Options of {@link withFileLock}. */
export interface FileLockOptions {
  /** Names the locked file in errors, e.g. `keystore /etc/app/keys.json`. */
  what: string;
  /** How long to wait for another process's lock (default 10 s). */
  timeoutMs?: number;
  /** Age after which an unreadable lock file counts as abandoned (default 30 s). */
  staleMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_STALE_MS = 30_000;
// Read when a lock is taken, not at import: Deno asks for --allow-sys to read it.
let host: string | undefined;
const HOST = (): string => (host ??= hostname());

interface LockOwner {
  pid?: unknown;
  hostname?: unknown;
  createdAt?: unknown;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function lockError(message: string, cause?: unknown): SifreDBError {
  return new SifreDBError('ERR_SIFREDB_KEY', message, cause === undefined ? undefined : { cause });
}

function processIsGone(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Whether the lock file (as read through one descriptor) belongs to nobody any more. */
function isAbandoned(text: string, ageMs: number, staleMs: number): boolean {
  let owner: LockOwner;
  try {
    owner = JSON.parse(text) as LockOwner;
  } catch {
    return ageMs > staleMs;
  }
  if (typeof owner !== 'object' || owner === null || !Number.isSafeInteger(owner.pid) || (owner.pid as number) <= 0) {
    return ageMs > staleMs;
  }
  if (owner.hostname !== HOST()) return false;
  return processIsGone(owner.pid as number);
}

/** Inode, size and change times: a new file at the same path differs even if its inode number is reused. */
function fileIdentity(stat: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/**
 * Removes `lockPath` if it is abandoned; true when it was (the caller then retries at once).
 * The lock is moved aside atomically first and checked to be the very file judged abandoned, so
 * two processes breaking the same stale lock cannot remove a fresh lock taken meanwhile.
 */
async function breakIfAbandoned(lockPath: string, staleMs: number): Promise<boolean> {
  let ino: number;
  let text: string;
  let ageMs: number;
  let identity: string;
  try {
    const handle = await fsp.open(lockPath, 'r');
    try {
      const stat = await handle.stat();
      ino = stat.ino;
      identity = fileIdentity(stat);
      ageMs = Date.now() - stat.mtimeMs;
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    // Released between our attempt and this read: retry at once.
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
  if (!isAbandoned(text, ageMs, staleMs)) return false;
  // The owner may have released the lock (unlinking it) and exited between our read and the
  // liveness check, and someone else taken a fresh lock since: only a file still at the lock path
  // with the same identity is the abandoned one (a dead owner cannot release it any more).
  try {
    if (fileIdentity(await fsp.lstat(lockPath)) !== identity) return true;
  } catch {
    return true;
  }
  const aside = `${lockPath}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await fsp.rename(lockPath, aside);
  } catch {
    return true; // someone else broke or released it
  }
  try {
    const moved = await fsp.stat(aside);
    if (moved.ino !== ino) {
      // A fresh lock replaced the stale one between our read and the rename: put it back.
      await fsp.link(aside, lockPath).catch(() => undefined);
    }
  } finally {
    await fsp.unlink(aside).catch(() => undefined);
  }
  return true;
}

/**
 * Runs `operation` while holding `<path>.lock`. The directory of `path` must exist.
 * @throws `ERR_SIFREDB_KEY` when the lock stays held by another process for `timeoutMs`, or
 *   cannot be created.
 */
export async function withFileLock<T>(path: string, options: FileLockOptions, operation: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    let handle: FileHandle;
    try {
      handle = await fsp.open(lockPath, 'wx', 0o600);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        throw lockError(`cannot create lock file ${lockPath} for ${options.what}${typeof code === 'string' ? ` (${code})` : ''}`, error);
      }
      if (await breakIfAbandoned(lockPath, staleMs)) continue;
      if (Date.now() >= deadline) {
        throw lockError(
          `${options.what} is locked by another process (lock file ${lockPath}); retry later, ` +
            'or remove the lock file if no SifreDB process is updating it',
        );
      }
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 100);
      continue;
    }
    try {
      try {
        await handle.writeFile(JSON.stringify({ pid: process.pid, hostname: HOST(), createdAt: new Date().toISOString() }));
      } finally {
        await handle.close();
      }
    } catch (error) {
      await fsp.unlink(lockPath).catch(() => undefined);
      throw lockError(`cannot write lock file ${lockPath} for ${options.what}`, error);
    }
    try {
      return await operation();
    } finally {
      await fsp.unlink(lockPath).catch(() => undefined);
    }
  }
}
