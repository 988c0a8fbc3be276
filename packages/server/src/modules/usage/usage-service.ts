import { type Kysely, sql } from 'kysely';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { Clock } from '../../clock.ts';
import type { AppUsageTable, Database } from '../../db/schema.ts';
import { newTimedId } from '../../ids.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { Principal } from '../identity/principal.ts';
import type { UsageWal } from './usage-wal.ts';

/** One request the gateway forwarded to an app. */
export type UsageRecord = {
  appId: string;
  app: string;
  version: string;
  user: string;
  method: string;
  status: number;
  latencyMs: number;
  bytesIn: number;
  bytesOut: number;
  at: Date;
};

export type UsageSummary = {
  app: string;
  days: number;
  since: string;
  /** The last forwarded request ever, not only inside the window: what inactivity detection reads. */
  lastUsedAt: string | null;
  requests: number;
  serverErrors: number;
  users: number;
  bytesIn: number;
  bytesOut: number;
  averageLatencyMs: number | null;
  /** Bytes the app sent and received through the egress broker in the window. */
  egressBytes: number;
  byDay: {
    day: string;
    requests: number;
    users: number;
    serverErrors: number;
    averageLatencyMs: number | null;
    egressBytes: number;
  }[];
  byVersion: { version: string; requests: number }[];
  /** Calls to model APIs through model connectors, by model, with the tokens their answers reported. */
  modelTokens: { model: string; calls: number; input: number; output: number }[];
};

const flushEvery = 200;

/**
 * Per-request usage of apps: Prometheus metrics at once, and rows in `app_usage` written in batches
 * (every second, or every 200 requests) so a busy app does not add a database write to each request.
 * A read flushes first, so it sees every request this server has answered.
 */
export function createUsageService(deps: {
  db: Kysely<Database>;
  catalog: Pick<CatalogService, 'get'>;
  logger: Logger;
  clock: Clock;
  flushMs?: number;
  /** Where rows wait until they are committed, so a killed server loses none (see usage-wal.ts). */
  wal?: UsageWal;
}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'microapp_' });
  const requests = new Counter({
    name: 'microapp_app_requests_total',
    help: 'Requests the gateway forwarded to apps, by app and status class',
    labelNames: ['app', 'code'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'microapp_app_request_duration_seconds',
    help: 'Time from the gateway forwarding a request to the app finishing its answer',
    labelNames: ['app'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const bytesIn = new Counter({
    name: 'microapp_app_request_bytes_total',
    help: 'Request body bytes forwarded to apps',
    labelNames: ['app'] as const,
    registers: [registry],
  });
  const bytesOut = new Counter({
    name: 'microapp_app_response_bytes_total',
    help: 'Response body bytes apps sent back',
    labelNames: ['app'] as const,
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'microapp_usage_records_dropped_total',
    help: 'Usage rows that could not be written to the database (the metrics above still counted them)',
    registers: [registry],
  });

  let pending: AppUsageTable[] = [];
  let writing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => void flush(), deps.flushMs ?? 1000);
  timer.unref();

  function record(r: UsageRecord): void {
    requests.inc({ app: r.app, code: `${Math.floor(r.status / 100)}xx` });
    duration.observe({ app: r.app }, r.latencyMs / 1000);
    bytesIn.inc({ app: r.app }, r.bytesIn);
    bytesOut.inc({ app: r.app }, r.bytesOut);
    const row: AppUsageTable = {
      id: newTimedId('usage'),
      app_id: r.appId,
      version: r.version,
      user_email: r.user,
      method: r.method,
      status: r.status,
      latency_ms: Math.round(r.latencyMs),
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      at: r.at.toISOString(),
    };
    deps.wal?.append(row);
    pending.push(row);
    if (pending.length >= flushEvery) void flush();
  }

  /** Commits rows and each app's latest use (for the inactivity job); rows already there are skipped. */
  async function write(rows: AppUsageTable[]) {
    const latest = new Map<string, string>();
    for (const r of rows) if ((latest.get(r.app_id) ?? '') < r.at) latest.set(r.app_id, r.at);
    await deps.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += 500)
        await trx
          .insertInto('app_usage')
          .values(rows.slice(i, i + 500))
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      for (const [appId, at] of latest)
        await trx
          .insertInto('app_activity')
          .values({ app_id: appId, last_used_at: at })
          .onConflict((oc) =>
            oc.column('app_id').doUpdateSet({
              last_used_at: sql<string>`case when excluded.last_used_at > app_activity.last_used_at then excluded.last_used_at else app_activity.last_used_at end`,
            }),
          )
          .execute();
    });
  }

  /** Writes the buffered rows; batches are written one after another, in order. */
  function flush(): Promise<void> {
    const rows = pending;
    pending = [];
    let segment: string | null = null;
    try {
      segment = deps.wal?.rotate() ?? null;
    } catch (error) {
      // The log's folder is gone or full: the rows still go to the database, only not through the log.
      deps.logger.error({ err: error }, 'could not start a new usage log segment');
    }
    writing = writing.then(async () => {
      if (!rows.length) {
        if (segment) deps.wal?.done(segment);
        return;
      }
      try {
        await write(rows);
        if (segment) deps.wal?.done(segment);
      } catch (error) {
        // Usage must never fail a request or stop the server. The rows stay in the log for the next start;
        // without a log they are lost, and counted.
        if (!deps.wal) dropped.inc(rows.length);
        deps.logger.error({ err: error, rows: rows.length }, 'could not write usage rows');
      }
    });
    return writing;
  }

  /** Rows a killed server left in the log: written before anything new. */
  async function replay(): Promise<number> {
    let replayed = 0;
    for (const { segment, rows } of deps.wal?.leftovers() ?? []) {
      if (rows.length) await write(rows);
      deps.wal?.done(segment);
      replayed += rows.length;
    }
    return replayed;
  }

  async function summary(principal: Principal, name: string, days: number): Promise<UsageSummary> {
    const app = await deps.catalog.get(principal, name);
    await flush();
    const since = new Date(deps.clock.now().getTime() - days * 86_400_000).toISOString();
    const inWindow = deps.db.selectFrom('app_usage').where('app_id', '=', app.id).where('at', '>=', since);
    const totals = await inWindow
      .select((eb) => [
        eb.fn.countAll().as('requests'),
        eb.fn.count('user_email').distinct().as('users'),
        sql<number>`sum(case when status >= 500 then 1 else 0 end)`.as('serverErrors'),
        eb.fn.sum('bytes_in').as('bytesIn'),
        eb.fn.sum('bytes_out').as('bytesOut'),
        eb.fn.avg('latency_ms').as('latency'),
      ])
      .executeTakeFirstOrThrow();
    const day = sql<string>`substr(at, 1, 10)`;
    const byDay = await inWindow
      .select((eb) => [
        day.as('day'),
        eb.fn.countAll().as('requests'),
        eb.fn.count('user_email').distinct().as('users'),
        sql<number>`sum(case when status >= 500 then 1 else 0 end)`.as('serverErrors'),
        eb.fn.avg('latency_ms').as('latency'),
      ])
      .groupBy(day)
      .orderBy(day)
      .execute();
    // What left through the broker: the "unusual data volume" a reviewer looks for, day by day.
    const egress = await deps.db
      .selectFrom('app_egress')
      .where('app_id', '=', app.id)
      .where('at', '>=', since)
      .select([day.as('day'), sql<number>`sum(bytes_out + bytes_in)`.as('bytes')])
      .groupBy(day)
      .execute();
    const egressByDay = new Map(egress.map((r) => [r.day, Number(r.bytes ?? 0)]));
    // Calls to model APIs through a model connector, with the tokens their answers reported.
    const models = await deps.db
      .selectFrom('app_egress')
      .where('app_id', '=', app.id)
      .where('at', '>=', since)
      .where('model', 'is not', null)
      .select((eb) => [
        'model',
        eb.fn.countAll().as('calls'),
        eb.fn.sum('tokens_in').as('input'),
        eb.fn.sum('tokens_out').as('output'),
      ])
      .groupBy('model')
      .orderBy('model')
      .execute();
    const activeDays = [...new Set([...byDay.map((r) => r.day), ...egressByDay.keys()])].sort();
    const usageByDay = new Map(byDay.map((r) => [r.day, r]));
    const byVersion = await inWindow
      .select((eb) => ['version', eb.fn.countAll().as('requests')])
      .groupBy('version')
      .orderBy('version')
      .execute();
    const last = await deps.db
      .selectFrom('app_activity')
      .where('app_id', '=', app.id)
      .select('last_used_at as at')
      .executeTakeFirst();
    // PostgreSQL returns counts and sums as strings (bigint); SQLite as numbers.
    const n = (v: unknown) => Number(v ?? 0);
    return {
      app: app.name,
      days,
      since,
      lastUsedAt: (last?.at as string | null | undefined) ?? null,
      requests: n(totals.requests),
      serverErrors: n(totals.serverErrors),
      users: n(totals.users),
      bytesIn: n(totals.bytesIn),
      bytesOut: n(totals.bytesOut),
      averageLatencyMs: totals.latency === null ? null : Math.round(n(totals.latency) * 10) / 10,
      egressBytes: [...egressByDay.values()].reduce((a, b) => a + b, 0),
      byDay: activeDays.map((d) => {
        const r = usageByDay.get(d);
        return {
          day: d,
          requests: n(r?.requests),
          users: n(r?.users),
          serverErrors: n(r?.serverErrors),
          averageLatencyMs: r?.latency == null ? null : Math.round(n(r.latency) * 10) / 10,
          egressBytes: egressByDay.get(d) ?? 0,
        };
      }),
      byVersion: byVersion.map((r) => ({ version: r.version, requests: n(r.requests) })),
      modelTokens: models.map((r) => ({
        model: r.model as string,
        calls: n(r.calls),
        input: n(r.input),
        output: n(r.output),
      })),
    };
  }

  /**
   * Deletes request rows older than the retention period. Last use per app is kept apart (app_activity),
   * so inactivity detection does not need them; usage summaries cover at most 366 days.
   */
  async function prune(retentionDays: number) {
    await flush();
    const cutoff = new Date(deps.clock.now().getTime() - retentionDays * 86_400_000).toISOString();
    const r = await deps.db.deleteFrom('app_usage').where('at', '<', cutoff).executeTakeFirst();
    return { deleted: Number(r.numDeletedRows), before: cutoff };
  }

  return {
    registry,
    prune,
    record,
    flush,
    replay,
    summary,
    async metrics() {
      return { body: await registry.metrics(), contentType: registry.contentType };
    },
    async close() {
      clearInterval(timer);
      await flush();
      deps.wal?.close();
    },
  };
}

export type UsageService = ReturnType<typeof createUsageService>;
