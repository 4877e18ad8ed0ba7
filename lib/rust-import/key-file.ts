/** Reads one key file of the Rust crates' world, read-only, permission-checked on the open descriptor. */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { allocSecret, wipe } from '../format/bytes.js';

/** Options shared by the readers of Rust key files. */
export interface RustKeyFileOptions {
  /** Read files that group or others can access (the Rust crates refuse anything but 0600). */
  readonly allowInsecurePermissions?: boolean;
}

const SHOWS_PERMISSIONS = process.platform !== 'win32';

export function keyError(message: string, cause?: unknown): SifreDBError {
  return new SifreDBError(ERROR_CODES.key, message, cause === undefined ? undefined : { cause });
}

/** The error of a failed open or read: the path and the system's code, never the content. */
function ioError(path: string, action: string, error: unknown): SifreDBError {
  const code = (error as { code?: unknown })?.code;
  return keyError(`cannot ${action} ${path}${typeof code === 'string' ? ` (${code})` : ''}`);
}

const HEX = /^[0-9a-fA-F]*$/;

/**
 * `length` raw bytes from `path`, or (with `hexAllowed`) `2 × length` hex digits and an optional
 * final newline. Opened read-only; never written.
 */
export async function readKeyFile(path: string, length: number, options: RustKeyFileOptions & { hexAllowed?: boolean } = {}): Promise<Buffer> {
  let handle: FileHandle;
  try {
    handle = await fsp.open(path, 'r');
  } catch (error) {
    throw ioError(path, 'open', error);
  }
  // At most one byte more than the longest accepted form: a larger file is refused unread.
  const limit = (options.hexAllowed ? 2 * length + 2 : length) + 1;
  let content: Buffer;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw keyError(`${path} is not a regular file`);
    if (SHOWS_PERMISSIONS && (stat.mode & 0o077) !== 0 && options.allowInsecurePermissions !== true) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw keyError(`${path} has mode ${mode}: group or others can access it. Run \`chmod 600 ${path}\`, or allow insecure permissions to read it anyway`);
    }
    content = allocSecret(limit);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await handle.read(content, filled, limit - filled, null);
      if (bytesRead === 0 || (filled += bytesRead) === limit) break;
    }
    content = content.subarray(0, filled);
  } catch (error) {
    throw error instanceof SifreDBError ? error : ioError(path, 'read', error);
  } finally {
    await handle.close();
  }
  if (content.length === length) return content;
  if (options.hexAllowed) {
    let end = content.length;
    if (content[end - 1] === 0x0a) end--;
    if (content[end - 1] === 0x0d) end--;
    const text = content.subarray(0, end).toString('latin1');
    if (end === 2 * length && HEX.test(text)) {
      const key = allocSecret(length);
      key.write(text, 'hex');
      wipe(content);
      return key;
    }
  }
  const size = content.length === limit ? `more than ${limit - 1} bytes` : `${content.length} bytes`;
  wipe(content);
  throw keyError(`${path} is not a key of ${length} bytes${options.hexAllowed ? ` (raw, or ${2 * length} hex digits)` : ''}: ${size}`);
}
