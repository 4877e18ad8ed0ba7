// The ceiling of `npm run bench`: the Rust core's own criterion benchmarks
// (crates/sifredb-core/benches/primitives.rs, same sizes), so the report can show how much of the
// core's speed survives the trip through N-API.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Runs `cargo bench` and returns `{ benches: { 'group/id': { ns, elements?, bytes? } } }`, or `{ skipped }`. */
export function runCeiling(root, log) {
  const meta = spawnSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: root, encoding: 'utf8' });
  if (meta.error || meta.status !== 0) return { skipped: 'cargo is not available' };
  const criterionDir = path.join(JSON.parse(meta.stdout).target_directory, 'criterion');
  const started = Date.now();
  const run = spawnSync('cargo', ['bench', '-p', 'sifredb-core', '--bench', 'primitives'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status !== 0) {
    return { skipped: `cargo bench failed: ${(run.stderr ?? '').trim().split('\n').slice(-3).join(' ')}` };
  }
  const benches = {};
  for (const group of fs.existsSync(criterionDir) ? fs.readdirSync(criterionDir) : []) {
    const groupDir = path.join(criterionDir, group);
    if (!fs.statSync(groupDir).isDirectory() || group === 'report') continue;
    for (const id of fs.readdirSync(groupDir)) {
      const estimates = path.join(groupDir, id, 'new', 'estimates.json');
      if (!fs.existsSync(estimates) || fs.statSync(estimates).mtimeMs < started) continue;
      const { median } = JSON.parse(fs.readFileSync(estimates, 'utf8'));
      const info = path.join(groupDir, id, 'new', 'benchmark.json');
      const throughput = fs.existsSync(info) ? JSON.parse(fs.readFileSync(info, 'utf8')).throughput : undefined;
      benches[`${group}/${id}`] = {
        ns: median.point_estimate,
        elements: throughput?.Elements,
        bytes: throughput?.Bytes,
      };
      log(`  ${`${group}/${id}`.padEnd(36)} ${median.point_estimate.toFixed(1)} ns`);
    }
  }
  return { benches, seconds: Math.round((Date.now() - started) / 1000) };
}
