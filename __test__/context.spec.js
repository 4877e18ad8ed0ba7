// EncryptionContext: canonical encoding (docs/FORMAT.md), injectivity, validation, immutability.
import test from 'ava';
import { EncryptionContext } from '../dist/index.js';

const inputError = (t, fn, pattern) => {
  const error = t.throws(fn);
  t.is(error.code, 'ERR_SIFREDB_INPUT');
  if (pattern) t.regex(error.message, pattern);
};

test('canonical bytes follow docs/FORMAT.md', (t) => {
  const ctx = new EncryptionContext({ table: 'users', column: 'email' });
  t.is(ctx.bytes.toString('hex'), '01' + '0000' + '0005' + Buffer.from('users').toString('hex') + '0005' + Buffer.from('email').toString('hex') + '00000001');
  const tenant = new EncryptionContext({ tenant: 't_1', table: 'users', column: 'email', version: 258 });
  t.is(
    tenant.bytes.toString('hex'),
    '01' + '0003' + Buffer.from('t_1').toString('hex') + '0005' + Buffer.from('users').toString('hex') + '0005' + Buffer.from('email').toString('hex') + '00000102',
  );
  t.is(tenant.key, tenant.bytes.toString('hex'));
});

test('the encoding is injective where a separator-joined string would not be', (t) => {
  const a = new EncryptionContext({ table: 'a|b', column: 'c' });
  const b = new EncryptionContext({ table: 'a', column: 'b|c' });
  t.not(a.key, b.key);
  t.notDeepEqual(a.bytes, b.bytes);
  const c = new EncryptionContext({ tenant: 'x', table: 'y', column: 'z' });
  const d = new EncryptionContext({ table: 'x', column: 'yz' });
  t.not(c.key, d.key);
  // Escaping keeps the human form unambiguous too.
  t.not(a.toString(), b.toString());
  t.is(a.toString(), 'a\\|b|c|v1');
});

test('builder, toString, toJSON and equals', (t) => {
  const ctx = EncryptionContext.of('users', 'ssn').withTenant('t_123').withVersion(2);
  t.is(ctx.toString(), 't_123|users|ssn|v2');
  t.deepEqual(ctx.toJSON(), { tenant: 't_123', table: 'users', column: 'ssn', version: 2 });
  t.true(ctx.equals(new EncryptionContext(ctx.toJSON())));
  t.false(ctx.equals(EncryptionContext.of('users', 'ssn')));
  t.is(EncryptionContext.of('users', 'ssn').toString(), 'users|ssn|v1');
  t.is(EncryptionContext.of('users', 'ssn').tenant, undefined);
  t.is(new EncryptionContext({ table: 't', column: 'c', tenant: null }).tenant, undefined);
});

test('contexts are immutable and bytes are a copy', (t) => {
  const ctx = EncryptionContext.of('users', 'email');
  t.true(Object.isFrozen(ctx));
  t.throws(() => {
    ctx.table = 'other';
  });
  const bytes = ctx.bytes;
  bytes.fill(0);
  t.not(ctx.bytes[0], 0);
  const base = EncryptionContext.of('users', 'email');
  base.withTenant('x');
  t.is(base.tenant, undefined);
});

test('validation names the field', (t) => {
  inputError(t, () => new EncryptionContext({ table: '', column: 'c' }), /table must not be empty/);
  inputError(t, () => new EncryptionContext({ table: 't', column: '' }), /column must not be empty/);
  inputError(t, () => new EncryptionContext({ table: 't' }), /column must be a string/);
  inputError(t, () => new EncryptionContext({ table: 1, column: 'c' }), /table must be a string/);
  inputError(t, () => new EncryptionContext({ table: 't', column: 'c', tenant: '' }), /tenant must not be empty/);
  inputError(t, () => new EncryptionContext({ table: 'x'.repeat(256), column: 'c' }), /table is 256 UTF-8 bytes/);
  // 128 × "é" is 128 UTF-16 units but 256 UTF-8 bytes: the limit counts bytes.
  inputError(t, () => new EncryptionContext({ table: 't', column: 'é'.repeat(128) }), /column is 256 UTF-8 bytes/);
  inputError(t, () => new EncryptionContext({ table: 't', column: 'c', tenant: 'x'.repeat(256) }), /tenant/);
  t.notThrows(() => new EncryptionContext({ table: 'x'.repeat(255), column: 'é'.repeat(127), tenant: 'y'.repeat(255) }));
  inputError(t, () => new EncryptionContext({ table: 'a\uD800', column: 'c' }), /table contains a lone surrogate/);
  inputError(t, () => new EncryptionContext({ table: 't', column: '\uDC00' }), /column contains a lone surrogate/);
  for (const version of [0, -1, 1.5, 2 ** 32, Number.NaN, '1']) {
    inputError(t, () => new EncryptionContext({ table: 't', column: 'c', version }), /version/);
  }
  t.is(new EncryptionContext({ table: 't', column: 'c', version: 2 ** 32 - 1 }).version, 2 ** 32 - 1);
  inputError(t, () => new EncryptionContext({ table: 't', colum: 'c' }), /unknown field "colum"/);
  inputError(t, () => new EncryptionContext(null), /context must be an object/);
  inputError(t, () => EncryptionContext.of('t', 'c').withTenant(''), /tenant/);
});

test('Unicode names are kept exactly', (t) => {
  const ctx = new EncryptionContext({ tenant: 'müşteri', table: 'kullanıcılar', column: '📧' });
  t.is(ctx.column, '📧');
  t.true(ctx.bytes.includes(Buffer.from('kullanıcılar')));
});
