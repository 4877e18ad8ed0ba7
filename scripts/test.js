#!/usr/bin/env node
// `npm test`: checks that package-lock.json matches package.json, installs what the suites need
// besides npm packages (idempotent), runs the Rust workspace's tests, then the ava suite once per
// backend, then the compile-time checks of the public types (__test__/types), the packed tarball, and
// part of the suite under each Node version the package claims (scripts/node-matrix.js). Prints one
// summary line per stage and a final "N passed, N failed" line.
import { spawnSync } from 'node:child_process';

const stages = [
  { name: 'lockfile', command: 'node', args: ['scripts/lockfile-check.js'], env: {} },
  { name: 'test services (moto, PostgreSQL, Chromium)', command: 'bash', args: ['scripts/setup-test-services.sh'], env: {} },
  { name: 'cargo', command: 'cargo', args: ['test', '--workspace', '--release'], env: {} },
  // Every prebuilt Linux binary (x86_64/aarch64, glibc 2.17 floor and musl) for
  // __test__/prebuilt-binaries.spec.js; the x86_64 glibc one is already there from `npm ci` (prepare).
  { name: 'native binaries (every Linux target)', command: 'node', args: ['scripts/build-native.js'], env: {} },
  { name: 'ava (native backend)', command: 'npx', args: ['ava'], env: { SIFREDB_BACKEND: 'native' } },
  { name: 'ava (js backend)', command: 'npx', args: ['ava'], env: { SIFREDB_BACKEND: 'js' } },
  { name: 'public types', command: 'npx', args: ['tsc', '-p', '__test__/types'], env: {} },
  // drizzle-orm's own declarations need skipLibCheck, so its type tests are a project of their own.
  { name: 'public types (drizzle)', command: 'npx', args: ['tsc', '-p', '__test__/types/drizzle'], env: {} },
  { name: 'npm pack', command: 'node', args: ['scripts/pack-check.js'], env: {} },
  // The oldest Node the package claims and the newest of each later even major (scripts/node-versions).
  { name: 'node versions', command: 'node', args: ['scripts/node-matrix.js'], env: {} },
];

let passed = 0;
let failed = 0;
const summary = [];
for (const stage of stages) {
  console.log(`\n=== ${stage.name} ===`);
  const result = spawnSync(stage.command, stage.args, {
    env: { ...process.env, ...stage.env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  process.stdout.write(result.stdout ?? '');
  process.stderr.write(result.stderr ?? '');
  const output = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
  const counts = countTests(stage.name, output);
  passed += counts.passed;
  failed += counts.failed;
  const ok = result.status === 0;
  if (!ok && counts.failed === 0) failed += 1; // a crash or a failed build counts as a failure
  summary.push(`${ok ? 'ok  ' : 'FAIL'} ${stage.name}: ${counts.passed} passed, ${counts.failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ''}`);
}

console.log('\n=== summary ===');
for (const line of summary) console.log(line);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

function countTests(name, output) {
  if (name.startsWith('test services') || name.startsWith('native binaries')) return { passed: 0, failed: 0, skipped: 0 };
  // tsc prints nothing on success and one line per error.
  if (name.startsWith('public types')) return { passed: 0, failed: (output.match(/error TS\d+/g) ?? []).length, skipped: 0 };
  if (name === 'cargo') {
    let p = 0;
    let f = 0;
    let s = 0;
    for (const m of output.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
      p += Number(m[1]);
      f += Number(m[2]);
      s += Number(m[3]);
    }
    return { passed: p, failed: f, skipped: s };
  }
  const num = (re) => Number(output.match(re)?.[1] ?? 0);
  const checkScripts = { 'npm pack': 'pack-check', lockfile: 'lockfile-check', 'node versions': 'node-matrix' };
  if (checkScripts[name]) {
    const tag = checkScripts[name];
    return { passed: num(new RegExp(`${tag}: (\\d+) passed`)), failed: num(new RegExp(`${tag}: \\d+ passed, (\\d+) failed`)), skipped: 0 };
  }
  // ava prints "N tests passed" only when nothing failed, so count its per-test marks as well.
  const marks = (re) => output.split('\n').filter((line) => re.test(line)).length;
  return {
    passed: Math.max(num(/(\d+) tests? passed/), marks(/^\s*✔/)),
    failed: Math.max(num(/(\d+) tests? failed/), marks(/^\s*✘/)) + num(/(\d+) uncaught exceptions?/) + num(/(\d+) unhandled rejections?/),
    skipped: num(/(\d+) tests? skipped/),
  };
}
