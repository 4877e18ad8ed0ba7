// The table schema against the embedded PGlite database (the shared cases of helpers/schema-cases.js).
import test from 'ava';
import { registerSchemaCases } from './helpers/schema-cases.js';
import { tempPGlite } from './helpers/pglite.js';

const setup = tempPGlite(test);

registerSchemaCases(test, 'pglite', setup);
