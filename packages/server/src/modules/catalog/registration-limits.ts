import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { startCommandOf } from '../runtime/start-command.ts';
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

/** Names the platform sets itself, or that would change how the runtime starts the app. */
const reservedEnv =
  /^(PORT|PATH|HOME|NODE_ENV|NODE_OPTIONS|NODE_PATH|NODE_EXTRA_CA_CERTS|LD_[A-Z0-9_]*|MICROAPP_[A-Z0-9_]*)$/;
/** Names that say they hold a secret: those belong in the app's secrets, sealed and never in a manifest. */
const secretLike = /(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL)/;

/** Refuses a manifest's `runtime.env` that sets what the platform sets, or that looks like a secret. */
export function checkRuntimeEnv(manifest: Manifest): void {
  const problems: { path: string; message: string }[] = [];
  for (const name of Object.keys(manifest.runtime?.env ?? {})) {
    if (reservedEnv.test(name))
      problems.push({
        path: `/runtime/env/${name}`,
        message: `${name} is set by the platform, not by the manifest`,
      });
    else if (secretLike.test(name))
      problems.push({
        path: `/runtime/env/${name}`,
        message: `${name} looks like a secret: store it with \`microapp secrets set ${name} --app ${manifest.name}\` instead (the app reads it from /run/secrets/${name})`,
      });
  }
  if (problems.length)
    throw new AppError('validation_failed', problems.map((p) => p.message).join('; '), problems);
}

/** Refuses a `runtime.command` the platform would not start (see runtime/start-command.ts). */
export function checkRuntimeCommand(manifest: Manifest): void {
  const r = startCommandOf(manifest.runtime);
  if (!r.ok) throw new AppError('validation_failed', r.problems.map((p) => p.message).join('; '), r.problems);
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
