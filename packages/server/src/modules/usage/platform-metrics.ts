import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Database } from '../../db/schema.ts';
import { processTreeStats } from '../runtime/process-stats.ts';

/**
 * The platform's own metrics beside the per-app ones: API latency by route, job runs, the notification
 * queue, and apps by lifecycle stage (the last two read from the database at scrape time).
 */
export function registerPlatformMetrics(deps: {
  registry: Registry;
  app: FastifyInstance;
  db: Kysely<Database>;
  /** Running app instances and their root process, for memory and CPU. */
  instances: () => { app: string; pid: number }[];
}) {
  const { registry, db } = deps;
  const http = new Histogram({
    name: 'microapp_http_request_duration_seconds',
    help: 'Platform API requests by method, route template and status code (app traffic is counted per app)',
    labelNames: ['method', 'route', 'code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  deps.app.addHook('onResponse', async (request, reply) => {
    // Only matched routes: unmatched paths would let any caller create label values.
    const route = request.routeOptions.url;
    if (!route) return;
    http.observe({ method: request.method, route, code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  const jobRuns = new Counter({
    name: 'microapp_job_runs_total',
    help: 'Runs of scheduled jobs by outcome',
    labelNames: ['job', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'microapp_notification_queue_depth',
    help: 'Notification deliveries waiting to be sent (e-mail, webhook)',
    registers: [registry],
    async collect() {
      const r = await db
        .selectFrom('notification_deliveries')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('delivered_at', 'is', null)
        .where('failed_at', 'is', null)
        .executeTakeFirst();
      this.set(Number(r?.n ?? 0));
    },
  });
  new Gauge({
    name: 'microapp_apps_by_lifecycle_stage',
    help: 'Apps by lifecycle stage (active, warned, stopped, escalated, decommissioned)',
    labelNames: ['stage'] as const,
    registers: [registry],
    async collect() {
      const rows = await db
        .selectFrom('app_lifecycle')
        .select(['stage', (eb) => eb.fn.countAll().as('n')])
        .groupBy('stage')
        .execute();
      this.reset();
      for (const r of rows) this.set({ stage: r.stage }, Number(r.n));
    },
  });
  // Read from /proc at scrape time, over each sandbox's whole process tree.
  let sampled: { at: number; rows: { app: string; rss: number; cpu: number }[] } = { at: 0, rows: [] };
  const sample = () => {
    if (Date.now() - sampled.at > 1000) {
      const list = deps.instances();
      const stats = processTreeStats(list.map((i) => i.pid));
      sampled = {
        at: Date.now(),
        rows: list.map((i) => ({
          app: i.app,
          rss: stats.get(i.pid)?.rssBytes ?? 0,
          cpu: stats.get(i.pid)?.cpuSeconds ?? 0,
        })),
      };
    }
    return sampled.rows;
  };
  new Gauge({
    name: 'microapp_app_memory_bytes',
    help: 'Resident memory of each running app instance (its sandbox process tree)',
    labelNames: ['app'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of sample()) this.set({ app: r.app }, r.rss);
    },
  });
  new Gauge({
    name: 'microapp_app_cpu_seconds',
    help: 'CPU time used by each running app instance since it started (user + system)',
    labelNames: ['app'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of sample()) this.set({ app: r.app }, r.cpu);
    },
  });
  const crashes = new Counter({
    name: 'microapp_app_crashes_total',
    help: 'App instances that exited on their own, by whether the supervisor restarted them or gave up',
    labelNames: ['app', 'outcome'] as const,
    registers: [registry],
  });
  const outOfMemory = new Counter({
    name: 'microapp_app_out_of_memory_total',
    help: 'App instances the kernel killed for going over their memory limit (they are restarted like crashes)',
    labelNames: ['app'] as const,
    registers: [registry],
  });
  const egressBytes = new Counter({
    name: 'microapp_app_egress_bytes_total',
    help: 'Bytes apps sent (out) and received (in) through the egress broker',
    labelNames: ['app', 'direction'] as const,
    registers: [registry],
  });
  return {
    egressBytes: (app: string, out: number, inBytes: number) => {
      egressBytes.inc({ app, direction: 'out' }, out);
      egressBytes.inc({ app, direction: 'in' }, inBytes);
    },
    outOfMemory: (app: string) => outOfMemory.inc({ app }),
    jobRun: (job: string, ok: boolean) => jobRuns.inc({ job, outcome: ok ? 'ok' : 'failed' }),
    crash: (app: string, outcome: 'restarted' | 'gave_up') => crashes.inc({ app, outcome }),
  };
}
