import type { Kysely } from 'kysely';
import { type AdjustableClock, parseDuration } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { JobRunner } from './job-runner.ts';

/**
 * `microapp dev clock advance`: on a `--dev` server, moves the platform clock forward and runs the jobs
 * that became due, so a person can walk a schedule of weeks in minutes. Elsewhere it is refused, and the
 * attempt is audited.
 */
const offsetKey = 'dev_clock_offset_ms';

export function createDevClock(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  clock: AdjustableClock;
  jobs: Pick<JobRunner, 'runDue' | 'list'>;
  dev: boolean;
}) {
  async function advance(text: string, ctx: AuditContext) {
    if (!deps.dev) {
      await deps.db.transaction().execute((trx) =>
        deps.audit.record(trx, ctx, {
          action: 'dev.clock_refused',
          targetType: 'clock',
          target: 'platform',
          reason: 'the clock can only be moved on a server started with --dev',
          summary: { advance: text },
        }),
      );
      throw new AppError('forbidden', 'the clock can only be moved on a server started with --dev');
    }
    const ms = parseDuration(text);
    if (ms === null || ms === 0 || ms > 3650 * 86_400_000)
      throw new AppError(
        'bad_request',
        `"${text}" is not a duration: use e.g. 61d, 12h, 2w or 1d12h (at most 10 years)`,
      );
    deps.clock.advance(ms);
    const offset = String(deps.clock.offsetMs());
    await deps.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('platform_settings')
        .values({ key: offsetKey, value: offset })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: offset }))
        .execute();
      await deps.audit.record(trx, ctx, {
        action: 'dev.clock_advanced',
        targetType: 'clock',
        target: 'platform',
        summary: { advance: text, now: deps.clock.nowIso() },
      });
    });
    const ran = await deps.jobs.runDue();
    return { now: deps.clock.nowIso(), offsetMs: deps.clock.offsetMs(), ran, jobs: await deps.jobs.list() };
  }
  /** On a --dev server's start: the clock continues where it was moved to, so schedules never run backward. */
  async function resume() {
    if (!deps.dev) return;
    const row = await deps.db
      .selectFrom('platform_settings')
      .select('value')
      .where('key', '=', offsetKey)
      .executeTakeFirst();
    const offset = Number(row?.value ?? 0) - deps.clock.offsetMs();
    if (offset > 0) deps.clock.advance(offset);
  }

  return { advance, resume };
}

export type DevClock = ReturnType<typeof createDevClock>;
