// Rolling upgrades: a server keeps running on a database a newer release migrated when that release only
// added to the schema, and refuses, saying what to do, when it changed what this one reads.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { migrateToLatest, schemaCompatibility } from '../src/db/migrations.ts';
import { bankReconciliation, call, engines, lunchPoll, signInEveryone, startTestServer } from './harness.ts';

for (const engine of engines())
  describe(`a database a newer release migrated (${engine})`, () => {
    test('runs on it when the newer migrations only added; refuses it when they need a newer server', async () => {
      const server = await startTestServer(engine);
      const db = server.rawDb();
      try {
        // What the next release would leave: a migration this server does not know, and a table it added.
        await sql`insert into kysely_migration (name, timestamp) values ('0099_next_release', ${new Date().toISOString()})`.execute(
          db.kysely,
        );
        await sql`create table next_release_notes (id text primary key)`.execute(db.kysely);
        assert.deepEqual(await migrateToLatest(db), [], 'nothing to run, and no refusal');
        // And it still serves on it.
        assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
      } finally {
        await db.destroy();
        await server.stop();
      }
    });

    test('a contract migration (min_server above this release) stops the start with what to do', async () => {
      const server = await startTestServer(engine);
      const db = server.rawDb();
      try {
        await sql`insert into kysely_migration (name, timestamp) values ('0099_drop_old_columns', ${new Date().toISOString()})`.execute(
          db.kysely,
        );
        await sql`update schema_compatibility set min_server = ${schemaCompatibility + 1} where id = 1`.execute(
          db.kysely,
        );
        await assert.rejects(
          migrateToLatest(db),
          new RegExp(
            `migrated by a newer microapp \\(0099_drop_old_columns\\).*needs schema compatibility ${schemaCompatibility + 1}, this server has ${schemaCompatibility}\\. Upgrade this server`,
          ),
        );
      } finally {
        await db.destroy();
        await server.stop();
      }
    });

    test('0033 gives revisions registered before it what is known of their answers and approval', async () => {
      const server = await startTestServer(engine);
      const db = server.rawDb();
      try {
        const t = await signInEveryone(server);
        // A low app (approved by policy), a high app approved on revision 1 then changed (revision 2 waits),
        // and one whose first revision had one of its two reviews and then a request for changes.
        await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
        await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: bankReconciliation() });
        for (const token of [t.bob, t.erin])
          await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
            token,
            body: { decision: 'approve' },
          });
        await call(server, 'POST', '/api/v1/apps', {
          token: t.alice,
          body: bankReconciliation({ dataClasses: ['internal', 'financial'] }),
        });
        await call(server, 'POST', '/api/v1/apps', {
          token: t.alice,
          body: bankReconciliation({ name: 'ledger-match' }),
        });
        await call(server, 'POST', '/api/v1/apps/ledger-match/reviews', {
          token: t.bob,
          body: { decision: 'approve' },
        });
        await call(server, 'POST', '/api/v1/apps/ledger-match/reviews', {
          token: t.erin,
          body: { decision: 'request_changes', comment: 'name the ledger' },
        });
        // The database as the release before 0033 left it: 0033 and what came after it undone.
        const later = [
          '0033_revision_answers',
          '0034_agent_changes',
          '0035_hosted_repos',
          '0036_scorecard_changes',
          '0037_shared_repositories',
          '0038_repo_pack_uploads',
        ];
        await db.kysely.schema.dropTable('repo_pack_uploads').execute();
        await db.kysely.schema.dropIndex('repo_packs_digest').execute();
        await db.kysely.schema.dropTable('repo_packs').execute();
        await db.kysely.schema.dropTable('repo_refs').execute();
        for (const table of ['app_versions', 'advisory_alerts'])
          if (engine === 'sqlite')
            for (const i of [0, 1, 2]) await sql.raw(`drop trigger ${table}_changed_${i}`).execute(db.kysely);
          else await sql.raw(`drop trigger ${table}_changed on ${table}`).execute(db.kysely);
        await db.kysely.schema.dropIndex('app_repos_host_repo').execute();
        for (const [table, column] of [
          ['change_requests', 'host_url'],
          ['change_requests', 'host_number'],
          ['app_repos', 'host_repo'],
          ['app_repos', 'host_repo_id'],
          ['app_repos', 'host'],
          ['change_requests', 'agent_delegation_id'],
          ['risk_assessments', 'approved_at'],
          ['risk_assessments', 'manifest'],
        ] as const)
          await db.kysely.schema.alterTable(table).dropColumn(column).execute();
        for (const name of later)
          await sql`delete from kysely_migration where name = ${name}`.execute(db.kysely);
        assert.deepEqual(await migrateToLatest(db), later);
        const rows = await sql<{ name: string; revision: number; approved: number; has_manifest: number }>`
          select a.name, r.revision, case when r.approved_at is null then 0 else 1 end as approved,
            case when r.manifest is null then 0 else 1 end as has_manifest
          from risk_assessments r join apps a on a.id = r.app_id order by a.name, r.revision`.execute(
          db.kysely,
        );
        assert.deepEqual(
          rows.rows.map((r) => [r.name, Number(r.revision), Number(r.approved), Number(r.has_manifest)]),
          [
            ['bank-reconciliation', 1, 1, 0],
            ['bank-reconciliation', 2, 0, 1],
            ['ledger-match', 1, 0, 1],
            ['team-lunch-poll', 1, 1, 1],
          ],
        );
      } finally {
        await db.destroy();
        await server.stop();
      }
    });
  });

describe('migrations beside other schemas of the same PostgreSQL database', {
  skip: !engines().includes('postgres'),
}, () => {
  test('another schema changing while a server starts never fails its migrations', async () => {
    const url = process.env.MICROAPP_TEST_POSTGRES_URL!;
    const other = `t_other_${Math.random().toString(36).slice(2, 10)}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`create schema ${other}; create table ${other}.notes (id int)`);
    // Another tenant (or test run) altering and recreating its tables all the while.
    let churning = true;
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        await admin.query(`alter table ${other}.notes add column c${i} int`);
        await admin.query(`alter table ${other}.notes drop column c${i}`);
        await admin.query(`drop table ${other}.notes; create table ${other}.notes (id int)`);
      }
    })();
    const server = await startTestServer('postgres');
    const db = server.rawDb();
    try {
      // Kysely's migrator lists tables to find its own before each run. Listing every schema of the
      // database failed about one time in twenty under this churn (42703: a column another schema just
      // dropped); a server start lists four times.
      for (let i = 0; i < 100; i++) {
        const tables = await db.kysely.introspection.getTables({ withInternalKyselyTables: true });
        assert.ok(tables.every((t) => t.schema === server.pgSchema));
        assert.ok(tables.some((t) => t.name === 'kysely_migration'));
      }
      assert.deepEqual(await migrateToLatest(db), []);
    } finally {
      churning = false;
      await churn;
      await admin.query(`drop schema ${other} cascade`);
      await admin.end();
      await db.destroy();
      await server.stop();
    }
  });
});
