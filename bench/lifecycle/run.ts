// The inactivity job over 10,000 apps with 90 days of usage data, SQLite and PostgreSQL side by side.
//   npx tsx bench/lifecycle/run.ts [--quick] [--apps 10000] [--days 90] [--postgres URL|none]
// Baseline: finding each app's last use by scanning the raw usage rows (what the job would do without the
// `app_activity` table the usage writer keeps). Measured: the job's first run (which warns every app idle
// for 60+ days, writing audit events and notifications) and a steady-state run with nothing to do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { adjustableClock, dayMs } from '../../packages/server/src/clock.ts';
import { type Db, openDatabase } from '../../packages/server/src/db/database.ts';
import { migrateToLatest } from '../../packages/server/src/db/migrations.ts';
import { createAuditService } from '../../packages/server/src/modules/audit/audit-service.ts';
import { createFolderBlobStore } from '../../packages/server/src/modules/blobs/blob-store.ts';
import { defaultLifecycleSettings } from '../../packages/server/src/modules/lifecycle/lifecycle-rules.ts';
import { createLifecycleService } from '../../packages/server/src/modules/lifecycle/lifecycle-service.ts';
import { createLifecycleSteps } from '../../packages/server/src/modules/lifecycle/lifecycle-steps.ts';
import { createNotificationService } from '../../packages/server/src/modules/notifications/notification-service.ts';
import { kekOf } from '../../packages/server/src/modules/secrets/envelope.ts';
import { BenchFailure, benchArgs, runBench } from '../lib/bench.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  'The inactivity job over many apps with months of usage, on SQLite and PostgreSQL.',
  {
    apps: { default: '10000', quick: '500', help: 'apps in the catalog (30% of them never used)' },
    days: { default: '90', quick: '90', help: 'days of usage data (each used app every third day)' },
    postgres: {
      default: process.env.MICROAPP_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      help: 'the PostgreSQL to run it on too ("none" to skip it)',
    },
  },
);
const appCount = number('apps');
const days = number('days');
const postgres = values.postgres;

async function seed(db: Db, now: number) {
  const created = new Date(now - days * dayMs).toISOString();
  const manifest = JSON.stringify({
    name: 'x',
    owner: 'o@example.com',
    purpose: 'bench',
    dataClasses: ['internal'],
  });
  for (let i = 0; i < appCount; i += 500) {
    const rows = [];
    for (let j = i; j < Math.min(appCount, i + 500); j++)
      rows.push({
        id: `app_bench${String(j).padStart(15, '0')}`,
        name: `bench-${j}`,
        owner: `owner${j % 500}@example.com`,
        registered_by: 'usr_bench',
        department: 'finance',
        state: 'approved',
        tier: 'medium',
        required_reviews: '[]',
        revision: 1,
        manifest,
        assessment_id: 'ras_bench',
        created_at: created,
        updated_at: created,
      });
    await db.kysely.insertInto('apps').values(rows).execute();
  }
  // Usage: 70% of apps are used, each every third day (30 requests over 90 days: 210,000 rows for
  // 10,000 apps); the other 30% never, so the first run warns them (medium tier: none has expired).
  let usage = 0;
  const activity = new Map<string, string>();
  let batch: Record<string, unknown>[] = [];
  const flush = async () => {
    if (batch.length)
      await db.kysely
        .insertInto('app_usage')
        .values(batch as never)
        .execute();
    batch = [];
  };
  for (let j = 0; j < appCount; j++) {
    if (j % 10 < 3) continue;
    const id = `app_bench${String(j).padStart(15, '0')}`;
    for (let d = j % 3; d < days; d += 3) {
      const at = new Date(now - (days - d) * dayMs + (j % 3600) * 1000).toISOString();
      batch.push({
        id: `use_bench${usage++}`,
        app_id: id,
        version: '1.0.0',
        user_email: 'u@example.com',
        method: 'GET',
        status: 200,
        latency_ms: 5,
        bytes_in: 0,
        bytes_out: 100,
        at,
      });
      if ((activity.get(id) ?? '') < at) activity.set(id, at);
      if (batch.length === 1000) await flush();
    }
  }
  await flush();
  const acts = [...activity].map(([app_id, last_used_at]) => ({ app_id, last_used_at }));
  for (let i = 0; i < acts.length; i += 1000)
    await db.kysely
      .insertInto('app_activity')
      .values(acts.slice(i, i + 1000))
      .execute();
  return usage;
}

async function measure(label: string, open: () => Promise<{ db: Db; cleanup: () => Promise<void> }>) {
  const { db, cleanup } = await open();
  try {
    await migrateToLatest(db);
    const clock = adjustableClock();
    const rows = await seed(db, clock.now().getTime());
    const logger = pino({ level: 'silent' });
    const audit = createAuditService({ db: db.kysely, dialect: db.dialect, clock });
    const notifications = createNotificationService({
      db: db.kysely,
      clock,
      logger,
      channels: {},
      platformUrl: () => 'http://localhost',
    });
    const dir = mkdtempSync(join(tmpdir(), 'microapp-bench-life-'));
    // Warnings touch neither the runtime nor secrets; these two are never called in this bench.
    const unused = {
      halt: async () => null,
      stopInstance: async () => false,
      resume: async () => {},
      purgeFor: async () => [],
    };
    const steps = createLifecycleSteps({
      db: db.kysely,
      clock,
      audit,
      notifications,
      deployments: unused,
      secrets: unused,
      kek: kekOf(Buffer.alloc(32, 7)),
      blobs: createFolderBlobStore(dir),
      runtimeDir: dir,
      archiveDir: dir,
      settings: defaultLifecycleSettings,
    });
    const lifecycle = createLifecycleService({
      db: db.kysely,
      clock,
      audit,
      notifications,
      catalog: { get: async () => Promise.reject(new Error('unused')) },
      deployments: unused,
      advisories: { scan: async () => Promise.reject(new Error('unused')) },
      steps,
      keks: [],
      settings: defaultLifecycleSettings,
    });
    let t = performance.now();
    await db.kysely
      .selectFrom('app_usage')
      .select(['app_id', (eb) => eb.fn.max('at').as('last')])
      .groupBy('app_id')
      .execute();
    const scan = performance.now() - t;
    t = performance.now();
    await db.kysely.selectFrom('app_activity').selectAll().execute();
    const rollup = performance.now() - t;
    t = performance.now();
    const first = await lifecycle.runJob({ now: clock.now() });
    const firstMs = performance.now() - t;
    t = performance.now();
    const steady = await lifecycle.runJob({ now: clock.now() });
    const steadyMs = performance.now() - t;
    rmSync(dir, { recursive: true, force: true });
    // 30% of the apps were never used: the first run must warn exactly those, the second nobody.
    const expected = Array.from({ length: appCount }, (_, j) => j % 10 < 3).filter(Boolean).length;
    const warned = (first as { warn?: number }).warn ?? 0;
    if (warned !== expected || (steady as { warn?: number }).warn)
      throw new BenchFailure(
        `${label}: the first run warned ${warned} apps (expected ${expected}), the second ${(steady as { warn?: number }).warn ?? 0} (expected 0)`,
      );
    console.log(
      `${label.padEnd(10)} ${appCount} apps, ${rows} usage rows | last use: raw scan ${scan.toFixed(0)} ms, rollup ${rollup.toFixed(0)} ms (${(scan / rollup).toFixed(1)}x) | job: first run ${(firstMs / 1000).toFixed(2)} s (${JSON.stringify(first)}), steady ${(steadyMs / 1000).toFixed(2)} s (${JSON.stringify(steady)})`,
    );
  } finally {
    await cleanup();
  }
}

await runBench(async () => {
  console.log(`node ${process.version}\nreproduce with: ${command}\n`);
  await measure('sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microapp-bench-db-'));
    const db = openDatabase({ kind: 'sqlite', file: join(dir, 'bench.sqlite') });
    return {
      db,
      cleanup: async () => {
        await db.destroy();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
  if (postgres === 'none') return;
  const schema = `bench_life_${Date.now()}`;
  const admin = new pg.Client({ connectionString: postgres });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await measure('postgres', async () => {
    const db = openDatabase({ kind: 'postgres', url: postgres, schema, poolSize: 5 });
    return {
      db,
      cleanup: async () => {
        await db.destroy();
        await admin.query(`drop schema ${schema} cascade`);
        await admin.end();
      },
    };
  });
});
