import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../../clock.ts';
import type { Database, JobsTable } from '../../db/schema.ts';
import { newId } from '../../ids.ts';

/** A durable, scheduled piece of work. `run` must be idempotent: a run cut short is run again whole. */
export type JobDefinition = {
  name: string;
  everySeconds: number;
  run(ctx: { now: Date }): Promise<Record<string, unknown>>;
};

/** A job as operators see it (`GET /api/v1/jobs`). */
export type JobView = {
  name: string;
  everySeconds: number;
  nextRunAt: string;
  running: boolean;
  runs: number;
  lastStartedAt: string | null;
  lastFinishedAt: string | null;
  lastResult: Record<string, unknown> | null;
  lastError: string | null;
};

function toView(row: JobsTable, wallNow: string): JobView {
  return {
    name: row.name,
    everySeconds: Number(row.every_seconds),
    nextRunAt: row.next_run_at,
    running: row.lease_until !== null && row.lease_until > wallNow,
    runs: Number(row.runs),
    lastStartedAt: row.last_started_at,
    lastFinishedAt: row.last_finished_at,
    lastResult: row.last_result ? (JSON.parse(row.last_result) as Record<string, unknown>) : null,
    lastError: row.last_error,
  };
}

/**
 * Runs durable jobs: schedules live in the `jobs` table, and a run takes a lease on its row with one
 * conditional UPDATE, so across several replicas on one database each due run happens once. A lease is
 * renewed while the job runs and expires (wall clock) when its server dies, so another server, or the
 * same one restarted, runs the job again. Due times follow the platform clock, which tests move.
 */
export function createJobRunner(deps: {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  /** How long a lease lasts without renewal: how soon a job cut short by a crash runs again. */
  leaseMs?: number;
  /** How often due jobs are looked for (wall clock). */
  tickMs?: number;
  /** Told of every run's outcome (metrics). */
  onRun?: (job: string, ok: boolean) => void;
}) {
  const { db, clock, logger } = deps;
  const leaseMs = deps.leaseMs ?? 60_000;
  const owner = newId('lease');
  const jobs = new Map<string, JobDefinition>();
  const running = new Map<string, Promise<boolean>>();
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const wallIso = (plusMs = 0) => new Date(Date.now() + plusMs).toISOString();

  /** Adds a job; its row is created on first start, due at once, and its interval kept up to date. */
  async function register(job: JobDefinition) {
    jobs.set(job.name, job);
    await db
      .insertInto('jobs')
      .values({
        name: job.name,
        every_seconds: job.everySeconds,
        next_run_at: clock.nowIso(),
        runs: 0,
        lease_owner: null,
        lease_until: null,
        last_started_at: null,
        last_finished_at: null,
        last_result: null,
        last_error: null,
      })
      .onConflict((oc) => oc.column('name').doUpdateSet({ every_seconds: job.everySeconds }))
      .execute();
  }

  /** Takes the lease and runs the job; false when another run holds it (or, with `dueOnly`, it is not due). */
  async function attempt(job: JobDefinition, dueOnly: boolean): Promise<boolean> {
    const started = clock.now();
    const claimed = await db
      .updateTable('jobs')
      .set({ lease_owner: owner, lease_until: wallIso(leaseMs), last_started_at: started.toISOString() })
      .where('name', '=', job.name)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', wallIso())]))
      .$if(dueOnly, (q) => q.where('next_run_at', '<=', started.toISOString()))
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return false;
    const heartbeat = setInterval(
      () => {
        void db
          .updateTable('jobs')
          .set({ lease_until: wallIso(leaseMs) })
          .where('name', '=', job.name)
          .where('lease_owner', '=', owner)
          .execute()
          .catch(() => {});
      },
      Math.max(50, leaseMs / 3),
    );
    heartbeat.unref();
    try {
      const result = await job.run({ now: started });
      await db
        .updateTable('jobs')
        .set((eb) => ({
          lease_owner: null,
          lease_until: null,
          runs: eb('runs', '+', 1),
          last_finished_at: clock.nowIso(),
          last_result: JSON.stringify(result),
          last_error: null,
          // The next run is counted from this one's start, on the platform clock.
          ...(dueOnly
            ? { next_run_at: new Date(started.getTime() + job.everySeconds * 1000).toISOString() }
            : {}),
        }))
        .where('name', '=', job.name)
        .where('lease_owner', '=', owner)
        .execute();
      logger.info({ job: job.name, result }, 'job finished');
      deps.onRun?.(job.name, true);
      return true;
    } catch (error) {
      // A failed run is tried again after a pause (at most its own interval), not at once in a loop.
      const retryMs = Math.min(job.everySeconds * 1000, 5 * 60_000);
      await db
        .updateTable('jobs')
        .set({
          lease_owner: null,
          lease_until: null,
          last_finished_at: clock.nowIso(),
          last_error: (error as Error).message.slice(0, 2000),
          next_run_at: new Date(clock.now().getTime() + retryMs).toISOString(),
        })
        .where('name', '=', job.name)
        .where('lease_owner', '=', owner)
        .execute()
        .catch(() => {});
      logger.error({ job: job.name, err: error }, 'job failed');
      deps.onRun?.(job.name, false);
      return false;
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** One run at a time per job in this process; concurrent callers wait for the run in progress. */
  function run(name: string, dueOnly: boolean): Promise<boolean> {
    const job = jobs.get(name);
    if (!job) throw new Error(`no job named ${name}`);
    const current = running.get(name);
    if (current) return current;
    const p = attempt(job, dueOnly).finally(() => running.delete(name));
    running.set(name, p);
    return p;
  }

  /** Runs every job that is due now, one after another; returns the names that ran. */
  async function runDue(): Promise<string[]> {
    const ran: string[] = [];
    for (const name of jobs.keys()) if (!closed && (await run(name, true))) ran.push(name);
    return ran;
  }

  return {
    register,
    runDue,
    /** Runs a job now, due or not (an advisory import asks for the alert job at once). */
    trigger: (name: string) => run(name, false),
    async list(): Promise<JobView[]> {
      const rows = await db.selectFrom('jobs').selectAll().orderBy('name').execute();
      const wall = wallIso();
      return rows.map((r) => toView(r, wall));
    },
    start() {
      timer = setInterval(
        () => void runDue().catch((err) => logger.error({ err }, 'job tick failed')),
        deps.tickMs ?? 30_000,
      );
      timer.unref();
    },
    async stop() {
      closed = true;
      if (timer) clearInterval(timer);
      await Promise.allSettled([...running.values()]);
    },
  };
}

export type JobRunner = ReturnType<typeof createJobRunner>;
