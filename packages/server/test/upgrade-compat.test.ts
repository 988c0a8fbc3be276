// Rolling upgrades: a server keeps running on a database a newer release migrated when that release only
// added to the schema, and refuses, saying what to do, when it changed what this one reads.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, schemaCompatibility } from '../src/db/migrations.ts';
import { engines, startTestServer } from './harness.ts';

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
  });
