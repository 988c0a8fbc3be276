import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { Manifest } from './manifest-schema.ts';

/** What one app may ask for, and how many new apps one person may register in a day. */
export type RegistrationLimits = {
  appMaximums?: { memoryMb: number; cpu: number };
  registrationsPerDay?: number;
};

/** Refuses a manifest that asks for more memory or CPU than the platform gives an app, naming each field. */
export function checkAppMaximums(manifest: Manifest, max: RegistrationLimits['appMaximums']): void {
  const asked = manifest.runtime;
  if (!max || !asked) return;
  const tooMuch: { path: string; message: string }[] = [];
  if (asked.memoryMb !== undefined && asked.memoryMb > max.memoryMb)
    tooMuch.push({
      path: '/runtime/memoryMb',
      message: `${asked.memoryMb} MB is more than this platform gives an app (${max.memoryMb} MB)`,
    });
  if (asked.cpu !== undefined && asked.cpu > max.cpu)
    tooMuch.push({
      path: '/runtime/cpu',
      message: `${asked.cpu} CPU is more than this platform gives an app (${max.cpu})`,
    });
  if (tooMuch.length)
    throw new AppError(
      'validation_failed',
      `${tooMuch.map((d) => d.message).join('; ')}: ask for less, or ask the platform team (MICROAPP_APP_MAX_MEMORY_MB, MICROAPP_APP_MAX_CPU)`,
      tooMuch,
    );
}

/** Refuses a person's new app past their registrations of the last 24 hours (by the platform clock). */
export async function checkRegistrationQuota(
  db: Kysely<Database>,
  userId: string,
  perDay: number,
  nowIso: string,
): Promise<void> {
  const since = new Date(Date.parse(nowIso) - 86_400_000).toISOString();
  const row = await db
    .selectFrom('apps')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('registered_by', '=', userId)
    .where('created_at', '>=', since)
    .executeTakeFirst();
  const n = Number(row?.n ?? 0);
  if (n >= perDay)
    throw new AppError(
      'rate_limited',
      `you registered ${n} new apps in the last 24 hours, the most this platform allows one person (${perDay}); try again tomorrow, or ask a platform admin to register it`,
    );
}
