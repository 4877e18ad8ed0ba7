/**
 * What the key-file readers (keystores, KMS keyrings) share about JSON: finding repeated member
 * names, which `JSON.parse` silently resolves to the last one, and describing a value or a member
 * name in an error without quoting it (it may be key material). Internal.
 */

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
export function hasDuplicateMembers(text: string): boolean {
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
