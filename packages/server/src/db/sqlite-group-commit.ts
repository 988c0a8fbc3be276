import type SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
  SelectQueryNode,
  SqliteDialect,
} from 'kysely';

/**
 * Group commit for SQLite. SQLite has one writer and one connection here, so transactions already run one
 * after another; what limited them was one fsync per commit. Here each transaction is a savepoint inside an
 * open database transaction, and while others wait for the connection, a finished one hands it on instead of
 * committing: the whole group commits at once, when nobody waits any more (or it is 200 strong), with one
 * fsync. A transaction's commit resolves only once its group has committed, so nothing is reported done that
 * a crash could lose; a transaction that fails rolls back to its savepoint and takes nobody else's work with
 * it. Other processes (the audit verifier's workers, a backup) see a group only once it has committed.
 */

type Statements = { prepare(sql: string): SqliteDatabase.Statement; close(): void };

/** The connection's one lock, first come first served, that knows how many wait. */
class Mutex {
  #held = false;
  #queue: (() => void)[] = [];
  get held() {
    return this.#held;
  }
  get waiting() {
    return this.#queue.length;
  }
  async lock(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return;
    }
    await new Promise<void>((resolve) => this.#queue.push(resolve));
  }
  unlock(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#held = false;
  }
}

/** One use of the connection (Kysely acquires, runs, releases): what this use did to the group. */
class Lease implements DatabaseConnection {
  /** Handed on at commit, before the group committed: the release that follows is not ours to do. */
  handedOn = false;
  /** Its savepoint is released or rolled back: nothing of it is left to roll back. */
  finished = false;
  readonly db: Statements;
  constructor(db: Statements) {
    this.db = db;
  }

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const statement = this.db.prepare(compiled.sql);
    if (statement.reader) return Promise.resolve({ rows: statement.all(compiled.parameters) as R[] });
    const { changes, lastInsertRowid } = statement.run(compiled.parameters);
    return Promise.resolve({
      numAffectedRows: BigInt(changes),
      insertId: BigInt(lastInsertRowid),
      rows: [],
    });
  }

  async *streamQuery<R>(compiled: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const statement = this.db.prepare(compiled.sql);
    if (!SelectQueryNode.is(compiled.query)) throw new Error('only a select can be streamed');
    for (const row of statement.iterate(compiled.parameters)) yield { rows: [row as R] };
  }
}

const raw = (lease: Lease, text: string) => lease.executeQuery(CompiledQuery.raw(text));
const maxGroup = 200;

class GroupCommitDriver implements Driver {
  #mutex = new Mutex();
  /** The open database transaction, and those in it whose commit waits for it. */
  #group: { members: number; waiting: { resolve: () => void; reject: (e: unknown) => void }[] } | null = null;
  #closing = false;
  readonly db: Statements;

  constructor(db: Statements) {
    this.db = db;
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock();
    return new Lease(this.db);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    if (!this.#group) {
      await raw(lease, 'begin');
      this.#group = { members: 0, waiting: [] };
    }
    await raw(lease, 'savepoint microapp_group');
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    await raw(lease, 'release microapp_group');
    lease.finished = true;
    const group = this.#group!;
    group.members++;
    if (this.#mutex.waiting === 0 || group.members >= maxGroup) return this.#commit(lease);
    // Others wait: hand the connection on, and be done when the group commits.
    const done = new Promise<void>((resolve, reject) => group.waiting.push({ resolve, reject }));
    lease.handedOn = true;
    this.#mutex.unlock();
    return done;
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    // After a failed group commit there is nothing left to undo (and the connection is not this lease's).
    if (lease.finished || !this.#group) return;
    lease.finished = true;
    try {
      await raw(lease, 'rollback to microapp_group');
      await raw(lease, 'release microapp_group');
    } catch {
      // It never began (its `begin` failed): nothing of it to undo.
    }
  }

  async savepoint(connection: DatabaseConnection, name: string) {
    await raw(connection as Lease, `savepoint "${name.replaceAll('"', '""')}"`);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string) {
    await raw(connection as Lease, `rollback to "${name.replaceAll('"', '""')}"`);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string) {
    await raw(connection as Lease, `release "${name.replaceAll('"', '""')}"`);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    if (lease.handedOn) return;
    this.#mutex.unlock();
    this.#closeIdleGroup();
  }

  /** Commits the open group now: every member's commit resolves, or every one fails with the reason. */
  async #commit(lease: Lease): Promise<void> {
    const group = this.#group;
    this.#group = null;
    if (!group) return;
    try {
      await raw(lease, 'commit');
    } catch (error) {
      await raw(lease, 'rollback').catch(() => {});
      for (const w of group.waiting) w.reject(error);
      throw error;
    }
    for (const w of group.waiting) w.resolve();
  }

  /** A group left open when the last user of the connection was not a commit (a plain read, a rollback). */
  #closeIdleGroup(): void {
    if (!this.#group) return;
    setImmediate(async () => {
      if (!this.#group || this.#mutex.held) return;
      await this.#mutex.lock();
      try {
        await this.#commit(new Lease(this.db)).catch(() => {});
      } finally {
        this.#mutex.unlock();
      }
    });
  }

  async destroy(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#mutex.lock();
    try {
      await this.#commit(new Lease(this.db)).catch(() => {});
    } finally {
      this.#mutex.unlock();
      this.db.close();
    }
  }
}

/** Kysely's SQLite dialect with group commit. */
export class GroupCommitSqliteDialect extends SqliteDialect {
  readonly #db: Statements;
  constructor(db: Statements) {
    super({ database: db as unknown as SqliteDatabase.Database });
    this.#db = db;
  }
  override createDriver(): Driver {
    return new GroupCommitDriver(this.#db);
  }
}
