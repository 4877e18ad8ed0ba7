// Targets, tables and the chart of `npm run bench` (see run.js).
import { ROWS } from './subjects.js';

const OPS = {
  encrypt: 'Randomized encrypt (ChaCha20-Poly1305, fresh nonce)',
  decrypt: 'Randomized decrypt',
  primitive: 'Raw primitive: primitives.chacha20Poly1305Encrypt (fixed key and nonce, no format)',
  'siv-encrypt': 'Deterministic encrypt (AES-256-SIV)',
  'blind-index': 'Blind index (HMAC-SHA256 term of a text value)',
  field: 'Field encryption of a text value',
  'field+index': 'Searchable field: encrypt + one blind index',
  derive: 'Cold key: derive a per-context key (HKDF-SHA256)',
};
const SIZES = [32, 256, 4096, 65536];
const sizeName = (size) => (size >= 1024 ? `${size / 1024} KiB` : `${size} B`);

export const formatNs = (ns) =>
  ns === undefined ? '—' : ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(0)} ns`;
const formatRate = (rate) => (rate === undefined ? '—' : rate >= 1e6 ? `${(rate / 1e6).toFixed(2)} M/s` : `${(rate / 1e3).toFixed(1)} k/s`);
const formatMBps = (size, ns) => `${((size / ns) * 1e3).toFixed(0)} MB/s`;
const times = (x) => (x === undefined || !Number.isFinite(x) ? '—' : x >= 10 ? `${x.toFixed(0)}×` : `${x.toFixed(2)}×`);

function lookup(results) {
  const map = new Map(results.single.map((r) => [`${r.op}|${r.size}|${r.row}`, r.ns]));
  return (op, size, row) => map.get(`${op}|${size}|${row}`);
}

/** The issue's targets, each with the measured figure and PASS/FAIL. */
export function evaluateTargets(results) {
  const ns = lookup(results);
  const batch = Object.fromEntries(results.batch.map((r) => [r.row, r]));
  const core = results.ceiling.benches ?? {};
  const out = [];
  const target = (name, value, threshold, detail, unit = '×') => {
    out.push({ name, value, threshold, unit, pass: value !== undefined && Number.isFinite(value) && value >= threshold, detail });
  };
  const ratio = (op, size, peer, row = ROWS.native) => {
    const a = ns(op, size, peer);
    const b = ns(op, size, row);
    return a === undefined || b === undefined ? undefined : a / b;
  };
  const e32 = ns('encrypt', 32, ROWS.native);
  target('32 B vault.encrypt (single call) vs node:crypto', ratio('encrypt', 32, ROWS.node), 10, `${formatNs(e32)} vs ${formatNs(ns('encrypt', 32, ROWS.node))}`);
  target('32 B vault.encrypt (single call) vs @noble/ciphers', ratio('encrypt', 32, ROWS.noble), 10, `${formatNs(e32)} vs ${formatNs(ns('encrypt', 32, ROWS.noble))}`);
  target('32 B primitives.chacha20Poly1305Encrypt vs node:crypto', ratio('primitive', 32, ROWS.node), 8, `${formatNs(ns('primitive', 32, ROWS.native))} vs ${formatNs(ns('primitive', 32, ROWS.node))}`);
  const nb = batch['SifreDB native batch'];
  const nodeLoop = batch['node:crypto loop'];
  target('32 B encrypt, batch: values/s on one core', nb?.encrypt, 3e6, `${formatRate(nb?.encrypt)} (encryptMany of ${nb?.count?.toLocaleString('en')}, one thread)`, 'values/s');
  target('32 B encrypt, batch vs node:crypto loop', nb && nodeLoop ? nb.encrypt / nodeLoop.encrypt : undefined, 40, `${formatRate(nb?.encrypt)} vs ${formatRate(nodeLoop?.encrypt)}`);
  const s32 = ns('siv-encrypt', 32, ROWS.native);
  target('32 B AES-SIV encrypt vs @noble aessiv', ratio('siv-encrypt', 32, ROWS.noble), 20, `${formatNs(s32)} vs ${formatNs(ns('siv-encrypt', 32, ROWS.noble))}`);
  target('32 B AES-SIV encrypt vs miscreant', ratio('siv-encrypt', 32, ROWS.miscreant), 50, `${formatNs(s32)} vs ${formatNs(ns('siv-encrypt', 32, ROWS.miscreant))}`);
  target('32 B blind index vs node:crypto createHmac', ratio('blind-index', 32, ROWS.node), 5, `${formatNs(ns('blind-index', 32, ROWS.native))} vs ${formatNs(ns('blind-index', 32, ROWS.node))}`);
  const e64 = ns('encrypt', 65536, ROWS.native);
  const c64 = core['randomized_encrypt/65536']?.ns;
  target('64 KiB encrypt: share of the Rust core (cargo bench)', c64 && e64 ? c64 / e64 : undefined, 0.8, `${formatNs(e64)} vs core ${formatNs(c64)}`, 'share');
  target('64 KiB encrypt vs node:crypto (OpenSSL)', ratio('encrypt', 65536, ROWS.node), 0.8, `${formatMBps(65536, e64)} vs ${formatMBps(65536, ns('encrypt', 65536, ROWS.node))}`);
  const a1 = batch['SifreDB native async, 1 thread'];
  const a2 = batch['SifreDB native async, 2 threads'];
  target('async batch: 2 threads vs 1 (encrypt)', a1 && a2 ? a2.encrypt / a1.encrypt : undefined, 1.7, `${formatRate(a2?.encrypt)} vs ${formatRate(a1?.encrypt)}; decrypt ${times(a2?.decrypt / a1?.decrypt)}, re-encrypt ${times(a2?.reencrypt / a1?.reencrypt)}`);
  target('32 B searchable field vs ciphersweet-js (encrypt + 1 blind index)', ratio('field+index', 32, ROWS.ciphersweet), 50, `${formatNs(ns('field+index', 32, ROWS.native))} vs ${formatNs(ns('field+index', 32, ROWS.ciphersweet))}`);
  target('32 B field encryption vs @47ng/cloak (AES-GCM)', ratio('field', 32, ROWS.cloak), 10, `${formatNs(ns('field', 32, ROWS.native))} vs ${formatNs(ns('field', 32, ROWS.cloak))}`);
  return out;
}

const formatTargetValue = (t) =>
  t.value === undefined
    ? 'not measured'
    : t.unit === 'values/s'
      ? formatRate(t.value)
      : t.unit === 'share'
        ? `${(t.value * 100).toFixed(0)} %`
        : times(t.value);
const formatThreshold = (t) => (t.unit === 'values/s' ? `≥ ${formatRate(t.threshold)}` : t.unit === 'share' ? `≥ ${t.threshold * 100} %` : `≥ ${t.threshold}×`);

function rowsOf(results, op) {
  const order = Object.values(ROWS);
  return [...new Set(results.single.filter((r) => r.op === op).map((r) => r.row))].sort((a, b) => order.indexOf(a) - order.indexOf(b));
}

/** The ceiling comparison: core time vs through N-API, per operation and size. */
function ceilingRows(results) {
  const core = results.ceiling.benches;
  if (!core) return [];
  const ns = lookup(results);
  const pairs = [
    ['randomized_encrypt', 'encrypt', ROWS.native, 'vault.encrypt'],
    ['randomized_decrypt', 'decrypt', ROWS.native, 'vault.decryptBytes'],
    ['deterministic_encrypt', 'siv-encrypt', ROWS.native, 'dvault.encrypt'],
    ['blind_index', 'blind-index', ROWS.native, 'blindIndex.compute'],
  ];
  const rows = [];
  for (const [group, op, row, api] of pairs) {
    for (const size of SIZES) {
      const c = core[`${group}/${size}`]?.ns;
      const n = ns(op, size, row);
      if (c !== undefined && n !== undefined) rows.push({ what: `${api} ${sizeName(size)}`, core: c, native: n, share: c / n });
    }
  }
  const seal = core['randomized_seal_records/32'];
  const batchNs = ns('encrypt', 32, ROWS.nativeBatch);
  if (seal && batchNs) {
    const per = seal.ns / (seal.elements ?? 1000);
    rows.push({ what: 'vault.encryptMany, per 32 B value', core: per, native: batchNs, share: per / batchNs });
  }
  const open = core['randomized_open_records/32'];
  const batchDec = ns('decrypt', 32, ROWS.nativeBatch);
  if (open && batchDec) {
    const per = open.ns / (open.elements ?? 1000);
    rows.push({ what: 'vault.decryptManyBytes, per 32 B value', core: per, native: batchDec, share: per / batchDec });
  }
  const derive = core['derive_cipher/chacha20poly1305']?.ns;
  const deriveNative = ns('derive', 32, ROWS.native);
  if (derive && deriveNative) rows.push({ what: 'derive a ChaCha20-Poly1305 handle', core: derive, native: deriveNative, share: derive / deriveNative });
  return rows;
}

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

export function renderText(results) {
  const ns = lookup(results);
  const lines = [];
  const env = results.environment;
  lines.push('', `SifreDB benchmark — ${env.date}`, `${env.cpu}, ${env.cores} cores, Node ${env.node}, OpenSSL ${env.openssl}; load average ${env.loadBefore} → ${env.loadAfter}`, '');
  for (const [op, title] of Object.entries(OPS)) {
    const sizes = op === 'derive' ? [32] : SIZES;
    lines.push(`${title} — time per value${op === 'derive' ? '' : ' (MB/s from 4 KiB)'}`);
    lines.push(`  ${pad('', 24)}${sizes.map((s) => lpad(op === 'derive' ? 'per key' : sizeName(s), 22)).join('')}`);
    for (const row of rowsOf(results, op)) {
      const cells = sizes.map((size) => {
        const v = ns(op, size, row);
        if (v === undefined) return lpad('—', 22);
        return lpad(size >= 4096 && op !== 'derive' ? `${formatNs(v)} ${formatMBps(size, v)}` : formatNs(v), 22);
      });
      lines.push(`  ${pad(row, 24)}${cells.join('')}`);
    }
    const base = ns(op, 32, ROWS.native);
    const peers = rowsOf(results, op).filter((r) => r !== ROWS.native);
    if (base !== undefined && peers.length) {
      lines.push(`  SifreDB native at ${op === 'derive' ? 'one key' : '32 B'} vs ${peers.map((p) => `${p} ${times(ns(op, 32, p) / base)}`).join(', ')}`);
    }
    lines.push('');
  }
  const count = results.batch[0]?.count;
  lines.push(`Batch scenario: ${count?.toLocaleString('en')} values of 32 B (values/s; slow rows on fewer values)`);
  lines.push(`  ${pad('', 34)}${lpad('encrypt', 12)}${lpad('decrypt', 12)}${lpad('re-encrypt', 12)}${lpad('values', 10)}`);
  for (const r of results.batch) {
    lines.push(`  ${pad(r.row, 34)}${lpad(formatRate(r.encrypt), 12)}${lpad(formatRate(r.decrypt), 12)}${lpad(formatRate(r.reencrypt), 12)}${lpad(r.count.toLocaleString('en'), 10)}`);
  }
  lines.push('');
  const ceiling = ceilingRows(results);
  if (ceiling.length) {
    lines.push('Ceiling: the Rust core (cargo bench) vs SifreDB native through N-API');
    for (const r of ceiling) lines.push(`  ${pad(r.what, 40)} core ${lpad(formatNs(r.core), 10)}  native ${lpad(formatNs(r.native), 10)}  ${lpad((r.share * 100).toFixed(0), 4)} % kept`);
    lines.push('');
  } else {
    lines.push(`Ceiling: ${results.ceiling.skipped ?? 'not measured'}`, '');
  }
  const m = results.memory;
  lines.push(`Memory: encrypt+decrypt ${m.values.toLocaleString('en')} values of 32 B in ${m.seconds} s: RSS ${m.rssBeforeMiB} MiB before, ${m.rssAfterMiB} MiB after, peak ${m.rssPeakMiB} MiB`, '');
  lines.push('Targets');
  for (const t of results.targets) {
    lines.push(`  ${t.pass ? 'PASS' : 'FAIL'}  ${pad(t.name, 64)} ${lpad(formatTargetValue(t), 10)} (${formatThreshold(t)})  ${t.detail}`);
  }
  return lines.join('\n');
}

const COLORS = {
  [ROWS.native]: '#d9480f',
  [ROWS.nativeBatch]: '#f08c00',
  [ROWS.js]: '#2f9e44',
  [ROWS.node]: '#1971c2',
  [ROWS.noble]: '#7048e8',
  [ROWS.miscreant]: '#868e96',
  [ROWS.ciphersweet]: '#c2255c',
  [ROWS.cloak]: '#0c8599',
};
const BATCH_COLORS = (row) =>
  row.startsWith('SifreDB native async')
    ? '#e8590c'
    : row.startsWith('SifreDB native batch')
      ? '#f08c00'
      : row.startsWith('SifreDB native')
        ? '#d9480f'
        : row.startsWith('SifreDB pure-JS')
          ? '#2f9e44'
          : row.startsWith('node')
            ? '#1971c2'
            : row.startsWith('@noble')
              ? '#7048e8'
              : row.startsWith('ciphersweet')
                ? '#c2255c'
                : '#0c8599';

const escapeXml = (s) => String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);

/** A hand-made SVG: 32 B time per value by operation, and batch values/s, both on log scales. */
export function renderSvg(results) {
  const ns = lookup(results);
  const width = 960;
  const left = 300;
  const right = 110;
  const bar = 13;
  const gap = 3;
  const parts = [];
  let y = 56;
  const axis = (x0, x1, ticks, label, y0, y1) => {
    for (const [value, text] of ticks) {
      const x = x0 + (x1 - x0) * value;
      parts.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y1}" stroke="#dee2e6"/>`);
      parts.push(`<text x="${x}" y="${y1 + 14}" font-size="11" text-anchor="middle" fill="#495057">${text}</text>`);
    }
    parts.push(`<text x="${(x0 + x1) / 2}" y="${y1 + 30}" font-size="12" text-anchor="middle" fill="#212529">${escapeXml(label)}</text>`);
  };
  // Panel 1: time per 32 B value (log10 ns from 10 ns to 1 ms).
  const lo = 1;
  const hi = 6;
  const scale = (v) => (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo);
  parts.push(`<text x="20" y="28" font-size="16" font-weight="bold">Time per 32 B value (log scale, shorter is faster)</text>`);
  const top = y;
  for (const op of ['encrypt', 'decrypt', 'siv-encrypt', 'blind-index', 'field', 'field+index', 'derive']) {
    const rows = rowsOf(results, op).filter((row) => ns(op, 32, row) !== undefined);
    parts.push(`<text x="20" y="${y + 11}" font-size="12" font-weight="bold" fill="#212529">${escapeXml(OPS[op].replace(/ \(.*\)$/, ''))}</text>`);
    y += bar + gap;
    for (const row of rows) {
      const v = ns(op, 32, row);
      const w = Math.max(1, (width - left - right) * scale(v));
      parts.push(`<text x="${left - 8}" y="${y + 10}" font-size="11" text-anchor="end" fill="#343a40">${escapeXml(row)}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${COLORS[row] ?? '#adb5bd'}"/>`);
      parts.push(`<text x="${left + w + 5}" y="${y + 10}" font-size="11" fill="#212529">${escapeXml(formatNs(v))}</text>`);
      y += bar + gap;
    }
    y += 8;
  }
  axis(left, width - right, [1, 2, 3, 4, 5, 6].map((p) => [(p - lo) / (hi - lo), ['10 ns', '100 ns', '1 µs', '10 µs', '100 µs', '1 ms'][p - 1]]), 'time per value', top - 4, y);
  y += 70;
  // Panel 2: batch scenario values/s (log10 from 1k/s to 100M/s).
  const count = results.batch[0]?.count ?? 0;
  parts.push(`<text x="20" y="${y}" font-size="16" font-weight="bold">${count.toLocaleString('en')} values of 32 B: values/s (log scale, longer is faster)</text>`);
  y += 20;
  const top2 = y;
  const rlo = 3;
  const rhi = 8;
  const rscale = (v) => (Math.log10(Math.max(v, 10 ** rlo)) - rlo) / (rhi - rlo);
  for (const op of ['encrypt', 'decrypt', 'reencrypt']) {
    parts.push(`<text x="20" y="${y + 11}" font-size="12" font-weight="bold">${op === 'reencrypt' ? 're-encrypt' : op}</text>`);
    y += bar + gap;
    for (const r of results.batch) {
      if (r[op] === undefined) continue;
      const w = Math.max(1, (width - left - right) * rscale(r[op]));
      parts.push(`<text x="${left - 8}" y="${y + 10}" font-size="11" text-anchor="end" fill="#343a40">${escapeXml(r.row)}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${BATCH_COLORS(r.row)}"/>`);
      parts.push(`<text x="${left + w + 5}" y="${y + 10}" font-size="11">${escapeXml(formatRate(r[op]))}</text>`);
      y += bar + gap;
    }
    y += 8;
  }
  axis(left, width - right, [3, 4, 5, 6, 7, 8].map((p) => [(p - rlo) / (rhi - rlo), ['1k', '10k', '100k', '1M', '10M', '100M'][p - 3]]), 'values per second', top2 - 4, y);
  y += 50;
  const env = results.environment;
  parts.push(`<text x="20" y="${y}" font-size="11" fill="#495057">${escapeXml(`${env.cpu}, ${env.cores} cores, Node ${env.node}, ${env.date.slice(0, 10)}`)}</text>`);
  y += 14;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">\n<rect width="100%" height="100%" fill="#ffffff"/>\n${parts.join('\n')}\n</svg>\n`;
}

/** Notes on what bounds the figures (kept next to the code that measures them). */
export const NOTES = `What bounds the figures, from profiles of this machine (\`perf record\` on the addon and on the
criterion benches; \`node --cpu-prof\` for the JavaScript side):

- **Short values are bound by the cipher crates, not by N-API.** A 32 B \`vault.encrypt\` keeps
  about 80 % of the Rust core's own time (see the ceiling table); the fast path is one plain N-API
  call with the output allocated from Node's Buffer pool and sealed in place. Inside the core,
  ChaCha20-Poly1305 is composed from the \`chacha20\` and \`poly1305\` crates
  (\`crates/sifredb-core/src/chacha_poly.rs\`): the \`chacha20\` AVX2 backend computes four 64-byte
  blocks per call even when one is needed, so values up to 447 B take the Poly1305 key block and
  their body from one keystream call. Nonces come from a per-thread 4 KiB
  CSPRNG pool; the addon reports forks through \`pthread_atfork\`, which removed a \`getpid()\` system
  call (~0.1 µs, a quarter of a 32 B seal) from every nonce.
- **Poly1305 is chosen by message size.** poly1305's AVX2 backend is about 2.5× its portable one on
  long input but costs about 1 µs of set-up and finalisation per message; its backend is a
  compile-time \`cfg\`. \`.cargo/config.toml\` builds poly1305 0.9 portable (used below 3 KiB of
  MAC input); poly1305 0.8, whose switch has another name, keeps its runtime AVX2 detection and takes
  longer messages (fed so that its four-block path stays aligned after the 28-byte header ‖
  context). At 64 KiB the core then spends about 30 µs in ChaCha20 (the crate's four-block AVX2
  backend) and 18 µs in Poly1305, close to what node:crypto's OpenSSL needs, so the native lead at
  64 KiB is thin (about 1.1× on this machine); both backends also pay for a fresh 64 KiB output
  buffer and the garbage collection it causes.
- **AES-SIV** is composed from the \`aes\` (AES-NI) and \`ctr\` crates
  (\`crates/sifredb-core/src/siv.rs\`, checked against the \`aes-siv\` crate): the S2V of the
  associated data (header ‖ context) is computed once per handle, the CMAC subkeys and both key
  schedules once per key, and no lock is needed. At 64 KiB it is bound by CMAC, one serial chain of
  AES-256 calls (~17 ns per block here); the chain keeps its state in a register, which doubled
  its speed over the \`cmac\` crate's block-buffered loop.
- **Blind index**: HMAC-SHA256 (SHA-NI) is ~0.13 µs in the core; the rest of \`blindIndex.compute\`
  is the term object it returns (bytes, hex, integer), the transforms and the key lookup.
- **Decrypted plaintexts** never come from Node's shared pool (a policy of this library). Up to 64 B
  a fresh Buffer lives on the V8 heap, so Rust decrypts into an off-heap scratch that is copied out
  and wiped; above 64 B each plaintext needs an ArrayBuffer of its own (~0.5 µs in V8) — visible in
  the 256 B decrypt row.
- **Batches** cross into Rust once. Per 32 B value the core's own batch loop costs about as much as
  a single seal (the cipher dominates), so a batch is at best ~2.5 M values/s per core here;
  JavaScript adds ~0.05–0.1 µs per value (copying values into a reused staging buffer, one
  \`Buffer\` view per result, garbage collection of those views).
- **Async batches** run the sealing on the libuv pool, but encoding and copying the values and
  creating the result views stay on the event-loop thread, and V8's garbage-collector threads share
  the same two cores: on a 2-core machine the second pool thread gains less for short values than
  for long ones, and any other load on the machine comes out of that second core first (the load
  average at the start and end of the run is recorded above).`;

export function renderMarkdown(results) {
  const ns = lookup(results);
  const env = results.environment;
  const out = [];
  out.push('# Benchmarks', '');
  out.push(
    `Generated by \`npm run bench\` (benchmark/run.js) on ${env.date.replace('T', ' ').replace(/\..*/, ' UTC')}: **${env.cpu}**, ${env.cores} cores, ${env.memoryGiB} GiB, ${env.platform}; **Node ${env.node}** (OpenSSL ${env.openssl}); UV_THREADPOOL_SIZE ${env.uvThreadpoolSize}; load average ${env.loadBefore ?? '?'} at the start, ${env.loadAfter ?? '?'} at the end (other work on the machine shows there). ${env.quick ? 'Quick run. ' : ''}Machine-readable results: [benchmark/results/latest.json](benchmark/results/latest.json).`,
    '',
  );
  out.push('![SifreDB benchmark chart](benchmark/results/latest.svg)', '');
  out.push('## Targets', '', '| target | measured | required | result | detail |', '| --- | --- | --- | --- | --- |');
  for (const t of results.targets) out.push(`| ${t.name} | ${formatTargetValue(t)} | ${formatThreshold(t)} | ${t.pass ? '**PASS**' : '**FAIL**'} | ${t.detail} |`);
  out.push('');
  out.push('## Single values', '', 'Median time per value; MB/s from 4 KiB. "batch" rows divide one batch call by its values (1,000 values up to 256 B, 100 at 4 KiB, 10 at 64 KiB).', '');
  for (const [op, title] of Object.entries(OPS)) {
    const sizes = op === 'derive' ? [32] : SIZES;
    out.push(`### ${title}`, '');
    out.push(`| | ${sizes.map((s) => (op === 'derive' ? 'per key' : sizeName(s))).join(' | ')} |`, `| --- |${sizes.map(() => ' ---: |').join('')}`);
    for (const row of rowsOf(results, op)) {
      out.push(
        `| ${row} | ${sizes
          .map((size) => {
            const v = ns(op, size, row);
            return v === undefined ? '—' : size >= 4096 && op !== 'derive' ? `${formatNs(v)} (${formatMBps(size, v)})` : formatNs(v);
          })
          .join(' | ')} |`,
      );
    }
    out.push('');
  }
  const count = results.batch[0]?.count ?? 0;
  out.push(`## Batch: ${count.toLocaleString('en')} values of 32 B`, '', 'Values per second, best of several runs. Rows marked with fewer values ran on that many (same values/s measure).', '');
  out.push('| | encrypt | decrypt | re-encrypt | values |', '| --- | ---: | ---: | ---: | ---: |');
  for (const r of results.batch) out.push(`| ${r.row} | ${formatRate(r.encrypt)} | ${formatRate(r.decrypt)} | ${formatRate(r.reencrypt)} | ${r.count.toLocaleString('en')} |`);
  out.push('');
  out.push('## Ceiling: the Rust core vs through N-API', '');
  const ceiling = ceilingRows(results);
  if (ceiling.length) {
    out.push('`cargo bench -p sifredb-core --bench primitives` (criterion, median) against the same operation through the public API.', '');
    out.push('| operation | Rust core | SifreDB native | kept |', '| --- | ---: | ---: | ---: |');
    for (const r of ceiling) out.push(`| ${r.what} | ${formatNs(r.core)} | ${formatNs(r.native)} | ${(r.share * 100).toFixed(0)} % |`);
  } else {
    out.push(`Not measured: ${results.ceiling.skipped ?? 'skipped'}.`);
  }
  out.push('');
  const m = results.memory;
  out.push('## Memory', '');
  out.push(
    `\`vault.encrypt\` + \`vault.decryptBytes\` of ${m.values.toLocaleString('en')} values of 32 B in a loop (${m.seconds} s, ${m.backend} backend): RSS **${m.rssBeforeMiB} MiB** before, **${m.rssAfterMiB} MiB** after (peak ${m.rssPeakMiB} MiB); V8 heap ${m.heapUsedBeforeMiB} → ${m.heapUsedAfterMiB} MiB, external ${m.externalBeforeMiB} → ${m.externalAfterMiB} MiB.`,
    '',
    `RSS during the loop (MiB): ${m.samples.map((s) => s.rssMiB).join(', ')}.`,
    '',
  );
  out.push('## Notes', '', NOTES, '');
  out.push('## Running it', '');
  out.push(
    '```sh',
    'npm install            # builds the addon and dist/',
    'npm run bench          # about 5–10 minutes; --quick for a short run',
    'node benchmark/run.js --quick --no-write',
    '```',
    '',
    `Peers: @noble/ciphers ${env.versions['@noble/ciphers']}, @noble/hashes ${env.versions['@noble/hashes']}, miscreant ${env.versions.miscreant} (pure-JS provider, async API; faster here than its WebCrypto provider), ciphersweet-js ${env.versions['ciphersweet-js']} (default BoringCrypto backend, one fast blind index), @47ng/cloak ${env.versions['@47ng/cloak']} (sync API); tinybench ${env.versions.tinybench}, ${env.taskMs} ms per task. See docs/PERFORMANCE.md for the design and the thread-pool settings.`,
    '',
  );
  return out.join('\n');
}
