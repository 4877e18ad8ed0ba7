#!/usr/bin/env node
// Writes a CommonJS declaration file beside each entry's ESM one (`dist/index.d.cts` re-exporting
// `dist/index.d.ts`, and so on), named by the `require` condition in package.json's `exports`, so
// that TypeScript resolves `require('sifredb')` from CommonJS projects. At run time `require` loads
// the same ES module (Node's require(esm), Node >= 20.19): one copy of every class.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const root = join(import.meta.dirname, '..');
const { exports } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const entry of Object.values(exports)) {
  const types = entry?.require?.types;
  if (typeof types !== 'string') continue;
  const esm = `./${basename(types, '.d.cts')}.js`;
  writeFileSync(join(root, dirname(types), basename(types)), `export * from '${esm}';\n`);
}
