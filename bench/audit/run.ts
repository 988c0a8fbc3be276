// The audit trail: how many governed writes a second it takes (concurrent transactions, each holding one
// audit event, every one chained and committed before the figure counts it), and how fast the whole chain
// is verified, on SQLite and PostgreSQL. The verifier is measured beside the walk in one process that
// `audit verify` made before it ran in worker threads, over the same chain; the writes on PostgreSQL beside
// bare node-postgres transactions with as many clients.
//   npx tsx bench/audit/run.ts [--quick] [--seconds 3] [--writers 32] [--events 1000000] [--postgres URL]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Insertable, sql } from 'kysely';
import pg from 'pg';
import { canonicalJson } from '../../packages/server/src/canonical-json.ts';
import { type Db, openDatabase } from '../../packages/server/src/db/database.ts';
import { migrateToLatest } from '../../packages/server/src/db/migrations.ts';
import type { AuditEventsTable } from '../../packages/server/src/db/schema.ts';
import { genesisHash, hashEvent } from '../../packages/server/src/modules/audit/audit-chain.ts';
import { createAuditService } from '../../packages/server/src/modules/audit/audit-service.ts';
import { BenchFailure, benchArgs, runBench } from '../lib/bench.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  'The audit trail: governed writes a second (one event each, chained and durable), and verifying a long chain.',
  {
    seconds: { default: '3', quick: '1', help: 'how long the writers run, per database' },
    writers: { default: '32', quick: '8', help: 'concurrent writers (each a transaction after another)' },
    events: { default: '1000000', quick: '20000', help: 'events in the chain that is verified' },
    postgres: {
      default: process.env.MICROAPP_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      help: 'the PostgreSQL to run on as well ("none" to skip it)',
    },
  },
);

const goals = { writes: 10_000, verify: 300_000 };
const work = mkdtempSync(join(tmpdir(), 'microapp-bench-audit-'));

async function open(engine: 'sqlite' | 'postgres'): Promise<{ db: Db; drop: () => Promise<void> }> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(work, 'db-'));
    const db = openDatabase({ kind: 'sqlite', file: join(dir, 'audit.sqlite') });
    await migrateToLatest(db);
    return { db, drop: () => db.destroy() };
  }
  const schema = `bench_audit_${Date.now()}`;
  const admin = new pg.Client({ connectionString: values.postgres });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const db = openDatabase({ kind: 'postgres', url: values.postgres, schema, poolSize: number('writers') });
  await migrateToLatest(db);
  return {
    db,
    async drop() {
      await db.destroy();
      const c = new pg.Client({ connectionString: values.postgres });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    },
  };
}

const count = async (db: Db) =>
  Number((await sql<{ n: number }>`select count(*) as n from audit_events`.execute(db.kysely)).rows[0]!.n);

/** Writers for `seconds`, each committing one governed change (an event) after another. */
async function writes(db: Db) {
  const audit = createAuditService({ db: db.kysely, dialect: db.dialect, database: db.options });
  const before = await count(db);
  const until = performance.now() + number('seconds') * 1000;
  const started = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: number('writers') }, async (_, w) => {
      while (performance.now() < until) {
        await db.kysely
          .transaction()
          .execute((trx) =>
            audit.record(
              trx,
              { actor: `writer-${w}@example.com`, requestId: `req_${w}_${n}` },
              { action: 'bench.write', targetType: 'app', target: `app-${n % 100}`, summary: { n: n++ } },
            ),
          );
      }
    }),
  );
  const verdict = await audit.verify();
  const seconds = (performance.now() - started) / 1000;
  const written = (await count(db)) - before;
  if (!verdict.ok)
    throw new BenchFailure(`the chain broke under concurrent writes: ${JSON.stringify(verdict)}`);
  if (written !== n) throw new BenchFailure(`${n} events recorded but ${written} in the chain`);
  return { written, seconds };
}

/**
 * The ceiling beside it: the same number of node-postgres clients each committing `BEGIN; INSERT; COMMIT`
 * of a row as large as an event, with nothing else (no Kysely, no chain, no audit). What one Node process
 * gets from this PostgreSQL on this machine.
 */
async function rawWrites(): Promise<number> {
  const schema = `bench_raw_${Date.now()}`;
  const admin = new pg.Client({ connectionString: values.postgres });
  await admin.connect();
  await admin.query(
    `create schema ${schema}; create table ${schema}.q (id bigserial primary key, body text)`,
  );
  const clients = await Promise.all(
    Array.from({ length: number('writers') }, async () => {
      const c = new pg.Client({ connectionString: values.postgres });
      await c.connect();
      return c;
    }),
  );
  try {
    let n = 0;
    const started = performance.now();
    const until = started + number('seconds') * 1000;
    await Promise.all(
      clients.map(async (c) => {
        while (performance.now() < until) {
          await c.query('begin');
          await c.query(`insert into ${schema}.q (body) values ($1)`, ['x'.repeat(300)]);
          await c.query('commit');
          n++;
        }
      }),
    );
    return n / ((performance.now() - started) / 1000);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
    await admin.query(`drop schema ${schema} cascade`);
    await admin.end();
  }
}

/** An event's row as a request's transaction queues it on PostgreSQL (audit-service.ts, `record`). */
const queuedRow = (w: number, n: number) => ({
  id: `evt_${w}_${n}_${Date.now().toString(36)}`,
  occurred_at: new Date().toISOString(),
  actor: `writer-${w}@example.com`,
  action: 'bench.write',
  target_type: 'app',
  target: `app-${n % 100}`,
  reason: null,
  request_id: `req_${w}_${n}`,
  source_ip: null,
  summary: canonicalJson({ n }),
});

/**
 * PostgreSQL's governed write in its two parts: the writers' transactions queueing their event and nothing
 * else (no chaining), and the sequencer alone chaining a full queue.
 */
async function parts(db: Db) {
  let n = 0;
  const started = performance.now();
  const until = started + number('seconds') * 1000;
  await Promise.all(
    Array.from({ length: number('writers') }, async (_, w) => {
      while (performance.now() < until)
        await db.kysely
          .transaction()
          .execute((trx) => trx.insertInto('audit_queue').values(queuedRow(w, n++)).execute());
    }),
  );
  const queueing = n / ((performance.now() - started) / 1000);
  const audit = createAuditService({ db: db.kysely, dialect: db.dialect });
  try {
    const t = performance.now();
    await audit.sequence();
    const chaining = n / ((performance.now() - t) / 1000);
    if ((await count(db)) !== n) throw new BenchFailure(`${n} events queued but not all of them chained`);
    return { queueing, chaining, queued: n };
  } finally {
    audit.stop();
  }
}

/** A valid chain of `events` events, written straight into the table. */
async function chain(db: Db, events: number) {
  let prev = genesisHash;
  const batch: Insertable<AuditEventsTable>[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await db.kysely.insertInto('audit_events').values(batch.splice(0)).execute();
  };
  for (let seq = 1; seq <= events; seq++) {
    const summary = { app: `app-${seq % 1000}`, revision: seq % 7, tier: 'low' };
    const event = {
      seq,
      id: `evt_${seq}`,
      occurredAt: new Date(1_780_000_000_000 + seq).toISOString(),
      actor: `person-${seq % 500}@example.com`,
      action: 'app.registered',
      targetType: 'app',
      target: `app-${seq % 1000}`,
      reason: null,
      requestId: `req_${seq}`,
      sourceIp: '10.0.0.1',
      summary,
      prevHash: prev,
    };
    prev = hashEvent(event);
    batch.push({
      seq,
      id: event.id,
      occurred_at: event.occurredAt,
      actor: event.actor,
      action: event.action,
      target_type: event.targetType,
      target: event.target,
      reason: null,
      request_id: event.requestId,
      source_ip: event.sourceIp,
      summary: canonicalJson(summary),
      prev_hash: event.prevHash,
      hash: prev,
    });
    if (batch.length === 1000) await flush();
  }
  await flush();
}

async function verifies(db: Db) {
  await chain(db, number('events'));
  const timed = async (audit: ReturnType<typeof createAuditService>) => {
    const t = performance.now();
    const r = await audit.verify();
    const seconds = (performance.now() - t) / 1000;
    if (!r.ok || r.checked !== number('events')) throw new BenchFailure(`verify said ${JSON.stringify(r)}`);
    return seconds;
  };
  const workers = await timed(
    createAuditService({ db: db.kysely, dialect: db.dialect, database: db.options }),
  );
  const walk = await timed(createAuditService({ db: db.kysely, dialect: db.dialect }));
  return { workers, walk };
}

await runBench(async () => {
  const engines: ('sqlite' | 'postgres')[] = values.postgres === 'none' ? ['sqlite'] : ['sqlite', 'postgres'];
  console.log(
    `node ${process.version}; ${number('writers')} writers for ${number('seconds')} s; a chain of ${number('events').toLocaleString('en-US')} events verified\nreproduce with: ${command}\n`,
  );
  try {
    for (const engine of engines) {
      const label = engine === 'sqlite' ? 'SQLite' : 'PostgreSQL';
      const w = await open(engine);
      try {
        const { written, seconds } = await writes(w.db);
        const rate = written / seconds;
        console.log(
          `  ${label.padEnd(11)} governed writes: ${Math.round(rate).toLocaleString('en-US').padStart(7)} events/s (${written} in ${seconds.toFixed(1)} s, each chained and committed)   goal >= ${goals.writes.toLocaleString('en-US')}: ${rate >= goals.writes ? 'met' : 'missed'}`,
        );
      } finally {
        await w.drop();
      }
      if (engine === 'postgres') {
        const raw = await rawWrites();
        console.log(
          `  ${label.padEnd(11)} beside it: ${Math.round(raw).toLocaleString('en-US').padStart(7)} bare transactions/s (node-postgres, BEGIN; INSERT; COMMIT, the same writers: one process's ceiling here)`,
        );
        const p = await open(engine);
        try {
          const { queueing, chaining, queued } = await parts(p.db);
          console.log(
            `  ${label.padEnd(11)} its parts: ${Math.round(queueing).toLocaleString('en-US').padStart(7)} transactions/s queueing an event and nothing else; the sequencer alone chained those ${queued.toLocaleString('en-US')} at ${Math.round(chaining).toLocaleString('en-US')} events/s`,
          );
        } finally {
          await p.drop();
        }
      }
      const v = await open(engine);
      try {
        const { workers, walk } = await verifies(v.db);
        const rate = number('events') / workers;
        console.log(
          `  ${label.padEnd(11)} verify: ${workers.toFixed(2)} s (${Math.round(rate).toLocaleString('en-US')} events/s) in worker threads; ${walk.toFixed(2)} s walking it in process (${(walk / workers).toFixed(1)}x)   goal >= ${goals.verify.toLocaleString('en-US')} events/s: ${rate >= goals.verify ? 'met' : 'missed'}`,
        );
      } finally {
        await v.drop();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
