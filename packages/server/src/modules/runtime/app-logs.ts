import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { redactor } from './redact.ts';

/** Days an app's log lines are kept, by tier. */
export type LogRetention = { low: number; medium: number; high: number };
export const defaultLogRetention: LogRetention = { low: 7, medium: 30, high: 90 };

/** A line longer than this is cut (and says so); an instance printing more lines a minute loses the rest. */
export const logLimits = { lineBytes: 4096, linesPerMinute: 1200 };

export type LogLine = { seq: number; at: string; stream: string; version: string; line: string };

/**
 * App logs: what each instance prints on stdout and stderr, redacted of the app's secrets before it is
 * stored, written in batches, read by the owner and admins (`microapp logs NAME --follow`), and deleted
 * after the retention of the app's tier.
 */
export function createAppLogs(deps: { db: Kysely<Database>; clock: Clock; retention?: LogRetention }) {
  const { db } = deps;
  const retention = deps.retention ?? defaultLogRetention;
  const pending: Omit<Database['app_logs'], 'seq'>[] = [];
  let flushing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => void flush().catch(() => {}), 500);
  timer.unref();

  /** Writes what is buffered; lines keep their order. */
  function flush(): Promise<void> {
    flushing = flushing
      .catch(() => {})
      .then(async () => {
        while (pending.length) {
          const batch = pending.splice(0, 500);
          await db.insertInto('app_logs').values(batch).execute();
        }
      });
    return flushing;
  }

  /** A sink for one instance's output: complete lines, redacted, limited in length and rate. */
  function writer(instance: {
    appId: string;
    env: string;
    deploymentId: string;
    version: string;
    secrets: Record<string, string>;
  }) {
    const redact = redactor(instance.secrets);
    const partial = { stdout: '', stderr: '' };
    let minute = 0;
    let count = 0;
    let dropped = 0;
    const add = (stream: string, line: string) => {
      pending.push({
        app_id: instance.appId,
        env: instance.env,
        deployment_id: instance.deploymentId,
        version: instance.version,
        stream,
        line,
        at: deps.clock.nowIso(),
      });
    };
    const push = (stream: 'stdout' | 'stderr', raw: string) => {
      const now = Math.floor(Date.now() / 60_000);
      if (now !== minute) {
        if (dropped)
          add(
            'stderr',
            `[microapp: ${dropped} lines dropped: more than ${logLimits.linesPerMinute} a minute]`,
          );
        minute = now;
        count = 0;
        dropped = 0;
      }
      if (++count > logLimits.linesPerMinute) {
        dropped++;
        return;
      }
      // Redacted before it is cut, so a secret across the cut cannot survive in halves.
      const line = redact(raw);
      add(
        stream,
        Buffer.byteLength(line) > logLimits.lineBytes
          ? `${Buffer.from(line).subarray(0, logLimits.lineBytes).toString('utf8')} [microapp: line cut at ${logLimits.lineBytes} bytes]`
          : line,
      );
    };
    return {
      write(stream: 'stdout' | 'stderr', chunk: string) {
        const text = partial[stream] + chunk;
        const lines = text.split('\n');
        partial[stream] = lines.pop() ?? '';
        // A line without an end that keeps growing is written in pieces rather than held forever.
        if (partial[stream].length > logLimits.lineBytes * 4) {
          lines.push(partial[stream]);
          partial[stream] = '';
        }
        for (const l of lines) push(stream, l.replace(/\r$/, ''));
      },
      end() {
        for (const stream of ['stdout', 'stderr'] as const)
          if (partial[stream]) push(stream, partial[stream]);
        partial.stdout = '';
        partial.stderr = '';
        if (dropped)
          add(
            'stderr',
            `[microapp: ${dropped} lines dropped: more than ${logLimits.linesPerMinute} a minute]`,
          );
        dropped = 0;
      },
    };
  }

  /** Lines of one environment after `after` (oldest first), or the newest `limit` when `after` is absent. */
  async function read(appId: string, env: string, after: number | null, limit: number): Promise<LogLine[]> {
    await flush();
    const base = db
      .selectFrom('app_logs')
      .select(['seq', 'at', 'stream', 'version', 'line'])
      .where('app_id', '=', appId)
      .where('env', '=', env);
    const rows =
      after === null
        ? (await base.orderBy('seq', 'desc').limit(limit).execute()).reverse()
        : await base.where('seq', '>', after).orderBy('seq', 'asc').limit(limit).execute();
    return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
  }

  /** The retention job: deletes lines older than their app's tier keeps them. Returns how many went. */
  async function prune(): Promise<number> {
    await flush();
    let deleted = 0;
    const now = deps.clock.now();
    for (const [tier, days] of Object.entries(retention)) {
      const before = new Date(now.getTime() - days * 86_400_000).toISOString();
      const r = await db
        .deleteFrom('app_logs')
        .where('at', '<', before)
        .where('app_id', 'in', db.selectFrom('apps').select('id').where('tier', '=', tier))
        .executeTakeFirst();
      deleted += Number(r.numDeletedRows);
    }
    // Lines of apps that no longer exist go after the longest retention.
    const longest = Math.max(...Object.values(retention));
    const r = await db
      .deleteFrom('app_logs')
      .where('at', '<', new Date(now.getTime() - longest * 86_400_000).toISOString())
      .executeTakeFirst();
    return deleted + Number(r.numDeletedRows);
  }

  async function close() {
    clearInterval(timer);
    await flush().catch(() => {});
  }

  return { writer, read, prune, flush, close };
}

export type AppLogs = ReturnType<typeof createAppLogs>;
