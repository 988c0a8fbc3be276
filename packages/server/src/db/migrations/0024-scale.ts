import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Migrations for a company's scale: a catalog of 100,000 apps listed and searched through indexes.
// Shipped: never edit one, add the next (../migrations.ts lists every file).

/** What a catalog search looks in, lower-cased: the name, department, owner and purpose. */
const searchText = (row: 'new' | '') => {
  const c = (column: string) => (row ? `${row}.${column}` : column);
  return `lower(${c('name')} || ' ' || coalesce(${c('department')}, '') || ' ' || ${c('owner')} || ' ' || coalesce(json_extract(${c('manifest')}, '$.purpose'), ''))`;
};

/** The schema pg_trgm is installed in, installing it (in public, where there is one) if this database lets us. */
async function trigramSchema(db: AnyDb): Promise<string | null> {
  const installed = async () =>
    (
      await sql<{ schema: string }>`select n.nspname as schema from pg_extension e
        join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_trgm'`.execute(db)
    ).rows[0]?.schema ?? null;
  const found = await installed();
  if (found) return found;
  const available = await sql`select 1 from pg_available_extensions where name = 'pg_trgm'`.execute(db);
  if (available.rows.length === 0) return null;
  // pg_trgm is a trusted extension: the database's owner may create it. In public, so that dropping the
  // platform's own schema never takes it (and other schemas' indexes) along.
  const publicSchema = await sql`select 1 from pg_namespace where nspname = 'public'`.execute(db);
  await sql`savepoint pg_trgm`.execute(db);
  try {
    if (publicSchema.rows.length > 0)
      await sql`create extension if not exists pg_trgm with schema public`.execute(db);
    else await sql`create extension if not exists pg_trgm`.execute(db);
    await sql`release savepoint pg_trgm`.execute(db);
  } catch {
    // No right to create it, or another server created it at the same moment.
    await sql`rollback to savepoint pg_trgm`.execute(db);
  }
  return installed();
}

export const scale: Record<string, (dialect: Dialect) => Migration> = {
  '0024_catalog_at_scale': (dialect) => ({
    async up(db: AnyDb) {
      // A creator sees their department's apps, their own and those they registered: one index per way,
      // each in name order, so a page of the catalog reads as many rows as it shows (catalog-repository.ts).
      for (const column of ['department', 'owner', 'registered_by'])
        await db.schema.createIndex(`apps_${column}_name`).on('apps').columns([column, 'name']).execute();

      if (dialect === 'sqlite') {
        // Search by substring through a trigram index (FTS5). The text lives in a table with an INTEGER
        // PRIMARY KEY, which VACUUM never renumbers, and triggers keep it in step with every write to apps.
        await sql`create table app_search (
          rid integer primary key,
          app_id text not null unique references apps(id),
          text text not null
        )`.execute(db);
        await sql`create virtual table app_search_fts using fts5(
          text, content = 'app_search', content_rowid = 'rid', tokenize = 'trigram'
        )`.execute(db);
        await sql`create trigger app_search_ai after insert on app_search begin
          insert into app_search_fts(rowid, text) values (new.rid, new.text);
        end`.execute(db);
        await sql`create trigger app_search_ad after delete on app_search begin
          insert into app_search_fts(app_search_fts, rowid, text) values ('delete', old.rid, old.text);
        end`.execute(db);
        await sql`create trigger app_search_au after update on app_search begin
          insert into app_search_fts(app_search_fts, rowid, text) values ('delete', old.rid, old.text);
          insert into app_search_fts(rowid, text) values (new.rid, new.text);
        end`.execute(db);
        await sql
          .raw(`create trigger apps_search_ai after insert on apps begin
            insert into app_search(app_id, text) values (new.id, ${searchText('new')});
          end`)
          .execute(db);
        await sql
          .raw(`create trigger apps_search_au after update of name, owner, department, manifest on apps begin
            update app_search set text = ${searchText('new')} where app_id = new.id;
          end`)
          .execute(db);
        await sql`create trigger apps_search_bd before delete on apps begin
          delete from app_search where app_id = old.id;
        end`.execute(db);
        await sql
          .raw(`insert into app_search(app_id, text) select id, ${searchText('')} from apps`)
          .execute(db);
        return;
      }

      // PostgreSQL: the text as a generated column, searched through a trigram index (pg_trgm) where the
      // database has it; without it a search reads every row, and still finds the same apps.
      await sql`alter table apps add column search_text text generated always as (lower(
        name || ' ' || coalesce(department, '') || ' ' || owner || ' ' || coalesce(manifest::jsonb ->> 'purpose', '')
      )) stored`.execute(db);
      const schema = await trigramSchema(db);
      if (schema)
        await sql`create index apps_search_trgm on apps using gin (search_text ${sql.id(schema)}.gin_trgm_ops)`.execute(
          db,
        );
    },
  }),
  '0025_audit_queue': (dialect) => ({
    async up(db: AnyDb) {
      // A change commits with its audit event in this queue, without waiting on the chain's one lock; the
      // sequencer then chains what has committed, many events in one transaction (audit-service.ts).
      await db.schema
        .createTable('audit_queue')
        .addColumn('position', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('occurred_at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('request_id', 'text')
        .addColumn('source_ip', 'text')
        .addColumn('summary', 'text', (c) => c.notNull())
        .execute();
    },
  }),
  '0026_change_generation': (dialect) => ({
    async up(db: AnyDb) {
      // The gateway keeps what it reads on every request (tokens, sessions, apps, lifecycle holds) until
      // something it depends on changes; these triggers say when (db/read-cache.ts). Columns written on
      // every use (a token's last use) are left out.
      const watched: [table: string, events: string[]][] = [
        ['users', ['update', 'delete']],
        ['api_tokens', ['update of revoked_at, expires_at, scopes, user_id', 'delete']],
        ['sessions', ['update of revoked_at, expires_at, user_id', 'delete']],
        ['apps', ['insert', 'update', 'delete']],
        ['risk_assessments', ['insert', 'update', 'delete']],
        ['review_decisions', ['insert', 'update', 'delete']],
        ['app_lifecycle', ['insert', 'update', 'delete']],
      ];
      if (dialect === 'sqlite') {
        // One process writes SQLite: a counter, read at the start of each request, in the same transaction
        // as the change.
        await sql`create table change_generation (id integer primary key, value integer not null)`.execute(
          db,
        );
        await sql`insert into change_generation (id, value) values (1, 0)`.execute(db);
        for (const [table, events] of watched)
          for (const [i, event] of events.entries())
            await sql
              .raw(`create trigger ${table}_changed_${i} after ${event} on ${table} begin
                update change_generation set value = value + 1 where id = 1;
              end`)
              .execute(db);
        return;
      }
      // PostgreSQL: every replica listens; a notification is delivered when the change commits (a counter
      // row would serialize the writes on these tables instead).
      await sql`create function microapp_changed() returns trigger language plpgsql as $$
        begin perform pg_notify('microapp_changes', current_schema()); return null; end $$`.execute(db);
      for (const [table, events] of watched)
        await sql
          .raw(`create trigger ${table}_changed after ${events.join(' or ')} on ${table}
            for each statement execute function microapp_changed()`)
          .execute(db);
    },
  }),
};
