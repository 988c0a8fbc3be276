import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { type Generated, Kysely, sql } from 'kysely';
import { GroupCommitSqliteDialect } from '../src/db/sqlite-group-commit.ts';

// Transactions that wait for SQLite's one connection commit together, with one fsync: each must still be
// all or nothing, durable when its commit returns, and untouched by a neighbour that fails.

type Db = { items: { id: Generated<number>; who: string } };

describe('SQLite group commit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'microapp-group-commit-'));
  const file = join(dir, 'g.sqlite');
  const raw = new SqliteDatabase(file);
  raw.pragma('journal_mode = WAL');
  let commits = 0;
  const db = new Kysely<Db>({
    dialect: new GroupCommitSqliteDialect({
      prepare(text: string) {
        if (text === 'commit') commits++;
        return raw.prepare(text);
      },
      close: () => raw.close(),
    }),
  });
  // Another process's view of the file: what is durable.
  const outside = () => {
    const other = new SqliteDatabase(file, { readonly: true });
    try {
      return (other.prepare('select count(*) as n from items').get() as { n: number }).n;
    } finally {
      other.close();
    }
  };

  before(async () => {
    await sql`create table items (id integer primary key, who text not null unique)`.execute(db);
  });
  after(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('fifty transactions at once: all committed, in far fewer commits, each visible outside when it returns', async () => {
    commits = 0;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        db
          .transaction()
          .execute(async (trx) => {
            await trx
              .insertInto('items')
              .values({ who: `a-${i}` })
              .execute();
            // A transaction that awaits between its statements, as the platform's do.
            await new Promise((r) => setImmediate(r));
            await trx
              .insertInto('items')
              .values({ who: `b-${i}` })
              .execute();
          })
          .then(() => {
            // Durable before its caller hears of it: another connection sees it.
            assert.ok(outside() >= 2, 'committed rows are visible outside');
          }),
      ),
    );
    assert.equal(outside(), 100);
    assert.ok(commits < 50, `${commits} commits for 50 transactions`);
  });

  test('one failing in the middle of a group takes nobody else with it', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        db.transaction().execute(async (trx) => {
          await trx
            .insertInto('items')
            .values({ who: `c-${i}` })
            .execute();
          if (i === 7) await trx.insertInto('items').values({ who: 'a-0' }).execute(); // a duplicate: fails
        }),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'rejected').length, 1);
    const rows = await db.selectFrom('items').select('who').where('who', 'like', 'c-%').execute();
    assert.deepEqual(
      rows.map((r) => r.who).sort(),
      Array.from({ length: 20 }, (_, i) => `c-${i}`)
        .filter((w) => w !== 'c-7')
        .sort(),
    );
    assert.equal(outside(), 119);
  });

  test('plain reads and writes between transactions are committed too', async () => {
    await Promise.all([
      db.transaction().execute((trx) => trx.insertInto('items').values({ who: 'd-1' }).execute()),
      db.insertInto('items').values({ who: 'd-2' }).execute(),
      db.selectFrom('items').selectAll().execute(),
      db.transaction().execute((trx) => trx.insertInto('items').values({ who: 'd-3' }).execute()),
    ]);
    // The last user of the connection was not a commit: the group closes when the connection is idle.
    for (let i = 0; i < 50 && outside() < 122; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(outside(), 122);
  });

  test('nested savepoints inside a transaction work as before', async () => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('items').values({ who: 'e-1' }).execute();
      await sql`savepoint inner_one`.execute(trx);
      await trx.insertInto('items').values({ who: 'e-2' }).execute();
      await sql`rollback to inner_one`.execute(trx);
      await sql`release inner_one`.execute(trx);
    });
    const rows = await db.selectFrom('items').select('who').where('who', 'like', 'e-%').execute();
    assert.deepEqual(
      rows.map((r) => r.who),
      ['e-1'],
    );
  });
});
