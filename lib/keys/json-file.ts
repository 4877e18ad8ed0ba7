/**
 * What the key-file readers (keystores, KMS keyrings) share about JSON: finding repeated member
 * names, which `JSON.parse` silently resolves to the last one, and describing a value or a member
 * name in an error without quoting it (it may be key material), and reading a private JSON key file
 * the one strict way. Internal.
 */
import { promises as fsp } from 'node:fs';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { isUtf8 } from '../format/bytes.js';

/** Member names quoted in errors: short words, which key material (32 bytes are 43+ characters) never is. */
const QUOTABLE_NAME = /^[A-Za-z_]{1,20}$/;

/** What a JSON value is, for an error message that must not quote it. Safe integers are shown. */
export function jsonKind(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : 'a number';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Member names for an error: short words quoted, anything else as "an unnamed one". */
export function describeMemberNames(names: readonly string[]): string {
  return names.map((name) => (QUOTABLE_NAME.test(name) ? `"${name}"` : 'an unnamed one')).join(', ');
}

/**
 * Whether JSON `text` (already parsed successfully by `JSON.parse`) repeats a member name within one
 * object. Names are compared after unescaping (`"a"` and `"\u0061"` are the same member).
 */
function hasDuplicateMembers(text: string): boolean {
  const open: (Set<string> | undefined)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const object = open[open.length - 1];
      let next = end + 1;
      while (text[next] === ' ' || text[next] === '\n' || text[next] === '\r' || text[next] === '\t') next++;
      if (object !== undefined && text[next] === ':') {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        if (object.has(name)) return true;
        object.add(name);
      }
      i = end;
    } else if (c === '{') open.push(new Set());
    else if (c === '[') open.push(undefined);
    else if (c === '}' || c === ']') open.pop();
  }
  return false;
}

/** How {@link readPrivateJson} names the file in its errors, and what it tolerates. */
export interface PrivateJsonFile {
  /** The file as errors name it, e.g. `keystore /etc/app/keys.json`. */
  readonly what: string;
  /** Accept a file that group or others can access (the caller's documented opt-out). */
  readonly allowInsecurePermissions: boolean;
  /** Refuse larger files. Default: no limit. */
  readonly maxBytes?: number;
}

const SHOWS_PERMISSIONS = process.platform !== 'win32';

/**
 * Reads a private JSON key file (keystore, KMS keyring, audit keys) the one strict way: opened once
 * and checked through that descriptor (no swap in between), a regular file, mode 0600 unless the
 * caller opted out, well-formed UTF-8, JSON with no repeated member names. The raw bytes are wiped.
 * Every refusal is `ERR_SIFREDB_KEY` naming `file.what` and never quoting content; a missing file
 * gives `undefined`, so that each caller says what that means.
 */
export async function readPrivateJson(path: string, file: PrivateJsonFile): Promise<unknown> {
  const refuse = (why: string) => new SifreDBError(ERROR_CODES.key, `${file.what} ${why}`);
  let text: string;
  try {
    const handle = await fsp.open(path, 'r');
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw refuse('is not a regular file');
      if (SHOWS_PERMISSIONS && (stat.mode & 0o077) !== 0 && !file.allowInsecurePermissions) {
        const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
        throw refuse(`has mode ${mode}: group or others can access it. Run \`chmod 600 ${path}\`, or pass { allowInsecurePermissions: true } to open it anyway`);
      }
      if (file.maxBytes !== undefined && stat.size > file.maxBytes) throw refuse(`is larger than ${file.maxBytes} bytes`);
      const bytes = await handle.readFile();
      try {
        // Decoding would silently turn bytes that are not UTF-8 into U+FFFD.
        if (!isUtf8(bytes)) throw refuse('is corrupted (not UTF-8)');
        text = bytes.toString('utf8');
      } finally {
        bytes.fill(0);
      }
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof SifreDBError) throw error;
    const code = (error as { code?: unknown })?.code;
    if (code === 'ENOENT') return undefined;
    throw refuse(`cannot be read${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // The parser's message can quote file content (key material), so it is not kept as a cause.
    throw refuse('is corrupted or truncated (not valid JSON)');
  }
  if (hasDuplicateMembers(text)) throw refuse('is invalid: a JSON object repeats a member name');
  return data;
}
