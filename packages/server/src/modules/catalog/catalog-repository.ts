import { type Expression, type Kysely, type SqlBool, sql, type Transaction } from 'kysely';
import type { Dialect } from '../../db/database.ts';
import type { AppsTable, Database } from '../../db/schema.ts';
import { notFound } from '../../errors.ts';
import { type AppView, toAppView } from './app-view.ts';
import { type LifecycleFilter, lifecycleConditions } from './catalog-lifecycle.ts';

type Q = Kysely<Database> | Transaction<Database>;

/** Filters for listing the catalog; every one optional. */
export type AppFilter = {
  q?: string;
  owner?: string;
  department?: string;
  tier?: string;
  state?: string;
  dataClass?: string;
  /** Restricts to apps a creator may see: their department's, or their own. */
  visibleTo?: { department: string | null; email: string; userId: string };
  /** Lifecycle stage, running state and idleness, judged at `now`. */
  lifecycle?: LifecycleFilter & { now: string };
  after?: string;
  limit: number;
};

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Apps holding a search text, past which SQLite checks rows in name order instead of asking the index. */
const commonText = 2000;

/** Reads and writes of the catalog's tables; the approvals module changes app state only through here. */
export function createCatalogRepository(db: Kysely<Database>, dialect: Dialect) {
  async function findApp(q: Q, name: string, forUpdate = false): Promise<AppsTable | undefined> {
    let query = q.selectFrom('apps').selectAll().where('name', '=', name);
    // SQLite has no row locks; its write transactions are already serialized.
    if (forUpdate && dialect === 'postgres') query = query.forUpdate();
    return query.executeTakeFirst();
  }

  async function view(q: Q, app: AppsTable): Promise<AppView> {
    const assessment = await q
      .selectFrom('risk_assessments')
      .selectAll()
      .where('id', '=', app.assessment_id)
      .executeTakeFirstOrThrow();
    const reviews = await q
      .selectFrom('review_decisions')
      .selectAll()
      .where('app_id', '=', app.id)
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .execute();
    return toAppView(app, assessment, reviews);
  }

  /** Views for a page of apps in two queries rather than two per app. */
  async function viewMany(q: Q, apps: AppsTable[]): Promise<AppView[]> {
    if (apps.length === 0) return [];
    const assessments = await q
      .selectFrom('risk_assessments')
      .selectAll()
      .where(
        'id',
        'in',
        apps.map((a) => a.assessment_id),
      )
      .execute();
    const reviews = await q
      .selectFrom('review_decisions')
      .selectAll()
      .where(
        'app_id',
        'in',
        apps.map((a) => a.id),
      )
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .execute();
    const byId = new Map(assessments.map((a) => [a.id, a]));
    return apps.map((app) =>
      toAppView(
        app,
        byId.get(app.assessment_id)!,
        reviews.filter((r) => r.app_id === app.id),
      ),
    );
  }

  async function viewByName(q: Q, name: string): Promise<AppView> {
    const app = await findApp(q, name);
    if (!app) throw notFound(`app ${name}`);
    return view(q, app);
  }

  /** The catalog filtered (all but who may see it), in name order after the cursor. */
  function filtered(filter: AppFilter, search: Expression<SqlBool> | null) {
    let q = db.selectFrom('apps').selectAll('apps').orderBy('apps.name', 'asc').limit(filter.limit);
    if (filter.after) q = q.where('apps.name', '>', filter.after);
    if (filter.owner) q = q.where('apps.owner', '=', filter.owner.toLowerCase());
    if (filter.department) q = q.where('apps.department', '=', filter.department);
    if (filter.tier) q = q.where('apps.tier', '=', filter.tier);
    if (filter.state) q = q.where('apps.state', '=', filter.state);
    if (filter.dataClass) {
      const dc = filter.dataClass;
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('app_data_classes')
            .select('app_data_classes.app_id')
            .whereRef('app_data_classes.app_id', '=', 'apps.id')
            .where('app_data_classes.data_class', '=', dc),
        ),
      );
    }
    if (search) q = q.where(search);
    if (filter.lifecycle)
      for (const c of lifecycleConditions(filter.lifecycle, filter.lifecycle.now)) q = q.where(c);
    return q;
  }

  /**
   * Apps whose name, department, owner or purpose holds the text, in any case, as a condition on apps.
   * The apps holding it are looked up first, up to a bound, through a trigram index where the text has
   * three characters or more (SQLite's FTS5, PostgreSQL's pg_trgm: migration 0024). A rarer text is then
   * a list of ids; a common one is checked row by row as the catalog is read in name order, where a page
   * fills within a few thousand rows.
   */
  async function matching(text: string): Promise<Expression<SqlBool>> {
    const lower = text.toLowerCase();
    const pattern = `%${escapeLike(lower)}%`;
    let found: { id: string }[];
    let rowByRow: Expression<SqlBool>;
    if (dialect === 'postgres') {
      rowByRow = sql<SqlBool>`apps.search_text like ${pattern} escape '\\'`;
      found = (
        await sql<{ id: string }>`select id from apps where search_text like ${pattern} escape '\\'
          limit ${commonText}`.execute(db)
      ).rows;
    } else {
      rowByRow = sql<SqlBool>`exists (select 1 from app_search where app_search.app_id = apps.id
        and app_search.text like ${pattern} escape '\\')`;
      // An FTS5 phrase: with the trigram tokenizer, a substring match. Quotes inside are doubled. Under
      // three characters the trigram index cannot help, and the search text is read whole.
      const phrase = `"${lower.replaceAll('"', '""')}"`;
      found = (
        [...lower].length >= 3
          ? await sql<{ id: string }>`select app_search.app_id as id from app_search_fts
              join app_search on app_search.rid = app_search_fts.rowid
              where app_search_fts match ${phrase} limit ${commonText}`.execute(db)
          : await sql<{ id: string }>`select app_id as id from app_search
              where text like ${pattern} escape '\\' limit ${commonText}`.execute(db)
      ).rows;
    }
    if (found.length >= commonText) return rowByRow;
    if (found.length === 0) return sql<SqlBool>`1 = 0`;
    return sql<SqlBool>`apps.id in (${sql.join(found.map((f) => f.id))})`;
  }

  async function list(filter: AppFilter): Promise<AppsTable[]> {
    const search = filter.q ? await matching(filter.q) : null;
    if (!filter.visibleTo) return filtered(filter, search).execute();
    // A creator sees their department's apps, their own, and those they registered: a page from each (each
    // read in name order through its own index), merged by the database so the order is its collation's.
    // An OR of the three would read every row that passes the other filters.
    const v = filter.visibleTo;
    const page = (column: 'department' | 'owner' | 'registered_by', value: string, alias: string) =>
      db.selectFrom(filtered(filter, search).where(`apps.${column}`, '=', value).as(alias)).selectAll();
    let merged = page('owner', v.email, 'by_owner').union(page('registered_by', v.userId, 'by_registrant'));
    if (v.department) merged = merged.union(page('department', v.department, 'by_department'));
    return db
      .selectFrom(merged.as('visible'))
      .selectAll()
      .orderBy('name', 'asc')
      .limit(filter.limit)
      .execute() as Promise<AppsTable[]>;
  }

  async function setDataClasses(trx: Transaction<Database>, appId: string, classes: string[]): Promise<void> {
    await trx.deleteFrom('app_data_classes').where('app_id', '=', appId).execute();
    if (classes.length > 0)
      await trx
        .insertInto('app_data_classes')
        .values(classes.map((c) => ({ app_id: appId, data_class: c })))
        .execute();
  }

  return { findApp, view, viewMany, viewByName, list, setDataClasses };
}

export type CatalogRepository = ReturnType<typeof createCatalogRepository>;
