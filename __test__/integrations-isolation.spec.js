// `import 'sifredb'` loads no ORM: the integrations are subpath exports, and nothing the main entry
// imports (statically or with import()) names drizzle-orm or kysely. Checked on the built files.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** Every module reachable from `entry` through relative imports, with the bare specifiers each names. */
function graph(entry) {
  const seen = new Map();
  const visit = (file) => {
    if (seen.has(file)) return;
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)].map((m) => m[1]);
    seen.set(file, specifiers.filter((s) => !s.startsWith('.')));
    for (const s of specifiers.filter((s) => s.startsWith('.'))) visit(resolve(dirname(file), s));
  };
  visit(entry);
  return seen;
}

test('the main entry reaches no ORM', (t) => {
  const modules = graph(join(dist, 'index.js'));
  t.true(modules.size > 20, `only ${modules.size} modules found: the walk is broken`);
  const named = [...modules.values()].flat();
  t.false(named.some((s) => s.startsWith('drizzle-orm') || s.startsWith('kysely')), named.join(', '));
});

test('each integration is a subpath export with types, and its ORM an optional peer', (t) => {
  for (const [subpath, orm] of [['./drizzle', 'drizzle-orm'], ['./kysely', 'kysely']]) {
    const entry = pkg.exports[subpath];
    t.truthy(entry?.default && entry?.types, subpath);
    t.true(graph(join(dist, '..', entry.default)).size > 0);
    t.truthy(pkg.peerDependencies[orm]);
    t.true(pkg.peerDependenciesMeta[orm]?.optional === true);
    t.false(orm in (pkg.dependencies ?? {}));
  }
});
