import { type Kysely, sql } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { NotificationService } from '../notifications/notification-service.ts';

/**
 * Unusual data volume: an app that sent, in the last hour, more than `factor` times its usual hourly volume
 * (the average over the week before) and at least `minBytes`. A sudden export can be a leak; its owner hears
 * about it within the hour, once per app and hour. An app with no history is judged against `minBytes` alone.
 */
export const volumePolicy = { factor: 10, minBytes: 5 * 1024 * 1024, baselineHours: 7 * 24 };

export function createEgressAlerts(deps: {
  db: Kysely<Database>;
  clock: Clock;
  notifications: Pick<NotificationService, 'notify'>;
}) {
  async function run() {
    const now = deps.clock.now().getTime();
    const hourAgo = new Date(now - 3_600_000).toISOString();
    const weekAgo = new Date(now - 3_600_000 * (volumePolicy.baselineHours + 1)).toISOString();
    const sent = (since: string, until?: string) =>
      deps.db
        .selectFrom('app_egress')
        .select(['app_id', sql<number>`sum(bytes_out)`.as('bytes')])
        .where('decision', '=', 'allowed')
        .where('at', '>=', since)
        .$if(until !== undefined, (q) => q.where('at', '<', until!))
        .groupBy('app_id')
        .execute();
    const recent = (await sent(hourAgo)).filter((r) => Number(r.bytes) >= volumePolicy.minBytes);
    if (recent.length === 0) return { checked: 0, alerts: 0 };
    const before = new Map((await sent(weekAgo, hourAgo)).map((r) => [r.app_id, Number(r.bytes)]));
    const hour = new Date(now).toISOString().slice(0, 13);
    let alerts = 0;
    for (const r of recent) {
      const usual = (before.get(r.app_id) ?? 0) / volumePolicy.baselineHours;
      const bytes = Number(r.bytes);
      if (bytes <= volumePolicy.factor * usual) continue;
      const app = await deps.db
        .selectFrom('apps')
        .select(['id', 'name', 'owner'])
        .where('id', '=', r.app_id)
        .executeTakeFirst();
      if (!app) continue;
      const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
      const created = await deps.notifications.notify(deps.db, {
        recipient: app.owner,
        app: app.name,
        kind: 'egress_volume',
        subject: `${app.name} sent ${mb(bytes)} out in the last hour, ${usual > 0 ? `${Math.round(bytes / usual)} times its usual` : 'with no history'}`,
        body: `${app.name} sent ${mb(bytes)} to outside services in the last hour; its usual is ${mb(usual)} an hour over the past week. If you did not expect an export of this size, stop the app and look at what it sent (the platform keeps every destination and byte count).`,
        action: `/apps/${app.name}#stop`,
        dedupeKey: `egress-volume:${app.id}:${hour}`,
      });
      if (created) alerts++;
    }
    return { checked: recent.length, alerts };
  }
  return { run };
}
