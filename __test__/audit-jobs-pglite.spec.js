// The column jobs on audited tables, on the embedded PGlite database (helpers/audit-job-cases.js).
import test from 'ava';
import { backend } from '../dist/index.js';
import { registerAuditJobCases } from './helpers/audit-job-cases.js';
import { tempPGlite } from './helpers/pglite.js';

registerAuditJobCases(test, `pglite [${backend}]`, tempPGlite(test));
