#!/usr/bin/env node
// Packs SifreDB as it would be published (the main package plus the linux-x64-gnu platform package
// that napi-rs puts the binary in), installs both tarballs into an empty folder, and checks that
//   0. every Linux platform package (npm/linux-*) packs with its binary and the right os/cpu/libc,
//   1. the installed package loads the native backend, through `import` and through `require`,
//   2. the pure-JS fallback takes over, without crashing the import, when the platform package is gone,
//   3. the bundled CLI starts.
// Prints "pack-check: N passed, N failed".
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const platform = 'linux-x64-gnu';
const binary = `sifredb.${platform}.node`;
const work = mkdtempSync(join(tmpdir(), 'sifredb-pack-'));
const run = (cmd, args, cwd, env = {}) =>
  execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const results = [];
function check(name, fn) {
  try {
    fn();
    results.push([true, name]);
  } catch (error) {
    results.push([false, `${name}: ${error.stderr || error.message}`]);
  }
}

try {
  const platformDir = join(root, 'npm', platform);
  // scripts/build-native.js leaves the binary in npm/linux-x64-gnu/ as well; an older build only at
  // the root is copied in for packing and removed again.
  const copied = !existsSync(join(platformDir, binary));
  if (copied) copyFileSync(join(root, binary), join(platformDir, binary));
  const packEntry = (dir) => JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], dir))[0];
  const pack = (dir) => packEntry(dir).filename;
  const mainTgz = join(work, pack(root));
  const platformTgz = join(work, pack(platformDir));
  if (copied) rmSync(join(platformDir, binary));

  // Every Linux platform package: its tarball holds its binary, and its package.json lets npm
  // install it exactly where that binary runs.
  const mainPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const CPU = { x64: 'x64', arm64: 'arm64' };
  const LIBC = { gnu: 'glibc', musl: 'musl' };
  for (const name of readdirSync(join(root, 'npm')).filter((n) => n.startsWith('linux-')).sort()) {
    check(`npm/${name} packs its binary with os/cpu/libc for ${name}`, () => {
      const [, cpu, libc] = name.split('-');
      const file = `sifredb.${name}.node`;
      const pkg = JSON.parse(readFileSync(join(root, 'npm', name, 'package.json'), 'utf8'));
      const want = { name: `sifredb-${name}`, version: mainPkg.version, main: file, os: ['linux'], cpu: [CPU[cpu]], libc: [LIBC[libc]] };
      for (const [key, value] of Object.entries(want)) {
        if (JSON.stringify(pkg[key]) !== JSON.stringify(value)) throw new Error(`package.json ${key} is ${JSON.stringify(pkg[key])}, want ${JSON.stringify(value)}`);
      }
      if (!mainPkg.napi.targets.some((t) => t.includes(cpu === 'x64' ? 'x86_64' : 'aarch64') && t.endsWith(`linux-${libc}`))) throw new Error(`no napi.targets entry for ${name}`);
      if (!existsSync(join(root, 'npm', name, file))) throw new Error(`npm/${name}/${file} is missing: run \`npm run build:targets\``);
      const entry = packEntry(join(root, 'npm', name));
      const packed = entry.files.find((f) => f.path === file);
      if (!packed || packed.size < 100_000) throw new Error(`the tarball holds ${entry.files.map((f) => `${f.path} (${f.size} B)`).join(', ')}`);
      const header = readFileSync(join(root, 'npm', name, file)).subarray(0, 20);
      const machine = header.readUInt16LE(18);
      if (header.readUInt32BE(0) !== 0x7f454c46 || machine !== (cpu === 'x64' ? 62 : 183)) throw new Error(`${file} is not an ELF file for ${cpu} (e_machine ${machine})`);
    });
  }

  const app = join(work, 'app');
  run('mkdir', ['-p', app], work);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
  run('npm', ['install', '--no-audit', '--no-fund', mainTgz, platformTgz], app);

  const probe = `import * as s from 'sifredb'; console.log(JSON.stringify({ backend: s.backend, error: s.backendError?.message ?? null, hmac: s.primitives.hmacSha256(Buffer.from('k'), Buffer.from('m')).toString('hex') }));`;
  const expectedHmac = execFileSync('node', ['-e', "process.stdout.write(require('crypto').createHmac('sha256','k').update('m').digest('hex'))"], { encoding: 'utf8' });

  check('installed tarball loads the native backend', () => {
    const out = JSON.parse(run('node', ['--input-type=module', '-e', probe], app));
    if (out.backend !== 'native') throw new Error(`backend is ${out.backend}: ${out.error}`);
    if (out.hmac !== expectedHmac) throw new Error('wrong HMAC from the installed package');
  });

  check('require("sifredb") from a CommonJS file of the installed package', () => {
    writeFileSync(
      join(app, 'probe.cjs'),
      "const s = require('sifredb'); console.log(JSON.stringify({ backend: s.backend, error: s.backendError?.message ?? null, hmac: s.primitives.hmacSha256(Buffer.from('k'), Buffer.from('m')).toString('hex') }));",
    );
    const out = JSON.parse(run('node', ['probe.cjs'], app));
    if (out.backend !== 'native') throw new Error(`backend is ${out.backend}: ${out.error}`);
    if (out.hmac !== expectedHmac) throw new Error('wrong HMAC through require');
  });

  check('without the platform package the import falls back to pure JS', () => {
    rmSync(join(app, 'node_modules', `sifredb-${platform}`), { recursive: true, force: true });
    const out = JSON.parse(run('node', ['--input-type=module', '-e', probe], app));
    if (out.backend !== 'js') throw new Error(`backend is ${out.backend}`);
    if (!out.error) throw new Error('backendError does not say why native did not load');
    if (out.hmac !== expectedHmac) throw new Error('wrong HMAC from the pure-JS fallback');
  });

  check('the sifredb CLI starts from the installed package', () => {
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules', 'sifredb', 'package.json'), 'utf8'));
    if (!pkg.bin?.sifredb) throw new Error('no bin entry');
    run(join(app, 'node_modules', '.bin', 'sifredb'), ['--help'], app);
  });
} catch (error) {
  results.push([false, `packing or installing failed: ${error.stderr || error.message}`]);
} finally {
  rmSync(work, { recursive: true, force: true });
}

for (const [ok, name] of results) console.log(`${ok ? '✔' : '✘'} ${name}`);
const failed = results.filter(([ok]) => !ok).length;
console.log(`pack-check: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
