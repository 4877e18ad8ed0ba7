// One package for `import` and `require`, and for bundlers: a `.cjs` file, a TypeScript project
// compiled to CommonJS, an ES module, and esbuild bundles (CommonJS and ESM; SifreDB external or
// bundled in) each install SifreDB as a user would (node_modules/sifredb → this checkout), do a round
// trip, decrypt a frozen vector and report the backend. Under SIFREDB_BACKEND=native the native
// addon must load; under =js the pure-JS backend is forced. A bundle that cannot find the addon must
// say so in `backendError`, never crash the import.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const forced = process.env.SIFREDB_BACKEND;
const expected = forced === 'js' ? 'js' : 'native';
const addonFile = `sifredb.${process.platform}-${process.arch}-gnu.node`;
const vectors = JSON.parse(readFileSync(join(root, 'test-vectors/format-v1.json'), 'utf8'));

const project = mkdtempSync(join(tmpdir(), 'sifredb-modules-'));
test.after.always(() => rmSync(project, { recursive: true, force: true }));
mkdirSync(join(project, 'node_modules/@types'), { recursive: true });
symlinkSync(root, join(project, 'node_modules/sifredb'), 'dir');
symlinkSync(join(root, 'node_modules/@types/node'), join(project, 'node_modules/@types/node'), 'dir');
writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true }));

// The same program in every module system: a round trip on both vaults, a blind index, and the
// frozen vectors' envelopes decrypted with their root keys.
const body = (sifredb) => `
const { Vault, DeterministicVault, BlindIndex, StaticKeyProvider, EncryptionContext, backend, backendError } = ${sifredb};
const vectors = ${JSON.stringify({ rootKeys: vectors.rootKeys, contexts: vectors.contexts, envelopes: vectors.envelopes })};
async function main() {
  const ctx = EncryptionContext.of('users', 'email');
  const provider = StaticKeyProvider.generate();
  const vault = await Vault.open(provider);
  const det = await DeterministicVault.open(provider);
  const index = await BlindIndex.open(provider, { name: 'email', bits: 16 });
  const roundTrip = vault.decrypt(vault.encrypt('ann@example.com', ctx), ctx) === 'ann@example.com'
    && det.decrypt(det.encrypt('ann@example.com', ctx), ctx) === 'ann@example.com'
    && index.compute('ann@example.com', ctx).hex.length === 4;
  const keys = new StaticKeyProvider({ keys: vectors.rootKeys.map((k) => ({ version: k.version, key: Buffer.from(k.hex, 'hex') })) });
  const readers = { randomized: await Vault.open(keys), deterministic: await DeterministicVault.open(keys) };
  let frozen = 0;
  for (const v of vectors.envelopes) {
    const c = vectors.contexts.find((c) => c.name === v.context);
    const ctxOf = new EncryptionContext({ tenant: c.tenant, table: c.table, column: c.column, version: c.version });
    const bytes = readers[v.algorithm === 3 ? 'deterministic' : 'randomized'].decryptBytes(v.text, ctxOf);
    if (Buffer.from(bytes).toString('hex') === v.valueHex) frozen++;
  }
  console.log(JSON.stringify({ backend, backendError: backendError && { code: backendError.code, message: backendError.message }, roundTrip, frozen }));
}
main().catch((error) => { console.error(error); process.exit(1); });
`;

function run(file, env = {}) {
  const result = spawnSync(process.execPath, [file], { cwd: project, encoding: 'utf8', env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`${file} exited ${result.status}: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

function assertWorked(t, report, backend = expected) {
  t.is(report.backend, backend);
  t.true(report.roundTrip);
  t.is(report.frozen, vectors.envelopes.length);
}

function esbuild(entry, out, args) {
  execFileSync(require.resolve('esbuild/bin/esbuild'), [entry, '--bundle', '--platform=node', `--outfile=${out}`, '--log-level=error', ...args], {
    cwd: project,
  });
}

test('the vectors in this file are the frozen ones', (t) => {
  t.true(vectors.envelopes.length >= 8);
  t.true(vectors.envelopes.every((v) => typeof v.text === 'string' && typeof v.valueHex === 'string'));
});

test('require("sifredb") from a .cjs file', (t) => {
  writeFileSync(join(project, 'app.cjs'), body("require('sifredb')"));
  assertWorked(t, run('app.cjs'));
});

test('import from an ES module, and require and import give the same module', (t) => {
  writeFileSync(join(project, 'app.mjs'), `${body("await import('sifredb')")}`);
  assertWorked(t, run('app.mjs'));
  writeFileSync(
    join(project, 'same.mjs'),
    "import { createRequire } from 'node:module'; import * as esm from 'sifredb';\n" +
      "const cjs = createRequire(import.meta.url)('sifredb'); console.log(JSON.stringify(cjs.Vault === esm.Vault && cjs.SifreDBError === esm.SifreDBError));",
  );
  const same = spawnSync(process.execPath, ['same.mjs'], { cwd: project, encoding: 'utf8' });
  t.is(same.stdout.trim(), 'true', same.stderr);
});

for (const [name, options] of [
  ['module: commonjs (node10 resolution, NestJS default)', { module: 'commonjs' }],
  // TypeScript's node16 mode predates require(esm): it needs skipLibCheck (most templates set it).
  ['module: node16 (with skipLibCheck)', { module: 'node16', skipLibCheck: true }],
  ['module: nodenext', { module: 'nodenext' }],
]) {
  test(`a TypeScript project compiled with ${name} runs`, (t) => {
    const dir = join(project, `ts-${options.module}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ts-app', private: true, type: 'commonjs' }));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { ...options, target: 'es2022', strict: true, outDir: 'out', esModuleInterop: true, types: ['node'], typeRoots: [join(project, 'node_modules/@types')] }, files: ['app.ts'] }),
    );
    writeFileSync(
      join(dir, 'app.ts'),
      "import { Vault, StaticKeyProvider, EncryptionContext, SifreDBError, backend, type DecryptedValue } from 'sifredb';\n" +
        'async function main(): Promise<void> {\n' +
        '  const vault = await Vault.open(StaticKeyProvider.generate());\n' +
        "  const ctx = EncryptionContext.of('users', 'email');\n" +
        "  const value: DecryptedValue = vault.decrypt(vault.encrypt('x', ctx), ctx);\n" +
        "  let code = '';\n" +
        "  try { vault.decrypt('sdb1:AAAA', ctx); } catch (error) { if (error instanceof SifreDBError) code = error.code; }\n" +
        '  console.log(JSON.stringify({ backend, value, code }));\n' +
        '}\n' +
        'void main();\n',
    );
    const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
    t.is(tsc.status, 0, tsc.stdout + tsc.stderr);
    t.regex(readFileSync(join(dir, 'out/app.js'), 'utf8'), /require\("sifredb"\)/);
    const report = run(join(dir, 'out/app.js'));
    t.deepEqual(report, { backend: expected, value: 'x', code: 'ERR_SIFREDB_FORMAT' });
  });
}

for (const format of ['cjs', 'esm']) {
  test(`an esbuild ${format} bundle with sifredb external loads the backend the package chooses`, (t) => {
    writeFileSync(join(project, `external-${format}.js`), body(format === 'cjs' ? "require('sifredb')" : "await import('sifredb')"));
    const out = join(project, `dist-external-${format}/bundle.${format === 'cjs' ? 'cjs' : 'mjs'}`);
    esbuild(`external-${format}.js`, out, [`--format=${format}`, '--external:sifredb']);
    t.notRegex(readFileSync(out, 'utf8'), /has not granted --allow-ffi/, 'sifredb must not be in the bundle');
    assertWorked(t, run(out));
  });

  test.serial(`an esbuild ${format} bundle with sifredb bundled in finds the addon beside it, or says why not`, (t) => {
    writeFileSync(join(project, `bundled-${format}.js`), body(format === 'cjs' ? "require('sifredb')" : "await import('sifredb')"));
    const dir = join(project, `dist-bundled-${format}`);
    const out = join(dir, `bundle.${format === 'cjs' ? 'cjs' : 'mjs'}`);
    esbuild(`bundled-${format}.js`, out, [`--format=${format}`]);
    t.regex(readFileSync(out, 'utf8'), /has not granted --allow-ffi/, 'sifredb must be in the bundle');
    // Deployed without node_modules: the addon is not found, the pure-JS backend takes over and says why.
    rmSync(join(project, 'node_modules/sifredb'));
    try {
      const alone = run(out, { SIFREDB_BACKEND: '' });
      assertWorked(t, alone, 'js');
      t.is(alone.backendError.code, 'ERR_SIFREDB_BACKEND');
      t.regex(alone.backendError.message, /no native addon for linux-\w+-gnu .*was found.*mark "sifredb" as external.*next to the bundle/s);
      if (forced === 'native') {
        const refused = spawnSync(process.execPath, [out], { cwd: project, encoding: 'utf8' });
        t.not(refused.status, 0);
        t.regex(refused.stderr, /SIFREDB_BACKEND=native but the native addon could not be loaded: no native addon/);
      }
      // A file that is there but is no addon: the fallback says it did not load, and why.
      writeFileSync(join(dir, addonFile), 'not an ELF file');
      const broken = run(out, { SIFREDB_BACKEND: '' });
      assertWorked(t, broken, 'js');
      t.regex(broken.backendError.message, new RegExp(`the native addon .*${addonFile.replaceAll('.', '\\.')} did not load: .*(invalid ELF header|file too short)`));
      // The documented fix: copy the platform's .node file next to the bundle.
      copyFileSync(join(root, addonFile), join(dir, addonFile));
      assertWorked(t, run(out));
    } finally {
      symlinkSync(root, join(project, 'node_modules/sifredb'), 'dir');
    }
  });
}
