#!/usr/bin/env node
// `npm run build:native`: builds the native addon for every Linux target SifreDB ships prebuilt,
// from this one x86_64 Linux machine, with zig as the linker (napi build --cross-compile runs
// cargo-zigbuild):
//
//   x86_64-unknown-linux-gnu.2.17   -> sifredb.linux-x64-gnu.node (repo root, loaded by the tests)
//                                      and npm/linux-x64-gnu/
//   aarch64-unknown-linux-gnu.2.17  -> npm/linux-arm64-gnu/
//   x86_64-unknown-linux-musl       -> npm/linux-x64-musl/
//   aarch64-unknown-linux-musl      -> npm/linux-arm64-musl/
//
// The `.2.17` suffix makes zig link against glibc 2.17's symbol versions, so the gnu binaries load
// on any glibc >= 2.17 (CentOS 7, Amazon Linux 2, Debian 8 and later). Musl binaries are dynamic
// libraries that need the system's libc.musl (Rust's musl default, a static CRT, cannot make a
// cdylib): `-C target-feature=-crt-static`.
//
// Tools are installed idempotently into .tools/ (ignored by git) from the project's own pins:
// the rustup targets, zig from PyPI's `ziglang` wheel, and cargo-zigbuild from crates.io.
//
// Usage: node scripts/build-native.js [--host-only] [--target <triple>]...
//   --host-only   only the x86_64 glibc binary (what the tests on this machine load)
//   SIFREDB_NATIVE_TARGETS="triple,triple" does the same as --target.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

const ZIGLANG_VERSION = '0.15.2';
const CARGO_ZIGBUILD_VERSION = '0.24.1';

const TARGETS = [
  // The first one is the host's: it also writes index.d.ts and the root copy.
  { triple: 'x86_64-unknown-linux-gnu.2.17', platform: 'linux-x64-gnu', host: true },
  { triple: 'aarch64-unknown-linux-gnu.2.17', platform: 'linux-arm64-gnu' },
  { triple: 'x86_64-unknown-linux-musl', platform: 'linux-x64-musl' },
  { triple: 'aarch64-unknown-linux-musl', platform: 'linux-arm64-musl' },
];

const SCRATCH_DTS = 'scratch-types.d.ts';
const root = resolve(import.meta.dirname, '..');
const tools = join(root, '.tools');
const toolsBin = join(tools, 'bin');
const log = (msg) => console.log(`build-native: ${msg}`);

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
}
const capture = (cmd, args, options = {}) => {
  try {
    return execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], ...options }).trim();
  } catch {
    return null;
  }
};

/** rustup targets, zig and cargo-zigbuild: each checked first, installed only when missing. */
function ensureTools(triples) {
  mkdirSync(toolsBin, { recursive: true });
  const env = toolEnv();

  const wanted = [...new Set(triples.map((t) => t.split('.')[0]))];
  const installed = new Set((capture('rustup', ['target', 'list', '--installed']) ?? '').split('\n'));
  const missing = wanted.filter((t) => !installed.has(t));
  if (missing.length) {
    log(`rustup target add ${missing.join(' ')}`);
    run('rustup', ['target', 'add', ...missing]);
  }

  // zig: the `ziglang` wheel ships a self-contained zig; a wrapper in .tools/bin puts it on PATH.
  const zigPython = join(tools, 'python');
  const zigExe = join(zigPython, 'ziglang', 'zig');
  if (capture(zigExe, ['version']) !== ZIGLANG_VERSION) {
    log(`installing zig ${ZIGLANG_VERSION} (PyPI ziglang) into .tools/python`);
    rmSync(zigPython, { recursive: true, force: true });
    const python = process.env.SIFREDB_PYTHON ?? 'python3';
    // --target installs into a plain folder: no virtualenv, and PEP 668's externally-managed marker
    // of a distribution Python does not apply to it.
    run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location',
      '--target', zigPython, `ziglang==${ZIGLANG_VERSION}`]);
  }
  const zigWrapper = join(toolsBin, 'zig');
  writeFileSync(zigWrapper, `#!/bin/sh\nexec "${zigExe}" "$@"\n`);
  chmodSync(zigWrapper, 0o755);

  // cargo-zigbuild, pinned and --locked, into .tools (napi's own fallback would `cargo install` the
  // newest one unlocked into ~/.cargo).
  const zigbuildVersion = capture(join(toolsBin, 'cargo-zigbuild'), ['--version'], { env });
  if (!zigbuildVersion?.endsWith(CARGO_ZIGBUILD_VERSION)) {
    log(`installing cargo-zigbuild ${CARGO_ZIGBUILD_VERSION} (crates.io) into .tools`);
    run('nice', ['cargo', 'install', '--locked', '--quiet', '--root', tools, `cargo-zigbuild@${CARGO_ZIGBUILD_VERSION}`], { env });
  }
  return env;
}

function toolEnv() {
  return { ...process.env, PATH: `${toolsBin}${delimiter}${process.env.PATH}` };
}

function buildOne(target, env) {
  // --no-js: lib/backend/addon-loader.ts loads the binary itself; napi's generated loader is not used.
  const args = ['napi', 'build', '--platform', '--release', '--no-js', '--cross-compile', '--target', target.triple];
  const buildEnv = { ...env };
  if (target.triple.includes('musl')) {
    // Environment RUSTFLAGS replace .cargo/config.toml's [build] rustflags, and napi sets RUSTFLAGS
    // for musl targets (-crt-static), so the config's flags are repeated here to keep them.
    buildEnv.RUSTFLAGS = [process.env.RUSTFLAGS ?? '', '--cfg poly1305_backend="soft"', '-C target-feature=-crt-static']
      .join(' ')
      .trim();
  }
  const outDir = join(root, 'npm', target.platform);
  if (!target.host) {
    // Only the host build regenerates the addon's types (index.d.ts): the others write their binary
    // straight into their npm package folder, and the type file napi writes beside it is thrown away.
    args.push('--output-dir', outDir, '--dts', SCRATCH_DTS);
  }
  const started = Date.now();
  log(`napi ${args.slice(1).join(' ')}`);
  run('nice', ['npx', ...args], { env: buildEnv });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  rmSync(join(outDir, SCRATCH_DTS), { force: true });
  const binary = `sifredb.${target.platform}.node`;
  if (target.host) {
    mkdirSync(outDir, { recursive: true });
    copyFileSync(join(root, binary), join(outDir, binary));
  }
  const built = join(outDir, binary);
  if (!existsSync(built)) throw new Error(`${built} was not produced`);
  log(`${target.triple}: ${binary} ${statSync(built).size} bytes in ${seconds} s`);
  return { triple: target.triple, seconds: Number(seconds), bytes: statSync(built).size };
}

function main() {
  const argv = process.argv.slice(2);
  let chosen = TARGETS;
  const named = [...(process.env.SIFREDB_NATIVE_TARGETS?.split(',').filter(Boolean) ?? [])];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--host-only') chosen = TARGETS.filter((t) => t.host);
    else if (argv[i] === '--target') named.push(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (named.length) {
    chosen = named.map((n) => {
      const t = TARGETS.find((x) => x.triple === n || x.triple.split('.')[0] === n || x.platform === n);
      if (!t) throw new Error(`unknown target ${n}; known: ${TARGETS.map((x) => x.triple).join(', ')}`);
      return t;
    });
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    // The release workflow builds macOS and Windows on their own runners; this script is for the
    // x86_64 Linux machine that builds every Linux binary.
    throw new Error(`scripts/build-native.js builds from x86_64 Linux only (this is ${process.platform}-${process.arch}); use \`napi build --platform --release --esm\``);
  }
  const env = ensureTools(chosen.map((t) => t.triple));
  const results = chosen.map((t) => buildOne(t, env));
  for (const r of results) log(`${r.triple.padEnd(32)} ${String(r.seconds).padStart(6)} s ${r.bytes} bytes`);
}

try {
  main();
} catch (error) {
  console.error(`build-native: ${error.message}`);
  process.exit(1);
}
