/**
 * Atomic, private writes of key files (keystores, KMS keyrings), through symlinks to the real file.
 * Internal.
 *
 * A keystore path is often a symlink (into a mounted secret volume, a backed-up directory, a
 * versioned release layout). Renaming a temp file over the link itself would replace the link by a
 * regular file: the real keystore, which other processes and the backups read, would silently stop
 * receiving new key versions. So every write resolves the link chain first and replaces the file it
 * ends at, in that file's own directory; the links stay as they were.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** Key files are readable and writable by their owner only. */
export const KEY_FILE_MODE = 0o600;

/** Linux's own limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

/** Filesystems without hard links report these from `link()`; the create-only write then falls back. */
const NO_HARDLINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/** Thrown by {@link writeFileAtomically} in `create` mode when the file already exists. */
export class FileExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} exists`);
  }
}

/**
 * The file `path` stands for: the end of its symlink chain, resolved one link at a time (a relative
 * target is relative to its link's directory). A chain ending at a missing name gives that name, so
 * a dangling link to where a keystore should be is where it is created.
 * @throws the `ELOOP` error of `fs` after {@link MAX_SYMLINK_HOPS} links; other `fs` errors as is.
 */
export async function realFilePath(path: string): Promise<string> {
  let current = resolve(path);
  for (let hops = 0; hops <= MAX_SYMLINK_HOPS; hops++) {
    let target: string;
    try {
      target = await fsp.readlink(current);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      // EINVAL: not a symlink (the real file); ENOENT: a name to create.
      if (code === 'EINVAL' || code === 'ENOENT') return current;
      throw error;
    }
    current = resolve(dirname(current), target);
  }
  throw Object.assign(new Error(`too many symbolic links resolving ${path}`), { code: 'ELOOP' });
}

/** fsync of a directory makes a rename durable; platforms that cannot open directories skip it. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES' && code !== 'ENOTSUP') throw error;
  } finally {
    await handle?.close();
  }
}

/** How {@link writeFileAtomically} treats an existing file. */
export type WriteMode = 'create' | 'replace';

/**
 * Writes `data` to the real file behind `path` ({@link realFilePath}) so that a reader, or a crash,
 * sees either the old file or the whole new one: a temp file with mode 0600 beside the real file,
 * fsync, then rename over it (`replace`) or a hard link that fails when it exists (`create`), then
 * fsync of the directory. Symlinks on the way are kept. The temp file never outlives the call.
 * Returns the real path written.
 * @throws {@link FileExistsError} in `create` mode when the file exists; `fs` errors as is.
 */
export async function writeFileAtomically(path: string, data: Uint8Array, mode: WriteMode): Promise<string> {
  const real = await realFilePath(path);
  const dir = dirname(real);
  const temp = join(dir, `.${basename(real)}.${randomBytes(6).toString('hex')}.tmp`);
  let placedByRename = false;
  try {
    const handle = await fsp.open(temp, 'wx', KEY_FILE_MODE);
    try {
      // The umask may have narrowed the creation mode; exactly 0600 is what readers check for.
      await handle.chmod(KEY_FILE_MODE);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (mode === 'replace') {
      await fsp.rename(temp, real);
      placedByRename = true;
    } else {
      try {
        await fsp.link(temp, real);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'EEXIST') throw new FileExistsError(real);
        if (typeof code !== 'string' || !NO_HARDLINK.has(code)) throw error;
        // No hard links on this filesystem: check, then rename. A narrow race, but never a partial file.
        if (await fsp.lstat(real).then(() => true, () => false)) throw new FileExistsError(real);
        await fsp.rename(temp, real);
        placedByRename = true;
      }
    }
    await syncDirectory(dir);
    return real;
  } finally {
    if (!placedByRename) {
      await fsp.unlink(temp).catch(() => undefined);
      await syncDirectory(dir).catch(() => undefined);
    }
  }
}
