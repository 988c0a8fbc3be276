// Usage rows, committed as the gateway's usage writer commits them (200 to a transaction, one multi-row
// insert), into a table that already holds many: with ids that begin with the time (what the platform
// makes, `newTimedId`) beside random ids (`newId`, what it made before). A random id lands on a random page
// of the id's index, so each batch dirties pages all over it once the index outgrows the cache; a timed
// id lands at its end. SQLite and PostgreSQL, each with two tables seeded alike, written in turns.
//   npx tsx bench/usage/run.ts [--quick] [--rows 200000] [--batches 100] [--rounds 3] [--postgres URL|none]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Db, openDatabase } from '../../packages/server/src/db/database.ts';
import { migrateToLatest } from '../../packages/server/src/db/migrations.ts';
import type { AppUsageTable } from '../../packages/server/src/db/schema.ts';
import { newId, newTimedId } from '../../packages/server/src/ids.ts';
import { BenchFailure, benchArgs, median, runBench } from '../lib/bench.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  'Usage rows committed 200 at a time into a full table: ids that begin with the time beside random ids.',
  {
    rows: { default: '200000', quick: '4000', help: 'rows in each table before the timed batches' },
    batches: { default: '100', quick: '5', help: 'batches of 200 rows timed per slice' },
    rounds: { default: '3', quick: '1', help: 'slices per kind of id; the kinds take turns' },
    postgres: {
      default: process.env.MICROAPP_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      help: 'the PostgreSQL to run it on too ("none" to skip it)',
    },
  },
);
const seedRows = number('rows');
const batches = number('batches');
const rounds = number('rounds');
const batchSize = 200;

type Kind = { label: string; id: () => string };
const kinds: Kind[] = [
  { label: 'random ids (newId, before)', id: () => newId('usage') },
  { label: 'timed ids (newTimedId, now)', id: () => newTimedId('usage') },
];

async function appOf(db: Db): Promise<string> {
  const id = newId('app');
  const now = new Date().toISOString();
  await db.kysely
    .insertInto('apps')
    .values({
      id,
      name: `usage-bench-${id.slice(4, 12)}`,
      owner: 'alice@example.com',
      registered_by: 'alice@example.com',
      department: 'finance',
      tier: 'low',
      state: 'approved',
      revision: 1,
      manifest: '{}',
      assessment_id: newId('assessment'),
      created_at: now,
      updated_at: now,
    } as never)
    .execute();
  return id;
}

const rowsFor = (kind: Kind, appId: string, n: number): AppUsageTable[] =>
  Array.from({ length: n }, () => ({
    id: kind.id(),
    app_id: appId,
    version: '1.0.0',
    user_email: 'alice@example.com',
    method: 'GET',
    status: 200,
    latency_ms: 3,
    bytes_in: 0,
    bytes_out: 1200,
    at: new Date().toISOString(),
  }));

/** One batch as the usage writer commits it: a transaction, one insert, rows already there skipped. */
async function commit(db: Db, rows: AppUsageTable[]) {
  await db.kysely.transaction().execute(async (trx) => {
    await trx
      .insertInto('app_usage')
      .values(rows)
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  });
}

async function measure(engine: string, open: () => Promise<Db>) {
  const dbs: { kind: Kind; db: Db; appId: string; cpu: number[]; wall: number[] }[] = [];
  for (const kind of kinds) {
    const db = await open();
    await migrateToLatest(db);
    const appId = await appOf(db);
    for (let done = 0; done < seedRows; done += 1000) await commit(db, rowsFor(kind, appId, 1000));
    dbs.push({ kind, db, appId, cpu: [], wall: [] });
  }
  for (let round = 0; round < rounds; round++)
    for (const d of dbs) {
      const cpu = process.cpuUsage();
      const started = performance.now();
      for (let b = 0; b < batches; b++) await commit(d.db, rowsFor(d.kind, d.appId, batchSize));
      const used = process.cpuUsage(cpu);
      const rows = batches * batchSize;
      d.wall.push(((performance.now() - started) * 1000) / rows);
      d.cpu.push((used.user + used.system) / rows);
    }
  for (const d of dbs) {
    const count = await d.db.kysely
      .selectFrom('app_usage')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    const expected = seedRows + rounds * batches * batchSize;
    if (Number(count.n) !== expected)
      throw new BenchFailure(`${engine} ${d.kind.label}: ${count.n} rows, expected ${expected}`);
  }
  const [random, timed] = dbs as [(typeof dbs)[0], (typeof dbs)[0]];
  const cpuNote = engine === 'SQLite' ? 'this process (SQLite runs in it)' : 'this process only';
  console.log(`\n${engine}: ${seedRows.toLocaleString('en-US')} rows already in each table`);
  console.log(`  ${''.padEnd(30)} wall µs/row  CPU µs/row, ${cpuNote}`);
  for (const d of dbs)
    console.log(
      `  ${d.kind.label.padEnd(30)} ${median(d.wall).toFixed(1).padStart(11)}  ${median(d.cpu).toFixed(1).padStart(10)}`,
    );
  console.log(
    `  timed / random: ${(median(timed.wall) / median(random.wall)).toFixed(2)}x the wall time, ${(median(timed.cpu) / median(random.cpu)).toFixed(2)}x the CPU`,
  );
  for (const d of dbs) await d.db.destroy();
}

await runBench(async () => {
  console.log(
    `node ${process.version}; ${rounds} slice(s) of ${batches} batches of ${batchSize} rows per kind`,
  );
  console.log(`reproduce with: ${command}`);
  const dir = mkdtempSync(join(tmpdir(), 'microapp-usage-bench-'));
  try {
    let n = 0;
    await measure('SQLite', async () =>
      openDatabase({ kind: 'sqlite', file: join(dir, `usage-${n++}.sqlite`) }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (values.postgres === 'none') return;
  const schemas: string[] = [];
  const admin = new pg.Client({ connectionString: values.postgres });
  await admin.connect();
  try {
    await measure('PostgreSQL', async () => {
      const schema = `bench_usage_${Date.now()}_${schemas.length}`;
      await admin.query(`create schema ${schema}`);
      schemas.push(schema);
      return openDatabase({ kind: 'postgres', url: values.postgres, schema, poolSize: 2 });
    });
  } finally {
    for (const s of schemas) await admin.query(`drop schema ${s} cascade`);
    await admin.end();
  }
});
