import { type Expression, type Kysely, type SqlBool, sql } from 'kysely';
import type { AppsTable, Database } from '../../db/schema.ts';
import { expiryOf } from '../lifecycle/lifecycle-rules.ts';
import type { Tier } from '../risk/risk-rules.ts';
import type { Manifest } from './manifest-schema.ts';

/** Lifecycle stages as the catalog filters them; an app with no lifecycle record yet is active. */
export const catalogStages = ['active', 'warned', 'stopped', 'escalated', 'decommissioned'] as const;

/** Where an app is in its life, for a catalog row: beside its approval, which says nothing of this. */
export type LifecycleFacts = {
  stage: (typeof catalogStages)[number];
  /** A live instance runs, or is idle and starts again at its next request. */
  running: boolean;
  /** The last request through the gateway; null when nobody has used it yet. */
  lastUsedAt: string | null;
  /** When it stops unless renewed. */
  expiresAt: string;
};

/** The lifecycle filters the catalog answers in SQL. */
export type LifecycleFilter = {
  stage?: (typeof catalogStages)[number];
  running?: boolean;
  /** Nobody used it for at least this many days (never used apps count from their registration). */
  idleDays?: number;
};

/** Conditions on `apps` for the lifecycle filters, as of `now`. */
export function lifecycleConditions(f: LifecycleFilter, now: string): Expression<SqlBool>[] {
  const out: Expression<SqlBool>[] = [];
  if (f.stage === 'active')
    out.push(sql<SqlBool>`not exists (select 1 from app_lifecycle l where l.app_id = apps.id
      and l.stage <> 'active')`);
  else if (f.stage)
    out.push(sql<SqlBool>`exists (select 1 from app_lifecycle l where l.app_id = apps.id
      and l.stage = ${f.stage})`);
  if (f.running !== undefined) {
    const live = sql<SqlBool>`exists (select 1 from deployments d where d.app_id = apps.id
      and d.env = 'live' and d.state in ('running', 'idle'))`;
    out.push(f.running ? live : sql<SqlBool>`not ${live}`);
  }
  if (f.idleDays !== undefined) {
    const cutoff = new Date(Date.parse(now) - f.idleDays * 86_400_000).toISOString();
    out.push(sql<SqlBool>`not exists (select 1 from app_activity a where a.app_id = apps.id
      and a.last_used_at > ${cutoff}) and apps.created_at <= ${cutoff}`);
  }
  return out;
}

/** The lifecycle facts of a page of apps, in three queries. */
export async function lifecycleFactsOf(
  db: Kysely<Database>,
  apps: AppsTable[],
  maxLifetimeDays: Record<Tier, number>,
): Promise<Map<string, LifecycleFacts>> {
  const facts = new Map<string, LifecycleFacts>();
  if (apps.length === 0) return facts;
  const ids = apps.map((a) => a.id);
  const [stages, activity, live] = await Promise.all([
    db
      .selectFrom('app_lifecycle')
      .select(['app_id', 'stage', 'renewed_at'])
      .where('app_id', 'in', ids)
      .execute(),
    db.selectFrom('app_activity').select(['app_id', 'last_used_at']).where('app_id', 'in', ids).execute(),
    db
      .selectFrom('deployments')
      .select('app_id')
      .distinct()
      .where('app_id', 'in', ids)
      .where('env', '=', 'live')
      .where('state', 'in', ['running', 'idle'])
      .execute(),
  ]);
  const stageOf = new Map(stages.map((s) => [s.app_id, s]));
  const usedAt = new Map(activity.map((a) => [a.app_id, a.last_used_at]));
  const running = new Set(live.map((d) => d.app_id));
  for (const app of apps) {
    const lifecycle = stageOf.get(app.id);
    facts.set(app.id, {
      stage: (lifecycle?.stage ?? 'active') as LifecycleFacts['stage'],
      running: running.has(app.id),
      lastUsedAt: usedAt.get(app.id) ?? null,
      expiresAt: expiresAtOf(app, lifecycle?.renewed_at ?? null, maxLifetimeDays),
    });
  }
  return facts;
}

// The expiry worked out for a row (a kept one is the same object until the app changes), by its renewal.
const expiries = new WeakMap<AppsTable, { renewedAt: string | null; lifetimes: object; expiresAt: string }>();

function expiresAtOf(app: AppsTable, renewedAt: string | null, maxLifetimeDays: Record<Tier, number>) {
  const kept = expiries.get(app);
  if (kept && kept.renewedAt === renewedAt && kept.lifetimes === maxLifetimeDays) return kept.expiresAt;
  const expiresAt = expiryOf(
    {
      createdAt: app.created_at,
      tier: app.tier as Tier,
      manifestExpires: (JSON.parse(app.manifest) as Manifest).lifetime?.expires ?? null,
      renewedAt,
    },
    { maxLifetimeDays },
  );
  expiries.set(app, { renewedAt, lifetimes: maxLifetimeDays, expiresAt });
  return expiresAt;
}
