#!/usr/bin/env node
// `npm run bench`: SifreDB against what users would pick instead, in one run on this machine.
//
//   node benchmark/run.js [--quick] [--time=MS] [--memory=N] [--batch=N] [--no-cargo] [--no-write]
//
// --quick shortens every phase (about a minute in all; results still written unless --no-write),
// --time sets the measuring time per tinybench task, --memory the values of the RSS loop (default
// 10,000,000), --batch the values of the batch scenario (default 100,000), --no-cargo skips the Rust
// ceiling. Writes benchmark/results/latest.json, latest.svg and BENCHMARKS.md.
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { renderAudit, runAuditScenario } from './audit.js';
import { runCeiling } from './ceiling.js';
import { renderIntegrations, runIntegrationScenario } from './integrations.js';
import { ROWS, bytesOf, makeSubjects, textOf } from './subjects.js';
import { evaluateTargets, renderMarkdown, renderSvg, renderText } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const flags = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [k, v] = arg.replace(/^--/, '').split('=');
    return [k, v ?? true];
  }),
);
const quick = Boolean(flags.quick);
const TASK_MS = Number(flags.time ?? (quick ? 40 : 250));
const MEMORY_VALUES = Number(flags.memory ?? (quick ? 1_000_000 : 10_000_000));
const BATCH_VALUES = Number(flags.batch ?? 100_000);
const BATCH_RUNS = quick ? 2 : 7;
const SIZES = [32, 256, 4096, 65536];

const log = (...args) => console.error(...args);

/** Calls per measured sample so that one sample takes about 50 µs (timer noise stays negligible). */
async function calibrate(fn, isAsync) {
  const once = async () => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 3; i++) {
      if (isAsync) await fn();
      else fn();
    }
    return Number(process.hrtime.bigint() - t) / 3;
  };
  await once();
  const ns = Math.min(await once(), await once());
  return Math.max(1, Math.min(5000, Math.round(50_000 / Math.max(ns, 1))));
}

/**
 * Measures `fn` (one call = `perCall` values) with tinybench; returns nanoseconds per value (median
 * of the samples, robust on a shared machine).
 */
async function measure(name, fn, { perCall = 1, isAsync = false } = {}) {
  const reps = await calibrate(fn, isAsync);
  const bench = new Bench({ time: TASK_MS, warmupTime: Math.round(TASK_MS / 4), iterations: 5, warmupIterations: 2 });
  if (isAsync) {
    bench.add(name, async () => {
      for (let i = 0; i < reps; i++) await fn();
    });
  } else {
    bench.add(name, () => {
      for (let i = 0; i < reps; i++) fn();
    });
  }
  await bench.run();
  const result = bench.tasks[0].result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.error?.message ?? result.state}`);
  return (result.latency.p50 * 1e6) / (reps * perCall);
}

/** Values per call of a batch row of the single-value table. */
const batchCount = (size) => (size <= 256 ? 1000 : size <= 4096 ? 100 : 10);

async function singleValueTable(s) {
  const { ctx, sifredb, node, noble, cloak } = s;
  const results = [];
  const [rawKey, rawNonce, aad] = [bytesOf(32), bytesOf(12), Buffer.alloc(0)];
  const add = async (op, size, row, fn, options) => {
    const ns = await measure(`${op} ${row} ${size}`, fn, options);
    results.push({ op, size, row, ns });
    log(`  ${op.padEnd(12)} ${String(size).padStart(6)} B  ${row.padEnd(22)} ${formatNs(ns)}`);
  };
  for (const size of SIZES) {
    const value = bytesOf(size);
    const text = textOf(size);
    const many = Array.from({ length: batchCount(size) }, () => bytesOf(size));
    const manyText = Array.from({ length: batchCount(size) }, () => textOf(size));
    const { native: n, js: j } = sifredb;

    // Randomized encryption (ChaCha20-Poly1305, fresh random nonce, header and context bound).
    await add('encrypt', size, ROWS.native, () => n.vault.encrypt(value, ctx));
    await add('encrypt', size, ROWS.nativeBatch, () => n.vault.encryptMany(many, ctx), { perCall: many.length });
    await add('encrypt', size, ROWS.js, () => j.vault.encrypt(value, ctx));
    await add('encrypt', size, ROWS.node, () => node.encrypt(value));
    await add('encrypt', size, ROWS.noble, () => noble.encrypt(value));

    // The raw primitive (`primitives.chacha20Poly1305Encrypt`): one fixed key and nonce, no format.
    await add('primitive', size, ROWS.native, () => n.backend.primitives.chacha20Poly1305Encrypt(rawKey, rawNonce, value, aad));
    await add('primitive', size, ROWS.js, () => j.backend.primitives.chacha20Poly1305Encrypt(rawKey, rawNonce, value, aad));
    await add('primitive', size, ROWS.node, () => {
      const cipher = createCipheriv('chacha20-poly1305', rawKey, rawNonce, { authTagLength: 16 });
      cipher.setAAD(aad);
      const body = cipher.update(value);
      cipher.final();
      return [body, cipher.getAuthTag()];
    });
    await add('primitive', size, ROWS.noble, () => chacha20poly1305(rawKey, rawNonce, aad).encrypt(value));

    const sealed = n.vault.encrypt(value, ctx);
    const sealedMany = n.vault.encryptMany(many, ctx);
    const nodeSealed = node.encrypt(value);
    const nobleSealed = noble.encrypt(value);
    await add('decrypt', size, ROWS.native, () => n.vault.decryptBytes(sealed, ctx));
    await add('decrypt', size, ROWS.nativeBatch, () => n.vault.decryptManyBytes(sealedMany, ctx), { perCall: many.length });
    await add('decrypt', size, ROWS.js, () => j.vault.decryptBytes(sealed, ctx));
    await add('decrypt', size, ROWS.node, () => node.decrypt(nodeSealed));
    await add('decrypt', size, ROWS.noble, () => noble.decrypt(nobleSealed));

    // Deterministic encryption (AES-256-SIV).
    await add('siv-encrypt', size, ROWS.native, () => n.dvault.encrypt(value, ctx));
    await add('siv-encrypt', size, ROWS.nativeBatch, () => n.dvault.encryptMany(many, ctx), { perCall: many.length });
    await add('siv-encrypt', size, ROWS.js, () => j.dvault.encrypt(value, ctx));
    await add('siv-encrypt', size, ROWS.noble, () => noble.sivEncrypt(value));
    await add('siv-encrypt', size, ROWS.miscreant, () => s.miscreant.sivEncrypt(value), { isAsync: true });

    // Blind index of a text value (truncated HMAC-SHA256; SifreDB returns a term object).
    await add('blind-index', size, ROWS.native, () => n.index.compute(text, ctx));
    await add('blind-index', size, ROWS.nativeBatch, () => n.index.computeMany(manyText, ctx), { perCall: manyText.length });
    await add('blind-index', size, ROWS.js, () => j.index.compute(text, ctx));
    await add('blind-index', size, ROWS.node, () => node.mac(text));
    await add('blind-index', size, ROWS.noble, () => noble.mac(value));
    await add('blind-index', size, ROWS.ciphersweet, () => s.ciphersweet.blindIndex(text), { isAsync: true });

    // Field encryption of a text value, as the field-encryption libraries do it.
    await add('field', size, ROWS.native, () => n.vault.encrypt(text, ctx));
    await add('field', size, ROWS.js, () => j.vault.encrypt(text, ctx));
    await add('field', size, ROWS.cloak, () => cloak.encrypt(text));
    await add('field', size, ROWS.ciphersweet, () => s.ciphersweet.encrypt(text), { isAsync: true });

    // A searchable field: encrypt plus one blind index.
    await add('field+index', size, ROWS.native, () => {
      n.vault.encrypt(text, ctx);
      return n.index.compute(text, ctx);
    });
    await add('field+index', size, ROWS.js, () => {
      j.vault.encrypt(text, ctx);
      return j.index.compute(text, ctx);
    });
    await add('field+index', size, ROWS.ciphersweet, () => s.ciphersweet.prepare(text), { isAsync: true });
  }

  // Cold key: deriving a per-context key (HKDF-SHA256), SifreDB including the cipher's key setup.
  const ctxBytes = ctx.bytes;
  await add('derive', 32, ROWS.native, () => sifredb.native.root.randomizedCipher(1, ctxBytes));
  await add('derive', 32, ROWS.js, () => sifredb.js.root.randomizedCipher(1, ctxBytes));
  await add('derive', 32, ROWS.node, () => node.derive());
  await add('derive', 32, ROWS.noble, () => noble.derive());
  return results;
}

/** Best wall time of `runs` runs of `fn`, in seconds. */
async function bestOf(runs, fn) {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return best;
}

/** 100,000 values of 32 B encrypted, decrypted and re-encrypted: values/s per row. */
async function batchScenario(s) {
  const { ctx, sifredb, node, noble, cloak } = s;
  const N = BATCH_VALUES;
  const values = Array.from({ length: N }, () => bytesOf(32));
  const texts = Array.from({ length: N }, () => textOf(32));
  const rows = [];
  const record = async (row, count, fns, runs = BATCH_RUNS) => {
    const entry = { row, count };
    for (const [op, fn] of Object.entries(fns)) {
      const seconds = await bestOf(runs, fn);
      entry[op] = count / seconds;
    }
    rows.push(entry);
    log(
      `  ${row.padEnd(34)} encrypt ${fmtRate(entry.encrypt)}  decrypt ${fmtRate(entry.decrypt)}  re-encrypt ${fmtRate(entry.reencrypt)}`,
    );
  };
  const { native: n, js: j } = sifredb;

  let sealed = n.vault.encryptMany(values, ctx);
  await record('SifreDB native batch', N, {
    encrypt: () => n.vault.encryptMany(values, ctx),
    decrypt: () => n.vault.decryptManyBytes(sealed, ctx),
    reencrypt: () => n.vault.reencryptMany(sealed, ctx),
  });
  // 1 and 2 threads measured in alternation, so that load from elsewhere hits both alike.
  const asyncRows = [1, 2].map((threads) => ({ row: `SifreDB native async, ${threads} thread${threads > 1 ? 's' : ''}`, count: N, threads }));
  const asyncOps = {
    encrypt: (threads) => n.vault.encryptManyAsync(values, ctx, { threads }),
    decrypt: (threads) => n.vault.decryptManyBytesAsync(sealed, ctx, { threads }),
    reencrypt: (threads) => n.vault.reencryptManyAsync(sealed, ctx, { threads }),
  };
  for (const [op, fn] of Object.entries(asyncOps)) {
    const best = [Infinity, Infinity];
    for (let r = 0; r < BATCH_RUNS + 2; r++) {
      for (const [k, entry] of asyncRows.entries()) best[k] = Math.min(best[k], await bestOf(1, () => fn(entry.threads)));
    }
    asyncRows.forEach((entry, k) => (entry[op] = N / best[k]));
  }
  for (const { threads, ...entry } of asyncRows) {
    rows.push(entry);
    log(`  ${entry.row.padEnd(34)} encrypt ${fmtRate(entry.encrypt)}  decrypt ${fmtRate(entry.decrypt)}  re-encrypt ${fmtRate(entry.reencrypt)}`);
  }
  await record('SifreDB native single calls', N, {
    encrypt: () => {
      for (let i = 0; i < N; i++) n.vault.encrypt(values[i], ctx);
    },
    decrypt: () => {
      for (let i = 0; i < N; i++) n.vault.decryptBytes(sealed[i], ctx);
    },
    reencrypt: () => {
      for (let i = 0; i < N; i++) n.vault.reencrypt(sealed[i], ctx);
    },
  });
  const slow = Math.min(N, quick ? 10_000 : 50_000);
  const jsValues = values.slice(0, slow);
  const jsSealed = sealed.slice(0, slow);
  await record(
    'SifreDB pure-JS batch',
    slow,
    {
      encrypt: () => j.vault.encryptMany(jsValues, ctx),
      decrypt: () => j.vault.decryptManyBytes(jsSealed, ctx),
      reencrypt: () => j.vault.reencryptMany(jsSealed, ctx),
    },
    Math.min(BATCH_RUNS, 3),
  );
  sealed = undefined;

  const nodeSealed = values.map((v) => node.encrypt(v));
  await record('node:crypto loop', N, {
    encrypt: () => {
      for (let i = 0; i < N; i++) node.encrypt(values[i]);
    },
    decrypt: () => {
      for (let i = 0; i < N; i++) node.decrypt(nodeSealed[i]);
    },
    reencrypt: () => {
      for (let i = 0; i < N; i++) node.encrypt(node.decrypt(nodeSealed[i]));
    },
  }, Math.min(BATCH_RUNS, 3));
  const nobleSealed = jsValues.map((v) => noble.encrypt(v));
  await record('@noble loop', slow, {
    encrypt: () => {
      for (let i = 0; i < slow; i++) noble.encrypt(jsValues[i]);
    },
    decrypt: () => {
      for (let i = 0; i < slow; i++) noble.decrypt(nobleSealed[i]);
    },
    reencrypt: () => {
      for (let i = 0; i < slow; i++) noble.encrypt(noble.decrypt(nobleSealed[i]));
    },
  }, Math.min(BATCH_RUNS, 3));
  const cloakTexts = texts.slice(0, slow);
  const cloaked = cloakTexts.map((t) => cloak.encrypt(t));
  await record('@47ng/cloak loop', slow, {
    encrypt: () => {
      for (let i = 0; i < slow; i++) cloak.encrypt(cloakTexts[i]);
    },
    decrypt: () => {
      for (let i = 0; i < slow; i++) cloak.decrypt(cloaked[i]);
    },
    reencrypt: () => {
      for (let i = 0; i < slow; i++) cloak.encrypt(cloak.decrypt(cloaked[i]));
    },
  }, Math.min(BATCH_RUNS, 3));
  const csCount = quick ? 1000 : 5000;
  const csTexts = texts.slice(0, csCount);
  const csSealed = [];
  for (const t of csTexts) csSealed.push(await s.ciphersweet.encrypt(t));
  await record('ciphersweet-js loop', csCount, {
    encrypt: async () => {
      for (let i = 0; i < csCount; i++) await s.ciphersweet.encrypt(csTexts[i]);
    },
    decrypt: async () => {
      for (let i = 0; i < csCount; i++) await s.ciphersweet.decrypt(csSealed[i]);
    },
    reencrypt: async () => {
      for (let i = 0; i < csCount; i++) await s.ciphersweet.encrypt(await s.ciphersweet.decrypt(csSealed[i]));
    },
  }, 1);
  return rows;
}

/** encrypt+decrypt in a loop in a child process (for --expose-gc); RSS before and after. */
function memoryLoop() {
  const child = spawnSync(process.execPath, ['--expose-gc', path.join(here, 'memory.js'), String(MEMORY_VALUES)], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, SIFREDB_BACKEND: 'native' },
    maxBuffer: 16 * 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`memory loop failed: ${child.stderr}`);
  return JSON.parse(child.stdout);
}

function environment() {
  const cpus = os.cpus();
  const pkg = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return undefined;
    }
  };
  return {
    date: new Date().toISOString(),
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    openssl: process.versions.openssl,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    loadBefore: os.loadavg()[0].toFixed(2),
    quick,
    taskMs: TASK_MS,
    versions: {
      '@noble/ciphers': pkg('@noble/ciphers'),
      '@noble/hashes': pkg('@noble/hashes'),
      miscreant: pkg('miscreant'),
      'ciphersweet-js': pkg('ciphersweet-js'),
      '@47ng/cloak': pkg('@47ng/cloak'),
      tinybench: pkg('tinybench'),
    },
  };
}

const formatNs = (ns) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const fmtRate = (r) => (r === undefined ? '—' : `${(r / 1e6).toFixed(3)} M/s`);

async function main() {
  const started = Date.now();
  const env = environment();
  log(`SifreDB benchmark — ${env.cpu}, ${env.cores} cores, Node ${env.node}${quick ? ' (quick)' : ''}`);

  let ceiling = { skipped: 'not run' };
  if (!flags['no-cargo']) {
    log('\n[1/6] Rust core ceiling: cargo bench -p sifredb-core --bench primitives');
    ceiling = runCeiling(root, log);
  }

  log('\n[2/6] single values (time per value)');
  const subjects = await makeSubjects();
  const single = await singleValueTable(subjects);

  log(`\n[3/6] batch scenario: ${BATCH_VALUES.toLocaleString('en')} values of 32 B`);
  const batch = await batchScenario(subjects);

  log(`\n[4/6] memory: encrypt+decrypt ${MEMORY_VALUES.toLocaleString('en')} values`);
  const memory = memoryLoop();
  log(`  RSS ${memory.rssBeforeMiB} MiB before, ${memory.rssAfterMiB} MiB after (peak ${memory.rssPeakMiB} MiB)`);

  log(`\n[5/6] ORM integrations on PGlite: insert and select ${quick ? '2,000' : '10,000'} rows, encrypted vs plaintext`);
  const integrations = await runIntegrationScenario({ rows: quick ? 2_000 : 10_000, runs: quick ? 1 : 5, log });

  log('\n[6/6] audit signatures: Ed25519, signed writes against unsigned ones, the verify rate (both backends)');
  const audit = await runAuditScenario({ quick });

  env.loadAfter = os.loadavg()[0].toFixed(2);
  if (Number(env.loadBefore) > 1.5) log(`note: load average ${env.loadBefore} at the start: other work is competing for the CPUs`);
  const results = { environment: env, single, batch, ceiling, memory, integrations, audit, seconds: Math.round((Date.now() - started) / 1000) };
  results.targets = evaluateTargets(results);
  console.log(renderText(results));
  console.log(renderIntegrations(integrations));
  console.log(renderAudit(audit));
  if (!flags['no-write']) {
    const dir = path.join(here, 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
    fs.writeFileSync(path.join(dir, 'latest.svg'), renderSvg(results));
    fs.writeFileSync(path.join(root, 'BENCHMARKS.md'), `${renderMarkdown(results).trimEnd()}\n\n${renderIntegrations(integrations).trimEnd()}\n\n${renderAudit(audit)}`);
    log(`\nwrote benchmark/results/latest.json, benchmark/results/latest.svg, BENCHMARKS.md (${results.seconds} s)`);
  }
}

await main();
