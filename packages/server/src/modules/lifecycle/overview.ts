import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { Tier } from '../risk/risk-rules.ts';
import { expiryOf, type LifecycleSettings } from './lifecycle-rules.ts';

const dayMs = 86_400_000;

export type Overview = {
  at: string;
  apps: {
    total: number;
    byTier: Record<string, number>;
    byState: Record<string, number>;
    /** Lifecycle stages; an app with no lifecycle record yet is active. */
    byStage: Record<string, number>;
    /** Apps with a live instance running or idle (started again at its next request). */
    running: number;
  };
  /** New registrations per week, oldest first, for the last 12 weeks (weeks start on Monday, UTC). */
  registrations: { week: string; count: number }[];
  reviewsWaiting: { count: number; oldest: { app: string; tier: string; since: string; days: number }[] };
  expiringSoon: { count: number; apps: { app: string; expiresAt: string; days: number }[] };
  idle: { count: number; apps: { app: string; stage: string; since: string }[] };
  buildsFailing: { count: number; builds: { app: string; at: string; error: string | null }[] };
  topApps: { app: string; requests: number; people: number }[];
};

/**
 * What an admin or an auditor looks at first: the catalog by tier, state, lifecycle stage and running
 * state, the registrations' trend, reviews waiting and for how long, apps expiring within 30 days or idle,
 * builds failing this week, and the apps most used this month. Every figure is read from the database
 * when asked; nothing is cached.
 */
export function createOverview(deps: { db: Kysely<Database>; clock: Clock; settings: LifecycleSettings }) {
  const { db } = deps;
  const counts = (rows: { key: string | null; n: unknown }[]) =>
    Object.fromEntries(rows.map((r) => [r.key ?? 'none', Number(r.n)]));

  async function overview(): Promise<Overview> {
    const now = Date.parse(deps.clock.nowIso());
    const iso = (ms: number) => new Date(ms).toISOString();
    const [byTier, byState, stages, total, running] = await Promise.all([
      db
        .selectFrom('apps')
        .select(['tier as key', (eb) => eb.fn.countAll().as('n')])
        .groupBy('tier')
        .execute(),
      db
        .selectFrom('apps')
        .select(['state as key', (eb) => eb.fn.countAll().as('n')])
        .groupBy('state')
        .execute(),
      db
        .selectFrom('app_lifecycle')
        .select(['stage as key', (eb) => eb.fn.countAll().as('n')])
        .groupBy('stage')
        .execute(),
      db
        .selectFrom('apps')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow(),
      db
        .selectFrom('deployments')
        .select((eb) => eb.fn.count('app_id').distinct().as('n'))
        .where('env', '=', 'live')
        .where('state', 'in', ['running', 'idle'])
        .executeTakeFirstOrThrow(),
    ]);
    const byStage = counts(stages);
    const tracked = Object.values(byStage).reduce((a, b) => a + b, 0);
    byStage.active = (byStage.active ?? 0) + Math.max(0, Number(total.n) - tracked);

    // Registrations per week (Monday, UTC), the last 12.
    const monday = (ms: number) => {
      const d = new Date(ms);
      d.setUTCHours(0, 0, 0, 0);
      return d.getTime() - ((d.getUTCDay() + 6) % 7) * dayMs;
    };
    const first = monday(now) - 11 * 7 * dayMs;
    const recent = await db
      .selectFrom('apps')
      .select('created_at')
      .where('created_at', '>=', iso(first))
      .execute();
    const weeks = Array.from({ length: 12 }, (_, i) => ({
      week: iso(first + i * 7 * dayMs).slice(0, 10),
      count: 0,
    }));
    for (const r of recent) {
      const i = Math.floor((Date.parse(r.created_at) - first) / (7 * dayMs));
      if (weeks[i]) weeks[i].count++;
    }

    const [waiting, waitingCount] = await Promise.all([
      db
        .selectFrom('apps')
        .select(['name', 'tier', 'updated_at'])
        .where('state', '=', 'pending_review')
        .orderBy('updated_at', 'asc')
        .limit(10)
        .execute(),
      db
        .selectFrom('apps')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('state', '=', 'pending_review')
        .executeTakeFirstOrThrow(),
    ]);

    // Expiry follows the lifecycle's own rule (tier limit, manifest date, renewal), for approved apps still live.
    const live = await db
      .selectFrom('apps')
      .leftJoin('app_lifecycle', 'app_lifecycle.app_id', 'apps.id')
      .select([
        'apps.name',
        'apps.tier',
        'apps.created_at',
        'apps.manifest',
        'app_lifecycle.renewed_at',
        'app_lifecycle.stage',
        'app_lifecycle.graduated_to',
      ])
      .where('apps.state', '=', 'approved')
      .execute();
    const soon = live
      .filter((a) => !a.graduated_to && a.stage !== 'decommissioned')
      .map((a) => {
        const expires = (JSON.parse(a.manifest) as Manifest).lifetime?.expires ?? null;
        const expiresAt = expiryOf(
          {
            createdAt: a.created_at,
            tier: a.tier as Tier,
            manifestExpires: expires,
            renewedAt: a.renewed_at,
          },
          deps.settings,
        );
        return { app: a.name, expiresAt, days: Math.ceil((Date.parse(expiresAt) - now) / dayMs) };
      })
      .filter((a) => a.days >= 0 && a.days <= 30)
      .sort((x, y) => x.expiresAt.localeCompare(y.expiresAt));

    const [idle, failing, usage] = await Promise.all([
      db
        .selectFrom('app_lifecycle')
        .innerJoin('apps', 'apps.id', 'app_lifecycle.app_id')
        .select(['apps.name', 'app_lifecycle.stage', 'app_lifecycle.stage_at'])
        .where('app_lifecycle.reason', '=', 'inactive')
        .where('app_lifecycle.stage', 'in', ['warned', 'stopped', 'escalated'])
        .orderBy('app_lifecycle.stage_at', 'asc')
        .execute(),
      db
        .selectFrom('builds')
        .select(['app_name', 'finished_at', 'error'])
        .where('state', '=', 'failed')
        .where('finished_at', '>=', iso(now - 7 * dayMs))
        .orderBy('finished_at', 'desc')
        .execute(),
      db
        .selectFrom('app_usage')
        .innerJoin('apps', 'apps.id', 'app_usage.app_id')
        .select([
          'apps.name',
          (eb) => eb.fn.countAll().as('n'),
          (eb) => eb.fn.count('app_usage.user_email').distinct().as('people'),
        ])
        .where('app_usage.at', '>=', iso(now - 30 * dayMs))
        .groupBy('apps.name')
        .orderBy('n', 'desc')
        .limit(10)
        .execute(),
    ]);

    return {
      at: iso(now),
      apps: {
        total: Number(total.n),
        byTier: counts(byTier),
        byState: counts(byState),
        byStage,
        running: Number(running.n),
      },
      registrations: weeks,
      reviewsWaiting: {
        count: Number(waitingCount.n),
        oldest: waiting.map((w) => ({
          app: w.name,
          tier: w.tier,
          since: w.updated_at,
          days: Math.floor((now - Date.parse(w.updated_at)) / dayMs),
        })),
      },
      expiringSoon: { count: soon.length, apps: soon.slice(0, 10) },
      idle: {
        count: idle.length,
        apps: idle.slice(0, 10).map((i) => ({ app: i.name, stage: i.stage, since: i.stage_at })),
      },
      buildsFailing: {
        count: failing.length,
        builds: failing
          .slice(0, 10)
          .map((b) => ({ app: b.app_name, at: b.finished_at ?? '', error: b.error })),
      },
      topApps: usage.map((u) => ({ app: u.name, requests: Number(u.n), people: Number(u.people) })),
    };
  }

  return { overview };
}

export type OverviewService = ReturnType<typeof createOverview>;
