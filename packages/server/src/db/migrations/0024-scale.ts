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
};
