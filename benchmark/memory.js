// Memory check of `npm run bench` (run by run.js with --expose-gc): encrypts and decrypts N values
// of 32 B in a loop through the public API and prints the RSS before, during and after as JSON. A
// leak of even a few bytes per value shows as hundreds of MiB at 10 million values.
import { randomBytes } from 'node:crypto';
import { EncryptionContext, StaticKeyProvider, Vault, getBackend } from '../dist/index.js';

const count = Number(process.argv[2] ?? 10_000_000);
const gc = globalThis.gc ?? (() => {});
const mib = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;

const vault = await Vault.open(StaticKeyProvider.generate());
const ctx = EncryptionContext.of('users', 'email');
const values = Array.from({ length: 1024 }, () => randomBytes(32));
const loop = (n) => {
  for (let i = 0; i < n; i++) {
    const sealed = vault.encrypt(values[i & 1023], ctx);
    vault.decryptBytes(sealed, ctx);
  }
};

loop(200_000); // warm-up: JIT, pools, handle caches
gc();
const before = process.memoryUsage();
const samples = [];
let peak = before.rss;
const step = Math.max(1, Math.floor(count / 20));
const started = process.hrtime.bigint();
for (let done = 0; done < count; done += step) {
  loop(Math.min(step, count - done));
  const rss = process.memoryUsage().rss;
  peak = Math.max(peak, rss);
  samples.push({ values: done + Math.min(step, count - done), rssMiB: mib(rss) });
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
gc();
const after = process.memoryUsage();
process.stdout.write(
  JSON.stringify({
    backend: getBackend().name,
    values: count,
    seconds: Math.round(seconds * 100) / 100,
    rssBeforeMiB: mib(before.rss),
    rssAfterMiB: mib(after.rss),
    rssPeakMiB: mib(peak),
    heapUsedBeforeMiB: mib(before.heapUsed),
    heapUsedAfterMiB: mib(after.heapUsed),
    externalBeforeMiB: mib(before.external),
    externalAfterMiB: mib(after.external),
    samples,
  }),
);
