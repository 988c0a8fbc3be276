import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { notFound } from '../../errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { RiskInput } from '../risk/risk-evaluator.ts';
import type { Tier } from '../risk/risk-rules.ts';
import { toReviewView } from './app-view.ts';
import type { CatalogRepository } from './catalog-repository.ts';
import { canView, type RevisionView } from './catalog-rules.ts';
import type { Manifest } from './manifest-schema.ts';

/** Every registration of an app, newest first: what the risk rules saw and how reviewers decided. */
export async function revisionsOf(
  db: Kysely<Database>,
  repo: Pick<CatalogRepository, 'findApp'>,
  principal: Principal,
  name: string,
): Promise<RevisionView[]> {
  const app = await repo.findApp(db, name);
  if (!app || !canView(principal, app)) throw notFound(`app ${name}`);
  const [assessments, reviews] = await Promise.all([
    db
      .selectFrom('risk_assessments')
      .selectAll()
      .where('app_id', '=', app.id)
      .orderBy('revision', 'desc')
      .execute(),
    db.selectFrom('review_decisions').selectAll().where('app_id', '=', app.id).execute(),
  ]);
  return assessments.map((a) => ({
    revision: Number(a.revision),
    tier: a.tier as Tier,
    score: Number(a.score),
    inputs: JSON.parse(a.inputs) as RiskInput,
    manifest: a.manifest ? (JSON.parse(a.manifest) as Manifest) : null,
    approved: a.approved_at !== null,
    at: a.created_at,
    reviews: reviews.filter((r) => Number(r.revision) === Number(a.revision)).map(toReviewView),
  }));
}
