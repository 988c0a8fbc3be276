import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';

/** Refuses a build past the hourly number one person may ask for (admins are not held to it). */
export async function checkBuildQuota(db: Kysely<Database>, clock: Clock, email: string, perHour: number) {
  const since = new Date(Date.parse(clock.nowIso()) - 3_600_000).toISOString();
  const row = await db
    .selectFrom('builds')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('requested_by', '=', email)
    .where('created_at', '>=', since)
    .executeTakeFirst();
  if (Number(row?.n ?? 0) >= perHour)
    throw new AppError(
      'rate_limited',
      `you asked for ${row?.n} builds in the last hour, the most this platform allows one person (${perHour}); wait a while, or build locally with \`microapp ci\``,
    );
}
