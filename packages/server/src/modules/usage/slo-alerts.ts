import { type Kysely, sql } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { NotificationService } from '../notifications/notification-service.ts';

/** Availability objectives by tier, over a 30-day window: the share of requests that must not fail (5xx). */
export const availabilityObjective: Record<string, number> = { low: 0.99, medium: 0.995, high: 0.999 };

/** Latency objectives by tier: the 95th percentile of request time, in milliseconds. */
export const p95ObjectiveMs: Record<string, number> = { low: 2000, medium: 1000, high: 500 };

const minute = 60_000;
const hour = 60 * minute;

/**
 * Multi-window, multi-burn-rate alerting (the SRE workbook's table): an alert fires when the error budget
 * burns at the threshold over the long window and, still now, over the short one. Fastest first: when a
 * faster alert holds, the slower ones are not sent. Fewer than 20 requests in the long window is too
 * little to judge. `every` is how often the same alert may be repeated.
 */
export const burnAlerts = [
  // 2% of a 30-day budget in an hour: page.
  {
    kind: 'slo_burn',
    longMs: hour,
    shortMs: 5 * minute,
    threshold: 14.4,
    every: hour,
    spent: '2% of a month’s error budget in an hour',
  },
  // 5% in six hours: page.
  {
    kind: 'slo_burn',
    longMs: 6 * hour,
    shortMs: 30 * minute,
    threshold: 6,
    every: 6 * hour,
    spent: '5% of a month’s error budget in six hours',
  },
  // 10% in three days: a ticket, not a page.
  {
    kind: 'slo_budget',
    longMs: 72 * hour,
    shortMs: 6 * hour,
    threshold: 1,
    every: 24 * hour,
    spent: '10% of a month’s error budget in three days',
  },
] as const;
export const burnPolicy = { minRequests: 20 };

/** "the last hour", "the last 6 hours", "the last 3 days". */
const span = (ms: number) =>
  ms < hour
    ? `${ms / minute} minutes`
    : ms === hour
      ? 'hour'
      : ms < 48 * hour
        ? `${ms / hour} hours`
        : `${ms / (24 * hour)} days`;

export function createSloAlerts(deps: {
  db: Kysely<Database>;
  clock: Clock;
  notifications: Pick<NotificationService, 'notify'>;
  flush: () => Promise<void>;
}) {
  async function window(sinceMs: number) {
    const since = new Date(deps.clock.now().getTime() - sinceMs).toISOString();
    const rows = await deps.db
      .selectFrom('app_usage')
      .select((eb) => [
        'app_id',
        eb.fn.countAll().as('requests'),
        sql<number>`sum(case when status >= 500 then 1 else 0 end)`.as('errors'),
        // p95 is above a target exactly when more than 5% of requests took longer than it.
        sql<number>`sum(case when latency_ms > 500 then 1 else 0 end)`.as('over500'),
        sql<number>`sum(case when latency_ms > 1000 then 1 else 0 end)`.as('over1000'),
        sql<number>`sum(case when latency_ms > 2000 then 1 else 0 end)`.as('over2000'),
      ])
      .where('at', '>=', since)
      .groupBy('app_id')
      .execute();
    return new Map(
      rows.map((r) => {
        const over: Record<number, number> = {
          500: Number(r.over500 ?? 0),
          1000: Number(r.over1000 ?? 0),
          2000: Number(r.over2000 ?? 0),
        };
        return [r.app_id, { requests: Number(r.requests), errors: Number(r.errors ?? 0), over }];
      }),
    );
  }

  async function run() {
    await deps.flush();
    const durations = [...new Set(burnAlerts.flatMap((a) => [a.longMs, a.shortMs]))];
    const windows = new Map(await Promise.all(durations.map(async (ms) => [ms, await window(ms)] as const)));
    const long = windows.get(hour)!;
    const longest = windows.get(Math.max(...durations))!;
    const candidates = [...longest].filter(([, w]) => w.requests >= burnPolicy.minRequests);
    if (!candidates.length) return { checked: longest.size, alerts: 0 };
    const apps = await deps.db
      .selectFrom('apps')
      .select(['id', 'name', 'owner', 'tier'])
      .where(
        'id',
        'in',
        candidates.map(([id]) => id),
      )
      .execute();
    const now = deps.clock.now().getTime();
    let alerts = 0;
    for (const app of apps) {
      const budget = 1 - (availabilityObjective[app.tier] ?? 0.99);
      const l = long.get(app.id) ?? { requests: 0, errors: 0, over: {} as Record<number, number> };
      const target = p95ObjectiveMs[app.tier] ?? 2000;
      const slowShare = l.requests >= burnPolicy.minRequests ? (l.over[target] ?? 0) / l.requests : 0;
      if (slowShare > 0.05) {
        const created = await deps.notifications.notify(deps.db, {
          recipient: app.owner,
          app: app.name,
          kind: 'slo_latency',
          subject: `${app.name} is slow: ${Math.round(slowShare * 100)}% of requests took over ${target} ms in the last hour`,
          body: `The ${app.tier}-tier objective is that 95% of requests finish within ${target} ms; in the last hour ${l.over[target]} of ${l.requests} requests to ${app.name} took longer. Look at what changed: roll back if a new version is at fault.`,
          action: `/apps/${app.name}#roll-back`,
          dedupeKey: `latency:${app.id}:${deps.clock.nowIso().slice(0, 13)}`,
        });
        if (created) alerts++;
      }
      for (const rule of burnAlerts) {
        const lw = windows.get(rule.longMs)!.get(app.id);
        const sw = windows.get(rule.shortMs)!.get(app.id) ?? { requests: 0, errors: 0 };
        if (!lw || lw.requests < burnPolicy.minRequests || lw.errors === 0) continue;
        const burnLong = lw.errors / lw.requests / budget;
        const burnShort = sw.requests ? sw.errors / sw.requests / budget : 0;
        if (burnLong < rule.threshold || burnShort < rule.threshold) continue;
        const ticket = rule.kind === 'slo_budget';
        const created = await deps.notifications.notify(deps.db, {
          recipient: app.owner,
          app: app.name,
          kind: rule.kind,
          subject: ticket
            ? `${app.name} is using up its error budget: ${Math.round((lw.errors / lw.requests) * 1000) / 10}% of requests failed in the last ${span(rule.longMs)}`
            : `${app.name} is failing: ${Math.round((lw.errors / lw.requests) * 100)}% of requests in the last ${span(rule.longMs)}`,
          body: `${lw.errors} of ${lw.requests} requests to ${app.name} failed with a server error in the last ${span(rule.longMs)} (${sw.errors} of ${sw.requests} in the last ${span(rule.shortMs)}): ${rule.spent} or faster. At this rate its ${app.tier}-tier objective of ${(availabilityObjective[app.tier] ?? 0.99) * 100}% availability is used up in ${Math.max(1, Math.round((30 * 24) / burnLong))} hours. ${ticket ? 'Not urgent, but it will not fix itself: look at the errors in its logs.' : 'Look at what changed: roll back if a new version is at fault.'}`,
          action: ticket ? `/apps/${app.name}#logs` : `/apps/${app.name}#roll-back`,
          dedupeKey: `${rule.kind}:${rule.longMs}:${app.id}:${Math.floor(now / rule.every)}`,
        });
        if (created) alerts++;
        // The fastest alert that holds is the one sent; slower ones would say the same, later.
        break;
      }
    }
    return { checked: longest.size, alerts };
  }

  return { run };
}
