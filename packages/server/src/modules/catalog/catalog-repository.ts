import { type Kysely, sql, type Transaction } from 'kysely';
import type { Dialect } from '../../db/database.ts';
import type { AppsTable, Database } from '../../db/schema.ts';
import { notFound } from '../../errors.ts';
import { type AppView, toAppView } from './app-view.ts';

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
  after?: string;
  limit: number;
};

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

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

  async function list(filter: AppFilter): Promise<AppsTable[]> {
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
    if (filter.q) {
      const pattern = `%${escapeLike(filter.q.toLowerCase())}%`;
      q = q.where((eb) =>
        eb.or([
          sql<boolean>`lower(apps.name) like ${pattern} escape '\\'`,
          sql<boolean>`lower(apps.manifest) like ${pattern} escape '\\'`,
        ]),
      );
    }
    if (filter.visibleTo) {
      const v = filter.visibleTo;
      q = q.where((eb) =>
        eb.or([
          ...(v.department ? [eb('apps.department', '=', v.department)] : []),
          eb('apps.owner', '=', v.email),
          eb('apps.registered_by', '=', v.userId),
        ]),
      );
    }
    return q.execute();
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
