/**
 * `sifredb/kysely`: a Kysely plugin that sends rows of the tables of a {@link TableSchema} through
 * {@link EncryptedTable}. Inserts, updates and upserts are encrypted with each row's context (tenant,
 * row binding) and get their lookup columns; results (selects and `returning`) are decrypted in
 * batches; `=` and `in` on an encrypted column become lookups over every active key version, with a
 * blind index's false positives dropped from the result. Every other use of an encrypted column is
 * refused with `ERR_SIFREDB_INPUT`, so that no query stores plaintext or silently finds nothing.
 */
// Registers how the default backend is chosen (native addon, else pure JS) for this entry point.
import '../../backend/index.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  AliasNode,
  CompiledQuery,
  RawNode,
  AndNode,
  BinaryOperationNode,
  ColumnNode,
  ColumnUpdateNode,
  DefaultInsertValueNode,
  IdentifierNode,
  InsertQueryNode,
  OnConflictNode,
  OperatorNode,
  OrNode,
  ParensNode,
  PrimitiveValueListNode,
  ReferenceNode,
  ReturningNode,
  SelectAllNode,
  SelectionNode,
  SelectModifierNode,
  SelectQueryNode,
  TableNode,
  UpdateQueryNode,
  ValueListNode,
  ValueNode,
  ValuesNode,
  WhereNode,
  type DeleteQueryNode,
  type Kysely,
  type Transaction,
  type KyselyPlugin,
  type OperationNode,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryId,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely';
import { ERROR_CODES, SifreDBError } from '../../errors.js';
import { Keyring, type KeyringOptions, type KeySource } from '../../keys/keyring.js';
import { Schema, TableSchema, type TableSchemaInit } from '../../schema/definition.js';
import type { DbSession } from '../../db/database.js';
import { EncryptedTable, type EqualityQuery, type PlainRowInput } from '../../schema/encrypted-table.js';
import type { BatchOptions } from '../../backend/types.js';
import type { AuditSigner } from '../../keys/audit-keys.js';
import { type AuditChain, AuditChainWriter, type AuditedWriteOptions, checkActor, publishAuditKey } from '../../audit/chain.js';

/** Auditing of the plugin's writes (docs/AUDIT.md): who signs them, and which tables. */
export interface KyselyAuditOptions {
  /** The audit signer (`AuditKeyFile.signer()`), as `AuditedTable.open` takes it. */
  signer: AuditSigner;
  /** The audited tables (schema table names); default every table of the plugin. */
  tables?: readonly string[];
  /** The clock of record timestamps, in ms since the Unix epoch (default `Date.now`). */
  now?: () => number;
}

/** Options of {@link SifreDBPlugin.create}. */
export interface SifreDBPluginOptions extends KeyringOptions {
  /** Passed to `decryptRowsAsync` for every result (thread-pool split of the native backend). */
  batch?: BatchOptions;
  /**
   * Sign every insert, update and delete of the audited tables: they must then run inside
   * {@link SifreDBPlugin.signedTransaction} (on its `trx`) with `.returning(…)`; any other write to
   * them is refused with `ERR_SIFREDB_AUDIT_UNSIGNED` before it is sent.
   */
  audit?: KyselyAuditOptions;
}

/** One running {@link SifreDBPlugin.signedTransaction}: its transaction id and locked chains. */
interface AuditScope {
  readonly plugin: SifreDBPlugin;
  /** `txid_current()` of the transaction: a statement that runs in another one fails (the guard). */
  readonly txid: string;
  readonly chains: ReadonlyMap<EncryptedTable, AuditChain>;
}

/** What transformResult signs: the chain, the operation and where each record column is in the rows. */
interface AuditPlan {
  readonly chain: AuditChain;
  readonly table: EncryptedTable;
  readonly operation: 'insert' | 'update' | 'delete';
  /** Column → hidden result key. */
  readonly keys: ReadonlyMap<string, string>;
  /** Hidden key of `(xmax = 0)` for an upsert: true when the row was inserted. */
  readonly insertedKey: string | undefined;
  readonly hidden: readonly string[];
}

const auditScopes = new AsyncLocalStorage<AuditScope>();
const AUDIT_PREFIX = '__sifredb_audit_';

/** What transformResult does with a query's rows: which outputs to decrypt and which rows to drop. */
interface ResultPlan {
  readonly table: EncryptedTable;
  /** Encrypted column → the result keys holding it (a column selected twice, or under an alias). */
  readonly outputs: ReadonlyMap<string, readonly string[]>;
  readonly tenantOut: string | undefined;
  readonly idOut: string | undefined;
  /** Result keys the plugin added (context or filter columns), removed before the rows are returned. */
  readonly hidden: readonly string[];
  /** Blind-index conditions: a row comes back only when its decrypted value matches each. */
  readonly filters: readonly { readonly column: string; readonly query: EqualityQuery }[];
  /** `selectAll`: lookup columns are dropped as `decryptRows` drops them. */
  readonly selectAll: boolean;
}

/** The table a query is on, and the names its columns may be qualified with. */
interface Scope {
  readonly table: EncryptedTable;
  readonly names: ReadonlySet<string>;
  /** Lookup column → the encrypted column it belongs to. */
  readonly lookups: ReadonlyMap<string, string>;
}

/** A literal `col = value` (or `col is null`) found among the top-level AND conditions. */
type Literal = { readonly value: unknown } | undefined;

const HIDDEN_PREFIX = '__sifredb_';

function refuse(message: string): never {
  throw new SifreDBError(ERROR_CODES.input, message);
}

/**
 * A Kysely plugin encrypting and decrypting the columns of one or more table schemas.
 *
 * @example
 * ```ts
 * const plugin = await SifreDBPlugin.create(keyring, [usersSchema]);
 * const db = new Kysely<DB>({ dialect, plugins: [plugin] });
 * await db.insertInto('users').values({ id: 1, tenant_id: 't1', email: 'a@x.io' }).execute();
 * const rows = await db.selectFrom('users').selectAll().where('tenant_id', '=', 't1').where('email', '=', 'a@x.io').execute();
 * ```
 */
export class SifreDBPlugin implements KyselyPlugin {
  readonly #tables: readonly EncryptedTable[];
  readonly #plans = new WeakMap<QueryId, ResultPlan>();
  readonly #batch: BatchOptions | undefined;
  /** The audited tables' chain writers (empty when the plugin does not audit). */
  readonly #audited: ReadonlyMap<EncryptedTable, AuditChainWriter>;
  readonly #signer: AuditSigner | undefined;
  readonly #auditPlans = new WeakMap<QueryId, AuditPlan>();
  /** The signer's public key, published once per database (outside the signed transactions). */
  readonly #published = new WeakMap<object, Promise<void>>();

  private constructor(tables: readonly EncryptedTable[], batch: BatchOptions | undefined, audit: KyselyAuditOptions | undefined) {
    this.#tables = tables;
    this.#batch = batch;
    this.#signer = audit?.signer;
    const audited = new Map<EncryptedTable, AuditChainWriter>();
    if (audit !== undefined) {
      const names = audit.tables === undefined ? undefined : new Set(audit.tables.map(qualified));
      for (const table of tables) {
        if (names === undefined || names.has(qualified(table.schema.table))) audited.set(table, new AuditChainWriter(table.schema, audit.signer, audit.now ?? Date.now));
      }
    }
    this.#audited = audited;
  }

  /**
   * Runs `work` in one Kysely transaction whose inserts, updates and deletes of audited tables (made
   * on `trx`, each with `.returning(…)`) are signed: every audited table's chain head is locked first
   * (in name order, before any data row), one record per returned row is signed, and the records are
   * written before COMMIT. A statement of `work` made on another connection than `trx` fails at the
   * database (nothing written). Returns what `work` returns.
   * @throws `ERR_SIFREDB_INPUT` when the plugin does not audit or `actor` is missing; `work`'s errors
   *   (the transaction is rolled back: no data, no records).
   */
  async signedTransaction<DB, R>(db: Kysely<DB>, options: AuditedWriteOptions & { tables?: readonly string[] }, work: (trx: Transaction<DB>) => Promise<R>): Promise<R> {
    if (this.#audited.size === 0) refuse('this SifreDBPlugin does not audit: create it with { audit: { signer } }');
    const actor = checkActor(options);
    const wanted = options.tables === undefined ? undefined : new Set(options.tables.map(qualified));
    const writers = [...this.#audited].filter(([t]) => wanted === undefined || wanted.has(qualified(t.schema.table)));
    if (wanted !== undefined && writers.length !== wanted.size) refuse(`signedTransaction: tables ${[...wanted].join(', ')} are not all audited tables of the plugin`);
    // Name order: two signed transactions lock the heads they share in the same order.
    writers.sort(([a], [b]) => (qualified(a.schema.table) < qualified(b.schema.table) ? -1 : 1));
    let published = this.#published.get(db);
    if (published === undefined) {
      published = publishAuditKey(kyselySession(db), this.#signer!);
      this.#published.set(db, published);
      // A failure is reported to this call and retried by the next.
      published.catch(() => this.#published.delete(db));
    }
    await published;
    return db.transaction().execute(async (trx) => {
      const session = kyselySession(trx);
      const {
        rows: [row],
      } = await session.query<{ txid: string }>('SELECT txid_current()::text AS txid');
      const chains = new Map<EncryptedTable, AuditChain>();
      for (const [table, writer] of writers) chains.set(table, await writer.lock(session, actor));
      const result = await auditScopes.run({ plugin: this, txid: row!.txid, chains }, () => work(trx));
      for (const chain of chains.values()) await chain.flush();
      return result;
    });
  }

  /**
   * The audit selections of a write to an audited table, added to its RETURNING after the scan:
   * the record's columns (stored ciphertexts, id, tenant) under hidden names, and the guard that fails
   * the statement unless it runs in the signed transaction's own transaction.
   */
  #planAudit(node: RootOperationNode, out: RootOperationNode, table: EncryptedTable): RootOperationNode {
    const writer = this.#audited.get(table);
    if (writer === undefined || SelectQueryNode.is(node)) return out;
    const name = table.schema.table;
    if (node.kind !== 'InsertQueryNode' && node.kind !== 'UpdateQueryNode' && node.kind !== 'DeleteQueryNode') {
      throw new SifreDBError(ERROR_CODES.auditUnsigned, `${name} is audited: a ${node.kind} cannot be signed; use insert, update or delete`);
    }
    const scope = auditScopes.getStore();
    const chain = scope?.plugin === this ? scope.chains.get(table) : undefined;
    if (scope === undefined || chain === undefined) {
      throw new SifreDBError(
        ERROR_CODES.auditUnsigned,
        `${name} is audited: this write would store rows no audit record signs; make it on the trx of plugin.signedTransaction(db, { actor }, async (trx) => …)${scope === undefined ? '' : ' that locks this table'}`,
      );
    }
    const write = out as InsertQueryNode | UpdateQueryNode | DeleteQueryNode;
    if (write.returning === undefined) {
      refuse(`${name} is audited: add .returning(…) (any column) to the ${node.kind === 'InsertQueryNode' ? 'insert' : node.kind === 'UpdateQueryNode' ? 'update' : 'delete'}, through which its rows are signed`);
    }
    if (InsertQueryNode.is(write) && (write.onDuplicateKey !== undefined || write.replace === true || write.ignore === true)) {
      throw new SifreDBError(ERROR_CODES.auditUnsigned, `${name} is audited: MySQL's ON DUPLICATE KEY / REPLACE / IGNORE cannot be signed`);
    }
    const schema = table.schema;
    const operation = InsertQueryNode.is(write) ? 'insert' : UpdateQueryNode.is(write) ? 'update' : 'delete';
    const columns = [schema.id, ...(operation === 'delete' ? [] : [...(schema.tenant === undefined ? [] : [schema.tenant]), ...schema.columns.keys()])];
    const keys = new Map<string, string>();
    const added: SelectionNode[] = [];
    for (const column of columns) {
      const key = `${AUDIT_PREFIX}${column}`;
      keys.set(column, key);
      added.push(SelectionNode.create(AliasNode.create(ReferenceNode.create(ColumnNode.create(column)), IdentifierNode.create(key))));
    }
    // Fails the statement (nothing written) when it runs in another transaction than the signed one,
    // as a write made on `db` instead of `trx` inside signedTransaction would. Not a constant, so the
    // planner cannot fold the error branch.
    const guard = RawNode.create(
      ["CASE WHEN txid_current() = ", "::bigint THEN NULL ELSE ('sifredb: audited write outside its signed transaction, refused: ' || txid_current())::int END"],
      [ValueNode.create(scope.txid)],
    );
    added.push(SelectionNode.create(AliasNode.create(guard, IdentifierNode.create(`${AUDIT_PREFIX}guard`))));
    let insertedKey: string | undefined;
    if (InsertQueryNode.is(write) && write.onConflict?.updates !== undefined) {
      insertedKey = `${AUDIT_PREFIX}inserted`;
      added.push(SelectionNode.create(AliasNode.create(RawNode.createWithSql('(xmax = 0)'), IdentifierNode.create(insertedKey))));
    }
    const hidden = [...keys.values(), `${AUDIT_PREFIX}guard`, ...(insertedKey === undefined ? [] : [insertedKey])];
    return { ...write, returning: ReturningNode.create([...write.returning!.selections, ...added]), __auditPlan: { chain, table, operation, keys, insertedKey, hidden } } as unknown as RootOperationNode;
  }

  /**
   * Compares every table's schema with the settings recorded in `db` (see `EncryptedTable.verifySettings`):
   * call it at start-up, with `fromPgPool(pool)`, `fromPGlite(client)` or `openDatabase(url)`.
   * @throws `ERR_SIFREDB_SCHEMA` listing the differences.
   */
  async verifySettings(db: DbSession): Promise<void> {
    for (const table of this.#tables) await table.verifySettings(db);
  }

  /**
   * Opens every table of `schemas` on `source` (a provider, router or shared `Keyring`; a shared
   * keyring's `refresh()` after a rotation is seen by the plugin).
   * @throws `ERR_SIFREDB_KEY` when the keys cannot be loaded; `ERR_SIFREDB_INPUT` when two schemas name the same table.
   */
  static async create(source: KeySource, schemas: readonly TableSchema[] | Schema, options: SifreDBPluginOptions = {}): Promise<SifreDBPlugin> {
    const { batch, audit, ...keyringOptions } = options;
    // A loadSchema() result inside the array is a natural slip: its tables are what was meant.
    const list = schemas instanceof Schema ? schemas.tables : Array.isArray(schemas) ? schemas.flatMap((s) => (s instanceof Schema ? s.tables : [s])) : schemas;
    if (!Array.isArray(list) || list.length === 0) refuse('SifreDBPlugin.create needs one or more table schemas');
    for (const [i, schema] of list.entries()) {
      if (!(schema instanceof TableSchema)) refuse(`SifreDBPlugin.create: schemas[${i}] is not a table schema (defineTable(), or loadSchema(file))`);
    }
    const keyring = await Keyring.from(source, keyringOptions);
    const seen = new Set<string>();
    for (const schema of list) {
      const key = qualified(schema.table);
      if (seen.has(key)) refuse(`table ${schema.table} is given twice`);
      seen.add(key);
    }
    if (audit !== undefined && (typeof audit !== 'object' || audit === null || typeof audit.signer?.sign !== 'function')) {
      refuse('options.audit.signer must be an audit signer (AuditKeyFile.signer())');
    }
    const tables = await Promise.all(list.map((s) => EncryptedTable.open(keyring, s)));
    for (const name of audit?.tables ?? []) {
      if (!tables.some((t) => qualified(t.schema.table) === qualified(name))) refuse(`options.audit.tables: ${name} is not a table of the plugin`);
    }
    return new SifreDBPlugin(tables, batch, audit);
  }

  /** Rewrites a query on an encrypted table (see the module documentation); other queries pass unchanged. */
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const { node, queryId } = args;
    this.#plans.delete(queryId);
    if (!['SelectQueryNode', 'InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode', 'MergeQueryNode'].includes(node.kind)) return node;
    const tables = this.#encryptedTableNodes(node);
    if (tables.length === 0) return node;
    const root = this.#rootTable(node);
    if (root === undefined || tables.length > 1 || tables[0] !== root.node) {
      refuse(
        `${tables.map((t) => this.#tableFor(t)!.schema.table).join(', ')}: the Kysely plugin handles one encrypted table per query, as the only table of a select, insert, update or delete (no joins, subqueries, CTEs or MERGE on it)`,
      );
    }
    const scope = root.scope;
    const allowed = new WeakSet<OperationNode>();
    let out: RootOperationNode;
    let plan: ResultPlan | undefined;
    switch (node.kind) {
      case 'SelectQueryNode':
        [out, plan] = this.#select(node, scope, allowed);
        break;
      case 'InsertQueryNode':
        [out, plan] = this.#insert(node, scope, allowed);
        break;
      case 'UpdateQueryNode':
        [out, plan] = this.#update(node, scope, allowed);
        break;
      default:
        [out, plan] = this.#delete(node as DeleteQueryNode, scope, allowed);
    }
    scan(out, scope, allowed);
    if (plan !== undefined) this.#plans.set(queryId, plan);
    const audited = this.#planAudit(node, out, scope.table) as RootOperationNode & { __auditPlan?: AuditPlan };
    if (audited.__auditPlan !== undefined) {
      const { __auditPlan: auditPlan, ...clean } = audited;
      this.#auditPlans.set(queryId, auditPlan);
      return clean as RootOperationNode;
    }
    return out;
  }

  /** Decrypts the encrypted columns of the rows and drops a blind index's false positives. */
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const { queryId } = args;
    let { result } = args;
    const audit = this.#auditPlans.get(queryId);
    if (audit !== undefined && result.rows !== undefined) {
      // Sign each returned row as stored (before decryption), then drop the hidden keys.
      const { chain, operation, keys, insertedKey, hidden } = audit;
      for (const row of result.rows) {
        const stored: Record<string, unknown> = {};
        for (const [column, key] of keys) stored[column] = row[key];
        chain.append(insertedKey === undefined ? operation : row[insertedKey] === true ? 'insert' : 'update', stored);
      }
      result = {
        ...result,
        rows: result.rows.map((row) => {
          const copy: Record<string, unknown> = { ...row };
          for (const h of hidden) delete copy[h];
          return copy;
        }),
      };
    }
    const plan = this.#plans.get(queryId);
    if (plan === undefined || result.rows === undefined || result.rows.length === 0) return result;
    const { table, outputs, tenantOut, idOut } = plan;
    const schema = table.schema;
    const stored = result.rows.map((row) => {
      const s: Record<string, unknown> = {};
      if (tenantOut !== undefined) s[schema.tenant!] = row[tenantOut];
      if (idOut !== undefined) s[schema.id] = row[idOut];
      for (const [column, outs] of outputs) s[column] = row[outs[0]!];
      return s;
    });
    const plain = await table.decryptRowsAsync(stored, this.#batch);
    const rows: UnknownRow[] = [];
    plain.forEach((p, i) => {
      if (!plan.filters.every((f) => f.query.matches(p))) return;
      const row: Record<string, unknown> = { ...result.rows[i] };
      for (const [column, outs] of outputs) for (const o of outs) row[o] = p[column];
      for (const h of plan.hidden) delete row[h];
      if (plan.selectAll) for (const lookup of table.schema.lookupOwners.keys()) delete row[lookup];
      rows.push(row);
    });
    return { ...result, rows };
  }

  #tableFor(node: TableNode): EncryptedTable | undefined {
    const name = node.table.identifier.name;
    const key = qualified(node.table.schema === undefined ? name : `${node.table.schema.name}.${name}`);
    return this.#tables.find((t) => qualified(t.schema.table) === key);
  }

  /** Every TableNode naming an encrypted table, outside column references (`users.email`). */
  #encryptedTableNodes(root: OperationNode): TableNode[] {
    const found: TableNode[] = [];
    walk(root, (node) => {
      if (node.kind === 'ReferenceNode') return false;
      if (TableNode.is(node) && this.#tableFor(node) !== undefined) found.push(node);
      return true;
    });
    return found;
  }

  /** The query's own table, when it is the single table of the statement. */
  #rootTable(node: RootOperationNode): { node: TableNode; scope: Scope } | undefined {
    let item: OperationNode | undefined;
    if (SelectQueryNode.is(node)) item = node.from?.froms.length === 1 && !node.joins?.length ? node.from.froms[0] : undefined;
    else if (InsertQueryNode.is(node)) item = node.into;
    else if (UpdateQueryNode.is(node)) item = node.from === undefined && !node.joins?.length ? node.table : undefined;
    else if (node.kind === 'DeleteQueryNode') {
      const del = node as DeleteQueryNode;
      item = del.from.froms.length === 1 && del.using === undefined && !del.joins?.length ? del.from.froms[0] : undefined;
    }
    if (item === undefined) return undefined;
    let alias: string | undefined;
    if (AliasNode.is(item) && IdentifierNode.is(item.alias)) {
      alias = item.alias.name;
      item = item.node;
    }
    if (!TableNode.is(item)) return undefined;
    const table = this.#tableFor(item);
    if (table === undefined) return undefined;
    // `users`, `public.users` and the declared name all name this table (WithSchemaPlugin also
    // qualifies column references, `public.users.email`), so each must read as the table's own.
    const names = new Set<string>([item.table.identifier.name, table.schema.table, qualified(table.schema.table)]);
    if (alias !== undefined) names.add(alias);
    if (InsertQueryNode.is(node)) names.add('excluded');
    return { node: item, scope: { table, names, lookups: table.schema.lookupOwners } };
  }

  #select(node: SelectQueryNode, scope: Scope, allowed: WeakSet<OperationNode>): [RootOperationNode, ResultPlan | undefined] {
    const { where, filters } = rewriteWhere(node.where, scope, allowed, 'SELECT');
    if (filters.length > 0) {
      const plainSelections = (node.selections ?? []).every((s) => selectionColumn(s, scope) !== undefined || isSelectAll(s.selection, scope));
      const shape = [
        node.limit && 'LIMIT',
        node.offset && 'OFFSET',
        node.fetch && 'FETCH',
        node.top && 'TOP',
        node.groupBy && 'GROUP BY',
        node.having && 'HAVING',
        node.distinctOn && 'DISTINCT ON',
        node.setOperations && 'UNION/INTERSECT/EXCEPT',
        // Raw modifiers may hold anything (LIMIT, FETCH, …) the checks above cannot see.
        node.frontModifiers?.some((m) => m.rawModifier !== undefined) && 'modifyFront',
        node.endModifiers?.some((m) => !SelectModifierNode.is(m) || m.rawModifier !== undefined) && 'modifyEnd',
        // The hidden ciphertext columns added for the filter are randomized: DISTINCT would keep every row.
        node.frontModifiers?.some((m) => m.modifier === 'Distinct') && 'DISTINCT',
        !plainSelections && 'computed selections',
      ].filter(Boolean);
      if (shape.length > 0) {
        refuse(
          `${describe(scope, filters[0]!.column)} is searched through a blind index, whose false positives are removed after the query; with ${shape.join(', ')} they would be counted or take the place of real rows: search through a deterministic column or lookup, or drop ${shape.join(', ')}`,
        );
      }
    }
    const { selections, plan } = planOutput(node.selections ?? [], scope, filters);
    const out: SelectQueryNode = { ...node, ...(where === undefined ? {} : { where }), ...(selections === undefined ? {} : { selections }) };
    return [out, plan];
  }

  #delete(node: DeleteQueryNode, scope: Scope, allowed: WeakSet<OperationNode>): [RootOperationNode, ResultPlan | undefined] {
    const { where } = rewriteWhere(node.where, scope, allowed, 'DELETE');
    const [returning, plan] = planReturning(node.returning, scope);
    return [{ ...node, ...(where === undefined ? {} : { where }), ...(returning === undefined ? {} : { returning }) } as DeleteQueryNode, plan];
  }

  #update(node: UpdateQueryNode, scope: Scope, allowed: WeakSet<OperationNode>): [RootOperationNode, ResultPlan | undefined] {
    const { table } = scope;
    const schema = table.schema;
    const { where } = rewriteWhere(node.where, scope, allowed, 'UPDATE');
    const plain: Record<string, unknown> = {};
    const fields: Record<string, unknown> = {};
    const compoundFields = new Map<string, string>();
    for (const c of schema.columns.values()) {
      for (const b of c.blindIndexes) for (const f of b.fields) if (!schema.columns.has(f.column)) compoundFields.set(f.column, b.name);
    }
    const set = new Map<string, OperationNode>();
    for (const u of node.updates ?? []) {
      const column = columnOf(u.column, scope);
      if (column === undefined) continue;
      set.set(column, u.value);
      if (scope.lookups.has(column)) refuse(`${describe(scope, column)} is a lookup column of ${scope.lookups.get(column)}; it is computed from ${scope.lookups.get(column)}, do not set it`);
      if (schema.columns.has(column)) {
        if (!ValueNode.is(u.value)) refuse(`${describe(scope, column)} is encrypted: set it to a value (not an expression, a column or a subquery)`);
        plain[column] = u.value.value;
      } else if (compoundFields.has(column)) {
        // The compound term is computed from the values: an expression would leave it stale.
        if (!ValueNode.is(u.value)) refuse(`${describe(scope, column)} is a field of compound blind index ${compoundFields.get(column)}: set it to a value`);
        fields[column] = u.value.value;
      }
    }
    checkContextChange(scope, set);
    let updates = node.updates;
    if (Object.keys(plain).length > 0 || Object.keys(fields).length > 0) {
      const conditions = node.where?.where;
      const tenant = schema.tenant === undefined ? undefined : literalOf(set.get(schema.tenant)) ?? literalCondition(conditions, schema.tenant, scope);
      if (schema.tenant !== undefined && tenant === undefined) {
        refuse(
          `an UPDATE of ${describe(scope, Object.keys({ ...plain, ...fields }).join(', '))} must know the row's tenant, which goes into the encryption context: add .where('${schema.tenant}', '=', tenant)`,
        );
      }
      const bound = Object.keys(plain).filter((c) => schema.column(c).rowBinding);
      const id = bound.length === 0 ? undefined : literalOf(set.get(schema.id)) ?? literalCondition(conditions, schema.id, scope);
      if (bound.length > 0 && id === undefined) {
        refuse(`${describe(scope, bound.join(', '))} is bound to its row's id: an UPDATE of it must name one row, add .where('${schema.id}', '=', id)`);
      }
      const row: Record<string, unknown> = { ...fields, ...plain };
      if (tenant !== undefined) row[schema.tenant!] = tenant.value;
      if (id !== undefined) row[schema.id] = id.value;
      const stored = table.encryptRow(row as PlainRowInput<TableSchemaInit>);
      updates = (node.updates ?? []).map((u) => {
        const column = columnOf(u.column, scope);
        return column !== undefined && column in plain ? ColumnUpdateNode.create(u.column, ValueNode.create(stored[column])) : u;
      });
      for (const [column, value] of Object.entries(stored)) {
        if (scope.lookups.has(column)) updates = [...updates, ColumnUpdateNode.create(ColumnNode.create(column), ValueNode.create(value))];
      }
    }
    const [returning, plan] = planReturning(node.returning, scope);
    const out: UpdateQueryNode = {
      ...node,
      ...(updates === undefined ? {} : { updates }),
      ...(where === undefined ? {} : { where }),
      ...(returning === undefined ? {} : { returning }),
    };
    return [out, plan];
  }

  #insert(node: InsertQueryNode, scope: Scope, allowed: WeakSet<OperationNode>): [RootOperationNode, ResultPlan | undefined] {
    const { table } = scope;
    const schema = table.schema;
    const columns = (node.columns ?? []).map((c) => c.column.name);
    const encrypted = columns.filter((c) => schema.columns.has(c) || scope.lookups.has(c));
    let out: InsertQueryNode = node;
    let rows: Record<string, unknown>[] = [];
    if (node.values !== undefined && !ValuesNode.is(node.values)) {
      if (encrypted.length > 0) refuse(`${describe(scope, encrypted.join(', '))} is encrypted: INSERT … SELECT cannot encrypt it; insert values`);
    } else if (node.values !== undefined) {
      const expressions: Map<string, OperationNode>[] = [];
      rows = node.values.values.map((item, i) => {
        const row: Record<string, unknown> = {};
        const exprs = new Map<string, OperationNode>();
        columns.forEach((column, j) => {
          if (PrimitiveValueListNode.is(item)) {
            row[column] = item.values[j];
            return;
          }
          const value = item.values[j]!;
          if (ValueNode.is(value)) row[column] = value.value;
          else if (DefaultInsertValueNode.is(value)) return;
          else if (schema.columns.has(column)) refuse(`rows[${i}].${column} is encrypted: insert a value, not an expression, a column or a subquery`);
          else exprs.set(column, value);
        });
        const contextColumns = [schema.tenant, ...(columns.some((c) => schema.columns.get(c)?.rowBinding) ? [schema.id] : [])];
        for (const c of contextColumns) {
          if (c !== undefined && exprs.has(c) && [...schema.columns.keys()].some((e) => row[e] !== undefined && row[e] !== null)) {
            refuse(`rows[${i}].${c} goes into the encryption context of the row's encrypted columns: insert a value, not an expression`);
          }
        }
        expressions.push(exprs);
        return row;
      });
      const stored = table.encryptRows(rows as PlainRowInput<TableSchemaInit>[]);
      const outColumns = [...columns];
      for (const s of stored) for (const c of Object.keys(s)) if (!outColumns.includes(c)) outColumns.push(c);
      const values = ValuesNode.create(
        stored.map((s, i) =>
          ValueListNode.create(outColumns.map((c) => expressions[i]!.get(c) ?? (c in s ? ValueNode.create(s[c]) : DefaultInsertValueNode.create()))),
        ),
      );
      out = { ...node, columns: outColumns.map((c) => ColumnNode.create(c)), values };
    }
    // MySQL's ON DUPLICATE KEY UPDATE is not rewritten (the plugin targets PostgreSQL): a value set there
    // would be stored as plaintext, a lookup or compound term left stale, or the tenant / id changed under
    // ciphertexts written with the old ones; so it may only set the other columns.
    const duplicateSet = new Map<string, OperationNode>();
    for (const u of node.onDuplicateKey?.updates ?? []) {
      const column = columnOf(u.column, scope);
      if (column === undefined) continue;
      duplicateSet.set(column, u.value);
      if (schema.columns.has(column)) refuse(`${describe(scope, column)} is encrypted: onDuplicateKeyUpdate cannot encrypt it; use onConflict(...).doUpdateSet`);
      if (scope.lookups.has(column)) refuse(`${describe(scope, column)} is a lookup column of ${scope.lookups.get(column)}; it is computed from ${scope.lookups.get(column)}, do not set it`);
      const compound = [...schema.columns.values()].flatMap((c) => c.blindIndexes).find((b) => b.fields.some((f) => f.column === column));
      if (compound !== undefined) refuse(`${describe(scope, column)} is a field of compound blind index ${compound.name}: onDuplicateKeyUpdate cannot recompute its term; use onConflict(...).doUpdateSet`);
    }
    checkContextChange(scope, duplicateSet);
    if (node.onConflict?.updates !== undefined) {
      out = { ...out, onConflict: OnConflictNode.cloneWith(node.onConflict, { updates: this.#upsertUpdates(node.onConflict, rows, scope, allowed) }) };
    }
    const [returning, plan] = planReturning(node.returning, scope);
    return [returning === undefined ? out : { ...out, returning }, plan];
  }

  /**
   * `onConflict(...).doUpdateSet(...)`: an encrypted column may be set to `excluded.<itself>` (the
   * ciphertext just computed for the row; its lookups follow) or, for a one-row insert, to a value
   * (encrypted with that row's context). Either is right only when the existing row has the inserted
   * row's context: the tenant column is in the conflict target (or set from `excluded`), and a
   * row-bound column needs the id column in the conflict target.
   */
  #upsertUpdates(onConflict: OnConflictNode, rows: readonly Record<string, unknown>[], scope: Scope, allowed: WeakSet<OperationNode>): ColumnUpdateNode[] {
    const schema = scope.table.schema;
    const target = (onConflict.columns ?? []).map((c) => c.column.name);
    const set = new Map<string, OperationNode>();
    const literals: Record<string, unknown> = {};
    const fromExcluded: string[] = [];
    const isExcluded = (value: OperationNode, column: string) =>
      ReferenceNode.is(value) && value.table?.table.identifier.name === 'excluded' && columnOf(value, scope) === column;
    for (const u of onConflict.updates!) {
      const column = columnOf(u.column, scope);
      if (column === undefined) continue;
      set.set(column, u.value);
      if (scope.lookups.has(column)) refuse(`${describe(scope, column)} is a lookup column of ${scope.lookups.get(column)}; it is computed from ${scope.lookups.get(column)}, do not set it`);
      if (!schema.columns.has(column)) continue;
      if (isExcluded(u.value, column)) {
        allowed.add(u.value);
        fromExcluded.push(column);
      } else if (ValueNode.is(u.value)) literals[column] = u.value.value;
      else refuse(`${describe(scope, column)} is encrypted: doUpdateSet can set it to excluded.${column} or to a value, not to another expression`);
    }
    checkContextChange(scope, set);
    // A compound term is right only when its column and every field hold the inserted row's values.
    for (const c of schema.columns.values()) {
      for (const b of c.blindIndexes) {
        const plainFields = b.fields.map((f) => f.column).filter((f) => f !== c.name);
        if (plainFields.length === 0 || !(set.has(c.name) || plainFields.some((f) => set.has(f)))) continue;
        const fromInsert = (column: string) => (set.has(column) ? isExcluded(set.get(column)!, column) : target.includes(column));
        if (!isExcluded(set.get(c.name) ?? ValueNode.create(null), c.name) || !plainFields.every(fromInsert)) {
          refuse(
            `doUpdateSet touches compound blind index ${b.name} (${describe(scope, b.column)}): set ${c.name} and ${plainFields.join(', ')} to excluded.<column> (or have them in the onConflict columns), so its term matches the row`,
          );
        }
      }
    }
    const changed = [...fromExcluded, ...Object.keys(literals)];
    if (changed.length === 0) return [...onConflict.updates!];
    if (schema.tenant !== undefined && !target.includes(schema.tenant) && !(set.has(schema.tenant) && isExcluded(set.get(schema.tenant)!, schema.tenant))) {
      refuse(
        `doUpdateSet of ${describe(scope, changed.join(', '))}: the existing row may belong to another tenant than the inserted one; put ${schema.tenant} in the onConflict columns or set ${schema.tenant} to excluded.${schema.tenant}`,
      );
    }
    const bound = changed.filter((c) => schema.column(c).rowBinding);
    if (bound.length > 0 && !target.includes(schema.id)) {
      refuse(`doUpdateSet of ${describe(scope, bound.join(', '))}, bound to the row's id: put ${schema.id} in the onConflict columns`);
    }
    let stored: Record<string, unknown> = {};
    if (Object.keys(literals).length > 0) {
      if (rows.length !== 1) refuse(`doUpdateSet of ${describe(scope, Object.keys(literals).join(', '))} to a value needs a one-row insert (the value is encrypted with that row's context); use excluded.<column>`);
      const row: Record<string, unknown> = { ...literals };
      if (schema.tenant !== undefined) row[schema.tenant] = rows[0]![schema.tenant];
      if (bound.length > 0) row[schema.id] = rows[0]![schema.id];
      stored = scope.table.encryptRow(row as PlainRowInput<TableSchemaInit>);
    }
    const updates = onConflict.updates!.map((u) => {
      const column = columnOf(u.column, scope);
      return column !== undefined && column in literals ? ColumnUpdateNode.create(u.column, ValueNode.create(stored[column])) : u;
    });
    for (const [lookup, owner] of scope.lookups) {
      if (fromExcluded.includes(owner)) {
        const value = ReferenceNode.create(ColumnNode.create(lookup), TableNode.create('excluded'));
        allowed.add(value); // the plugin's own copy of the term just computed for the row
        updates.push(ColumnUpdateNode.create(ColumnNode.create(lookup), value));
      }
      else if (owner in literals && lookup in stored) updates.push(ColumnUpdateNode.create(ColumnNode.create(lookup), ValueNode.create(stored[lookup])));
    }
    return updates;
  }
}

/** `schema.table` with `public.` for an unqualified name, so `users` and `public.users` are one table. */
function qualified(table: string): string {
  return table.includes('.') ? table : `public.${table}`;
}

function describe(scope: Scope, column: string): string {
  return `${scope.table.schema.table}.${column}`;
}

/** Depth-first over every operation node under `root`; `visit` returns false to skip a node's children. */
function walk(root: OperationNode, visit: (node: OperationNode) => boolean): void {
  if (!visit(root)) return;
  for (const child of Object.values(root)) {
    if (Array.isArray(child)) {
      for (const c of child) if (isNode(c)) walk(c, visit);
    } else if (isNode(child)) walk(child, visit);
  }
}

function isNode(value: unknown): value is OperationNode {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';
}

/** The column of the query's table a `ColumnNode` or `ReferenceNode` names, else undefined. */
function columnOf(node: OperationNode, scope: Scope): string | undefined {
  if (ColumnNode.is(node)) return node.column.name;
  if (!ReferenceNode.is(node) || !ColumnNode.is(node.column)) return undefined;
  if (node.table !== undefined) {
    const t = node.table.table;
    const name = t.schema === undefined ? t.identifier.name : `${t.schema.name}.${t.identifier.name}`;
    if (!scope.names.has(name)) return undefined;
  }
  return node.column.column.name;
}

function isSelectAll(node: OperationNode, scope: Scope): boolean {
  if (SelectAllNode.is(node)) return true;
  if (!ReferenceNode.is(node) || !SelectAllNode.is(node.column)) return false;
  const t = node.table!.table;
  return scope.names.has(t.schema === undefined ? t.identifier.name : `${t.schema.name}.${t.identifier.name}`);
}

/** `[column, result key]` of a selection that is a plain column (aliased or not), else undefined. */
function selectionColumn(selection: SelectionNode, scope: Scope): [string, string] | undefined {
  const s = selection.selection;
  if (AliasNode.is(s)) {
    const column = columnOf(s.node, scope);
    return column !== undefined && IdentifierNode.is(s.alias) ? [column, s.alias.name] : undefined;
  }
  const column = columnOf(s, scope);
  return column === undefined ? undefined : [column, column];
}

function literalOf(node: OperationNode | undefined): Literal {
  return node !== undefined && ValueNode.is(node) ? { value: node.value } : undefined;
}

/** The AND-ed conditions at the top of a WHERE (through parentheses). */
function conjuncts(node: OperationNode | undefined): OperationNode[] {
  if (node === undefined) return [];
  if (AndNode.is(node)) return [...conjuncts(node.left), ...conjuncts(node.right)];
  if (ParensNode.is(node)) return conjuncts(node.node);
  return [node];
}

/**
 * `column = literal` (or `column is null`) among the top-level AND conditions: the value every
 * matching row has. Two different literals are refused rather than picked from.
 */
function literalCondition(where: OperationNode | undefined, column: string, scope: Scope): Literal {
  let found: Literal;
  for (const c of conjuncts(where)) {
    if (!BinaryOperationNode.is(c) || columnOf(c.leftOperand, scope) !== column || !OperatorNode.is(c.operator) || !ValueNode.is(c.rightOperand)) continue;
    const op = c.operator.operator;
    const value = c.rightOperand.value;
    if (op !== '=' && !(op === 'is' && value === null)) continue;
    if (found !== undefined && String(found.value) !== String(value)) {
      refuse(`the WHERE gives ${describe(scope, column)} two values; the plugin needs exactly one to build the encryption context`);
    }
    found = { value };
  }
  return found;
}

/**
 * Rewrites `=` and `in` on encrypted columns into `IN` lists of lookup terms; every other operator on
 * an encrypted column is refused by `EncryptedTable.query`. A blind index (approximate) is accepted
 * only among the top-level AND conditions of a SELECT, where dropping its false positives from the
 * result is exact; under OR or NOT, or in an UPDATE or DELETE (which would change the false
 * positives), it is refused.
 */
function rewriteWhere(
  where: WhereNode | undefined,
  scope: Scope,
  allowed: WeakSet<OperationNode>,
  statement: 'SELECT' | 'UPDATE' | 'DELETE',
): { where: WhereNode | undefined; filters: { column: string; query: EqualityQuery }[] } {
  const filters: { column: string; query: EqualityQuery }[] = [];
  if (where === undefined) return { where, filters };
  const { table } = scope;
  const tenantColumn = table.schema.tenant;
  let tenant: Literal | null = null; // looked up on the first condition that needs it
  const rewrite = (node: OperationNode, top: boolean): OperationNode => {
    if (AndNode.is(node)) return AndNode.create(rewrite(node.left, top), rewrite(node.right, top));
    if (ParensNode.is(node)) return ParensNode.create(rewrite(node.node, top));
    if (OrNode.is(node)) return OrNode.create(rewrite(node.left, false), rewrite(node.right, false));
    if (!BinaryOperationNode.is(node)) return node;
    const column = columnOf(node.leftOperand, scope);
    if (column === undefined || !table.schema.columns.has(column)) return node;
    const op = OperatorNode.is(node.operator) ? node.operator.operator : 'an expression';
    if ((op === 'is' || op === 'is not') && ValueNode.is(node.rightOperand) && node.rightOperand.value === null) {
      allowed.add(node); // NULL stays NULL when encrypted
      return node;
    }
    if (op !== '=' && op !== 'in') table.query(column, op, undefined); // throws, naming the column and operator
    const right = node.rightOperand;
    // `= null` is never true in SQL; NULL is stored as NULL, so `is null` is the exact test.
    const isNull = (v: OperationNode) => ValueNode.is(v) && v.value === null;
    if (
      (op === '=' && isNull(right)) ||
      (op === 'in' && ((PrimitiveValueListNode.is(right) && right.values.includes(null)) || (ValueListNode.is(right) && right.values.some(isNull))))
    ) {
      refuse(`${describe(scope, column)} ${op === 'in' ? 'in a list holding null' : '= null'} matches no row (NULL is not equal to anything): use where('${column}', 'is', null)`);
    }
    let values: unknown[];
    if (op === '=' && ValueNode.is(right)) values = [right.value];
    else if (op === 'in' && PrimitiveValueListNode.is(right)) values = [...right.values];
    else if (op === 'in' && ValueListNode.is(right) && right.values.every((v) => ValueNode.is(v))) values = right.values.map((v) => (v as ValueNode).value);
    else refuse(`${describe(scope, column)} is encrypted: compare it ${op === 'in' ? 'with a list of values' : 'with a value'}, not with an expression, a column or a subquery`);
    if (tenantColumn !== undefined) {
      tenant ??= literalCondition(where.where, tenantColumn, scope);
      if (tenant === undefined) {
        refuse(`${describe(scope, column)} is encrypted under each row's tenant: add .where('${tenantColumn}', '=', tenant) to search it`);
      }
    }
    const tenantValue = tenant?.value as string | number | bigint | null | undefined;
    const query = table.query(column, op, op === 'in' ? values : values[0], tenantColumn === undefined ? {} : { tenant: tenantValue });
    if (query.approximate) {
      if (statement !== 'SELECT') {
        refuse(
          `${describe(scope, column)} is searched through a blind index, whose false positives the ${statement} would also change: use a deterministic column or lookup, or select the ids first`,
        );
      }
      if (!top) refuse(`${describe(scope, column)} is searched through a blind index: its false positives can only be removed when the condition is AND-ed at the top of the WHERE, not under OR or NOT`);
      filters.push({ column, query });
    }
    const terms = query.terms.map((t) => ValueNode.create(t));
    const rewritten = BinaryOperationNode.create(ReferenceNode.create(ColumnNode.create(query.column)), OperatorNode.create('in'), ValueListNode.create(terms));
    allowed.add(rewritten);
    return rewritten;
  };
  return { where: WhereNode.create(rewrite(where.where, true)), filters };
}

/**
 * Setting the tenant column (or the id, with row-bound columns) changes the context the row's
 * ciphertexts were written with: the columns not set in the same statement would no longer decrypt.
 */
function checkContextChange(scope: Scope, set: ReadonlyMap<string, OperationNode>): void {
  const schema = scope.table.schema;
  const all = [...schema.columns.keys()];
  if (schema.tenant !== undefined && set.has(schema.tenant)) {
    const missing = all.filter((c) => !set.has(c));
    if (missing.length > 0) refuse(`setting ${describe(scope, schema.tenant)} (the tenant) changes the encryption context of ${missing.join(', ')}: set them too`);
  }
  if (set.has(schema.id)) {
    const missing = all.filter((c) => schema.column(c).rowBinding && !set.has(c));
    if (missing.length > 0) refuse(`setting ${describe(scope, schema.id)} (the row id) changes the binding of ${missing.join(', ')}: set them too`);
  }
}

function planReturning(returning: ReturningNode | undefined, scope: Scope): [ReturningNode | undefined, ResultPlan | undefined] {
  if (returning === undefined) return [undefined, undefined];
  const { selections, plan } = planOutput(returning.selections, scope, []);
  return [selections === undefined ? returning : ReturningNode.create(selections), plan];
}

/**
 * Which result keys hold encrypted columns, and the selections to add so every row carries what its
 * decryption needs (tenant, id of row-bound columns) and what a blind-index filter compares (the
 * column itself), under hidden aliases removed from the result.
 */
function planOutput(
  selections: readonly SelectionNode[],
  scope: Scope,
  filters: readonly { column: string; query: EqualityQuery }[],
): { selections: readonly SelectionNode[] | undefined; plan: ResultPlan | undefined } {
  const schema = scope.table.schema;
  const selectAll = selections.some((s) => isSelectAll(s.selection, scope));
  const picked = new Map<string, string[]>();
  for (const s of selections) {
    const pair = selectionColumn(s, scope);
    if (pair === undefined) continue;
    const outs = picked.get(pair[0]) ?? [];
    outs.push(pair[1]);
    picked.set(pair[0], outs);
  }
  const outputs = new Map<string, string[]>();
  for (const column of schema.columns.keys()) {
    const outs = [...(selectAll ? [column] : []), ...(picked.get(column) ?? [])];
    if (outs.length > 0) outputs.set(column, outs);
  }
  const added: SelectionNode[] = [];
  const hidden: string[] = [];
  const hide = (column: string): string => {
    const alias = `${HIDDEN_PREFIX}${column}`;
    added.push(SelectionNode.create(AliasNode.create(ReferenceNode.create(ColumnNode.create(column)), IdentifierNode.create(alias))));
    hidden.push(alias);
    return alias;
  };
  for (const f of filters) if (!outputs.has(f.column)) outputs.set(f.column, [hide(f.column)]);
  if (outputs.size === 0) return { selections: undefined, plan: undefined };
  const outOf = (column: string) => (selectAll ? column : picked.get(column)?.[0]);
  const tenantOut = schema.tenant === undefined ? undefined : outOf(schema.tenant) ?? hide(schema.tenant);
  const bound = [...outputs.keys()].some((c) => schema.column(c).rowBinding);
  const idOut = bound ? outOf(schema.id) ?? hide(schema.id) : undefined;
  return {
    selections: added.length === 0 ? undefined : [...selections, ...added],
    plan: { table: scope.table, outputs, tenantOut, idOut, hidden, filters, selectAll },
  };
}

/**
 * Refuses any use of an encrypted column the rewrite did not handle — in a condition, a function,
 * ordering, grouping, a computed selection, an `sql` fragment — naming the column and the operator or
 * clause, so that nothing compares plaintext with ciphertext and silently finds nothing.
 */
function scan(root: OperationNode, scope: Scope, allowed: WeakSet<OperationNode>): void {
  const encrypted = scope.table.schema.columns;
  const guarded = [...encrypted.keys(), ...scope.lookups.keys()];
  const refuseRaw = (column: string): never => {
    if (scope.lookups.has(column)) {
      refuse(`${describe(scope, column)} is a lookup column of ${scope.lookups.get(column)} and appears in an sql\`\` fragment: search ${scope.lookups.get(column)} with the query builder's where(column, '=' | 'in', value)`);
    }
    refuse(`${describe(scope, column)} is encrypted and appears in an sql\`\` fragment, which the plugin cannot rewrite: use the query builder's where(column, '=' | 'in', value)`);
  };
  const visit = (node: OperationNode, where: string): void => {
    if (allowed.has(node)) return;
    if (SelectionNode.is(node) && (selectionColumn(node, scope) !== undefined || isSelectAll(node.selection, scope))) return;
    if (node.kind === 'RawNode') {
      const raw = node as unknown as { sqlFragments: readonly string[]; parameters: readonly OperationNode[] };
      const text = raw.sqlFragments.join(' ');
      for (const column of guarded) {
        if (new RegExp(`(^|[^A-Za-z0-9_$])${column.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_$])`).test(text)) refuseRaw(column);
      }
      // sql.id('email') and sql.id('users', 'email') put the name in an IdentifierNode parameter, not in
      // the text: the last identifier of a dotted chain is the column (a qualifier cannot be a column).
      raw.parameters.forEach((p, i) => {
        const chained = raw.sqlFragments[i + 1] === '.' && raw.parameters[i + 1] !== undefined && IdentifierNode.is(raw.parameters[i + 1]!);
        if (IdentifierNode.is(p) && !chained && guarded.includes(p.name)) refuseRaw(p.name);
      });
    }
    const column = ColumnNode.is(node) || ReferenceNode.is(node) ? columnOf(node, scope) : undefined;
    if (column !== undefined && encrypted.has(column)) {
      refuse(`${describe(scope, column)} is encrypted and cannot answer ${JSON.stringify(where)}: only equality (= and in, compared with values) and selecting it are supported`);
    }
    // A lookup holds terms, not values: comparing it with anything but the terms the plugin computes
    // (its own rewritten conditions and writes, marked allowed) finds nothing or everything.
    if (column !== undefined && scope.lookups.has(column)) {
      const owner = scope.lookups.get(column)!;
      refuse(
        `${describe(scope, column)} is a lookup column of ${owner} and cannot answer ${JSON.stringify(where)}: search ${owner} with where('${owner}', '=' | 'in', value), which the plugin turns into a lookup`,
      );
    }
    let next = where;
    if (BinaryOperationNode.is(node) && OperatorNode.is(node.operator)) next = node.operator.operator;
    else if (node.kind === 'OrderByItemNode') next = 'order by';
    else if (node.kind === 'GroupByItemNode') next = 'group by';
    else if (node.kind === 'FunctionNode' || node.kind === 'AggregateFunctionNode') next = `function ${String((node as unknown as { func: unknown }).func)}`;
    else if (node.kind === 'UnaryOperationNode') next = String((node as unknown as { operator: OperatorNode }).operator.operator);
    for (const [key, child] of Object.entries(node)) {
      // Column lists of an INSERT, a conflict target and the left side of a SET name columns, they do not read them.
      if ((key === 'columns' && (InsertQueryNode.is(node) || OnConflictNode.is(node))) || (key === 'column' && ColumnUpdateNode.is(node))) continue;
      // Under the statement itself, the clause (distinctOn, having, …) is the most precise name there is.
      const clause = node === root ? key : next;
      if (Array.isArray(child)) {
        for (const c of child) if (isNode(c)) visit(c, clause);
      } else if (isNode(child)) visit(child, clause);
    }
  };
  visit(root, 'this query');
}

/** A {@link DbSession} on a Kysely database or transaction, for the audit chain's statements (parameters bound by the driver). */
function kyselySession(db: { executeQuery<R>(query: CompiledQuery<R>): Promise<{ rows: R[]; numAffectedRows?: bigint }> }): DbSession {
  return {
    query: async <R>(text: string, params: readonly unknown[] = []) => {
      const result = await db.executeQuery(CompiledQuery.raw(text, [...params]) as CompiledQuery<R>);
      return { rows: result.rows, rowCount: Number(result.numAffectedRows ?? BigInt(result.rows.length)) };
    },
  };
}
