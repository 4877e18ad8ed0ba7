// The README quick start runs as written: examples/quickstart.js is the snippet of docs/QUICKSTART.md.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const example = new URL('../examples/quickstart.js', import.meta.url);

test('examples/quickstart.js runs and finds every row before and after rotation', (t) => {
  const result = spawnSync(process.execPath, [example.pathname], { encoding: 'utf8', env: process.env });
  t.is(result.status, 0, result.stderr);
  t.regex(result.stdout, /decrypted: alice@example\.com/);
  t.regex(result.stdout, /by ssn: \[ 1 \]/);
  t.regex(result.stdout, /by email: \[ 1 \]/);
  t.regex(result.stdout, /after rotation, by ssn: \[ 1 \] \[ 2 \]/);
  t.regex(result.stdout, /after rotation, by email: \[ 1 \] \[ 2 \]/);
  t.regex(result.stdout, /re-encrypted: true/);
});

test('the documented snippet is the example, verbatim', (t) => {
  const body = readFileSync(example, 'utf8').split('\n').slice(1).join('\n').trimEnd();
  const docs = ['../docs/QUICKSTART.md', '../README.md'].map((p) => new URL(p, import.meta.url)).filter((u) => existsSync(u));
  t.true(
    docs.some((doc) => readFileSync(doc, 'utf8').includes(body)),
    'docs/QUICKSTART.md (or the README) must contain examples/quickstart.js verbatim',
  );
});
