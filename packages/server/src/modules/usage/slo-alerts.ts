import { type Kysely, sql } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { NotificationService } from '../notifications/notification-service.ts';

/** Availability objectives by tier, over a 30-day window: the share of requests that must not fail (5xx). */
export const availabilityObjective: Record<string, number> = { low: 0.99, medium: 0.995, high: 0.999 };

/** Latency objectives by tier: the 95th percentile of request time, in milliseconds. */
export const p95ObjectiveMs: Record<string, number> = { low: 2000, medium: 1000, high: 500 };

/**
 * Multi-window burn-rate alerting (the SRE workbook's fast-burn page): an app's owner is told when its
 * error budget burns at 14.4 times the sustainable rate over the last hour and the last five minutes
 * alike (2% of a month's budget in an hour, and still burning). Fewer than 20 requests in the hour is
 * too little to judge.
 */
export const burnPolicy = { longMs: 3_600_000, shortMs: 300_000, threshold: 14.4, minRequests: 20 };

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
    const long = await window(burnPolicy.longMs);
    const short = await window(burnPolicy.shortMs);
    const candidates = [...long].filter(([, w]) => w.requests >= burnPolicy.minRequests);
    if (!candidates.length) return { checked: long.size, alerts: 0 };
    const apps = await deps.db
      .selectFrom('apps')
      .select(['id', 'name', 'owner', 'tier'])
      .where(
        'id',
        'in',
        candidates.map(([id]) => id),
      )
      .execute();
    const hour = deps.clock.nowIso().slice(0, 13);
    let alerts = 0;
    for (const app of apps) {
      const budget = 1 - (availabilityObjective[app.tier] ?? 0.99);
      const l = long.get(app.id)!;
      const target = p95ObjectiveMs[app.tier] ?? 2000;
      const slowShare = (l.over[target] ?? 0) / l.requests;
      if (slowShare > 0.05) {
        const created = await deps.notifications.notify(deps.db, {
          recipient: app.owner,
          app: app.name,
          kind: 'slo_latency',
          subject: `${app.name} is slow: ${Math.round(slowShare * 100)}% of requests took over ${target} ms in the last hour`,
          body: `The ${app.tier}-tier objective is that 95% of requests finish within ${target} ms; in the last hour ${l.over[target]} of ${l.requests} requests to ${app.name} took longer. Look at what changed: roll back if a new version is at fault.`,
          action: `microapp rollback ${app.name}`,
          dedupeKey: `latency:${app.id}:${hour}`,
        });
        if (created) alerts++;
      }
      if (l.errors === 0) continue;
      const s = short.get(app.id) ?? { requests: 0, errors: 0 };
      const burnLong = l.errors / l.requests / budget;
      const burnShort = s.requests ? s.errors / s.requests / budget : 0;
      if (burnLong < burnPolicy.threshold || burnShort < burnPolicy.threshold) continue;
      const created = await deps.notifications.notify(deps.db, {
        recipient: app.owner,
        app: app.name,
        kind: 'slo_burn',
        subject: `${app.name} is failing: ${Math.round((l.errors / l.requests) * 100)}% of requests in the last hour`,
        body: `${l.errors} of ${l.requests} requests to ${app.name} failed with a server error in the last hour (${s.errors} of ${s.requests} in the last 5 minutes). At this rate its ${app.tier}-tier objective of ${(availabilityObjective[app.tier] ?? 0.99) * 100}% availability is used up in ${Math.max(1, Math.round((30 * 24) / burnLong))} hours. Look at what changed: roll back if a new version is at fault.`,
        action: `microapp rollback ${app.name}`,
        dedupeKey: `slo:${app.id}:${hour}`,
      });
      if (created) alerts++;
    }
    return { checked: long.size, alerts };
  }

  return { run };
}
