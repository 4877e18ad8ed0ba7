// Ed25519 on the backend in use (`SIFREDB_BACKEND=native|js`): RFC 8032's vectors, every Project
// Wycheproof ed25519 case (single and batch), and both backends side by side on random inputs.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { backend, ed25519 } from '../dist/index.js';
import { jsBackend, nativeBackend } from './helpers/backends.js';
import { hex, loadWycheproof, vectorsRequired, wycheproofDir } from './helpers/wycheproof.js';

const rfc = JSON.parse(readFileSync(new URL('../test-vectors/ed25519-rfc8032.json', import.meta.url), 'utf8'));
const wycheproof = loadWycheproof('ed25519_test.json');
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

test(`RFC 8032 section 7.1: public keys, signatures, verification [${backend}]`, (t) => {
  t.is(rfc.vectors.length, 5);
  for (const v of rfc.vectors) {
    const secret = hex(v.secretKey);
    const message = hex(v.message);
    t.is(ed25519.publicKey(secret).toString('hex'), v.publicKey, v.name);
    t.is(ed25519.sign(secret, message).toString('hex'), v.signature, v.name);
    t.true(ed25519.verify(hex(v.publicKey), message, hex(v.signature)), v.name);
    t.false(ed25519.verify(hex(v.publicKey), Buffer.concat([message, Buffer.of(0)]), hex(v.signature)), v.name);
  }
});

if (!wycheproof) {
  console.warn(`\n!! Wycheproof ed25519_test.json NOT FOUND in ${wycheproofDir}\n`);
  if (vectorsRequired) test(`Wycheproof ed25519 vectors are present [${backend}]`, (t) => t.fail('missing'));
  else test.skip(`Wycheproof ed25519 vectors absent [${backend}]`, () => {});
} else {
  const cases = wycheproof.testGroups.flatMap((group) =>
    group.tests.map((tc) => ({
      tc,
      item: { publicKey: hex(group.publicKey.pk), message: hex(tc.msg), signature: hex(tc.sig) },
      expected: tc.result === 'valid',
    })),
  );

  test(`Wycheproof ed25519: every case, strict verdicts [${backend}]`, (t) => {
    t.is(cases.length, wycheproof.numberOfTests);
    t.true(cases.every(({ tc }) => tc.result === 'valid' || tc.result === 'invalid'), 'no "acceptable" case');
    const wrong = cases
      .filter(({ item, expected }) => ed25519.verify(item.publicKey, item.message, item.signature) !== expected)
      .map(({ tc }) => `tcId ${tc.tcId} (${tc.result}, ${tc.comment})`);
    t.deepEqual(wrong, []);
    t.true(cases.some((c) => c.expected) && cases.some((c) => !c.expected));
  });

  test(`Wycheproof ed25519: batch verification gives every single verdict [${backend}]`, (t) => {
    const all = ed25519.verifyBatch(cases.map((c) => c.item));
    t.deepEqual(all, cases.map((c) => c.expected));
    const valid = cases.filter((c) => c.expected);
    t.deepEqual(ed25519.verifyBatch(valid.map((c) => c.item)), valid.map(() => true));
    t.deepEqual(ed25519.verifyBatch([]), []);
  });
}

test(`strict verification: unreduced S, small-order and non-canonical keys, wrong lengths [${backend}]`, (t) => {
  const secret = randomBytes(32);
  const publicKey = ed25519.publicKey(secret);
  const message = Buffer.from('audit');
  const signature = ed25519.sign(secret, message);
  t.true(ed25519.verify(publicKey, message, signature));
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]);
  const malleated = Buffer.from(signature);
  let unreduced = s + L;
  for (let i = 32; i < 64; i++) {
    malleated[i] = Number(unreduced & 0xffn);
    unreduced >>= 8n;
  }
  t.false(ed25519.verify(publicKey, message, malleated), 'S + L');
  const identity = Buffer.alloc(32);
  identity[0] = 1;
  t.false(ed25519.verify(identity, message, signature), 'identity key');
  identity[31] = 0x80;
  t.false(ed25519.verify(identity, message, signature), 'x = 0 with the sign bit');
  t.false(ed25519.verify(publicKey, message, signature.subarray(0, 63)), 'short signature');
  t.false(ed25519.verify(publicKey, message, Buffer.concat([signature, Buffer.of(0)])), 'long signature');
  t.deepEqual(
    ed25519.verifyBatch([
      { publicKey, message, signature },
      { publicKey, message, signature: malleated },
      { publicKey, message, signature: signature.subarray(1) },
      { publicKey, message: Buffer.from('other'), signature },
    ]),
    [true, false, false, false],
  );
  for (const bad of [() => ed25519.verify(publicKey.subarray(1), message, signature), () => ed25519.sign(secret.subarray(1), message), () => ed25519.sign('key', message), () => ed25519.verify(publicKey, 'm', signature), () => ed25519.verifyBatch([{ publicKey, message }]), () => ed25519.verifyBatch('x')]) {
    t.is(t.throws(bad).code, 'ERR_SIFREDB_INPUT');
  }
});

test(`shared and resizable memory is read once and gives the same result [${backend}]`, (t) => {
  const secret = randomBytes(32);
  const message = randomBytes(100);
  const expected = ed25519.sign(secret, message);
  const shared = (bytes) => {
    const view = new Uint8Array(new SharedArrayBuffer(bytes.length));
    view.set(bytes);
    return view;
  };
  const resizable = (bytes) => {
    const view = new Uint8Array(new ArrayBuffer(bytes.length, { maxByteLength: bytes.length * 2 }));
    view.set(bytes);
    return view;
  };
  for (const wrap of [shared, resizable]) {
    t.deepEqual(ed25519.sign(wrap(secret), wrap(message)), expected);
    const publicKey = wrap(ed25519.publicKey(secret));
    t.true(ed25519.verify(publicKey, wrap(message), wrap(expected)));
    t.deepEqual(ed25519.verifyBatch([{ publicKey, message: wrap(message), signature: wrap(expected) }]), [true]);
  }
});

test('both backends: identical keys and signatures, identical verdicts on altered signatures', (t) => {
  for (let i = 0; i < 64; i++) {
    const secret = randomBytes(32);
    const message = randomBytes(i * 7);
    const publicKey = nativeBackend.ed25519.publicKey(secret);
    t.deepEqual(jsBackend.ed25519.publicKey(secret), publicKey);
    const signature = nativeBackend.ed25519.sign(secret, message);
    t.deepEqual(jsBackend.ed25519.sign(secret, message), signature);
    const altered = Buffer.from(signature);
    altered[i % 64] ^= 1 << (i % 8);
    for (const sig of [signature, altered]) {
      t.is(jsBackend.ed25519.verify(publicKey, message, sig), nativeBackend.ed25519.verify(publicKey, message, sig));
    }
    t.false(nativeBackend.ed25519.verify(publicKey, message, altered));
  }
});

// The addon's raw Ed25519 functions, in a child process so that a crash fails this test instead of
// the suite: wrong types, wrong output lengths, overlapping buffers, shared memory, lengths that do
// not add up, a lens array rewritten by a worker. Every call must return or throw a SifreDB error.
test('addon: bounded fuzz of the Ed25519 functions returns or throws a JS error', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const script = `
    const { createRequire } = require('node:module');
    const { randomBytes } = require('node:crypto');
    const { Worker } = require('node:worker_threads');
    const addon = createRequire(process.cwd() + '/')('./sifredb.linux-' + process.arch + '-gnu.node');
    const ed = addon.ed25519Path();
    const sab = new SharedArrayBuffer(4 * 8);
    const lens = new Uint32Array(sab);
    const worker = new Worker("const { workerData } = require('node:worker_threads'); const l = new Uint32Array(workerData); for (let x = 1; ; x = (x * 1103515245 + 12345) >>> 0) l[x % 8] = x % 3 === 0 ? 0xffffffff : x % 40;", { eval: true, workerData: sab });
    const pool = () => {
      const pick = Math.floor(Math.random() * 9);
      if (pick === 0) return undefined;
      if (pick === 1) return 'str';
      if (pick === 2) return new Uint32Array(3);
      if (pick === 3) { const v = new Uint8Array(new SharedArrayBuffer(64)); v.set(randomBytes(64)); return v; }
      return randomBytes([0, 1, 31, 32, 33, 63, 64, 65, 200][Math.floor(Math.random() * 9)]);
    };
    let threw = 0, returned = 0;
    const codes = new Set();
    const end = Date.now() + 1200;
    while (Date.now() < end) {
      const calls = [
        () => ed.ed25519PublicKey(pool(), pool()),
        () => ed.ed25519Sign(pool(), pool(), pool()),
        () => ed.ed25519Verify(pool(), pool(), pool(), pool()),
        () => ed.ed25519VerifyBatch(pool(), pool(), Math.random() < 0.5 ? lens : new Uint32Array([1, 2]), pool(), pool()),
        () => { const b = Buffer.alloc(96); ed.ed25519Sign(b.subarray(0, 32), b.subarray(16, 48), b.subarray(32)); },
        () => { const n = 8, msgs = randomBytes(320); ed.ed25519VerifyBatch(randomBytes(32 * n), msgs, lens, randomBytes(64 * n), new Uint8Array(n)); },
      ];
      for (const call of calls) {
        try { call(); returned++; } catch (e) { threw++; if (!String(e.code).startsWith('ERR_SIFREDB_')) { console.log('bad error', e); process.exit(2); } codes.add(e.code); }
      }
    }
    worker.terminate();
    console.log('ok', returned, threw, [...codes].join(','));
  `;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.is(child.status, 0, child.stderr);
  t.regex(child.stdout, /^ok \d+ \d+ ERR_SIFREDB_INPUT/m);
  t.log(child.stdout.trim());
});
