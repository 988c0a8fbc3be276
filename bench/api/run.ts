// API latency under load with a company's catalog (100,000 apps over 100 departments), SQLite and
// PostgreSQL side by side, with /healthz as the no-database baseline. Both servers run at once, each as its
// own process (`microapp server --dev`); the rows take turns in short slices of autocannon load at a fixed
// rate (--rate, as `autocannon -R`; registrations as fast as they go), and every response must have the
// expected status (200, or 201 for a registration) or the run fails. CPU time of each server process per
// 1,000 requests is read from /proc. A few apps are registered through the API, then copied in the database
// (packages/server/test/seed-catalog.ts). The registration quota (20 a day by default) is lifted.
//   npx tsx bench/api/run.ts [--quick] [--seconds 2] [--rounds 3] [--connections 10] [--rate 500] [--apps 100000] [--postgres URL]
import { openDatabase } from '../../packages/server/src/db/database.ts';
import { tokenFor } from '../../packages/server/test/harness.ts';
import { seedCatalog } from '../../packages/server/test/seed-catalog.ts';
import { BenchFailure, benchArgs, runBench } from '../lib/bench.ts';
import { type LoadResult, loadInterleaved, type Target } from '../lib/http-load.ts';
import { startServer } from '../lib/server-process.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  'API latency under load on SQLite and PostgreSQL, beside /healthz.',
  {
    seconds: { default: '2', quick: '1', help: 'length of one slice of load, in seconds' },
    rounds: { default: '3', quick: '1', help: 'slices per row; the rows take turns' },
    connections: { default: '10', quick: '4', help: 'concurrent connections' },
    rate: {
      default: '500',
      quick: '100',
      help: 'requests per second of each read row (0: as fast as it answers)',
    },
    apps: { default: '100000', quick: '2000', help: 'apps in each catalog before the load starts' },
    postgres: {
      default: process.env.MICROAPP_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      help: 'the PostgreSQL to run the second server on ("none" to skip it)',
    },
  },
);

const manifest = (name: string, owner = 'alice@example.com') =>
  JSON.stringify({
    name,
    owner,
    purpose: 'A benchmark app that matches invoices to payments',
    dataClasses: ['internal', 'financial'],
    integrations: { egress: ['api.bank.example.com'] },
  });

const noQuota = { MICROAPP_QUOTA_REGISTRATIONS_PER_DAY: '1000000000' };

type Server = Awaited<ReturnType<typeof startServer>>;

const goalP99 = 20;

async function prepare(label: string, server: Server): Promise<Target[]> {
  const alice = await tokenFor({ url: server.url }, 'alice@example.com');
  const frank = await tokenFor({ url: server.url }, 'frank@example.com');
  const carol = await tokenFor({ url: server.url }, 'carol@example.com');
  const as = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
  for (const [token, name, owner] of [
    [alice, 'invoice-matching', 'alice@example.com'],
    [alice, 'expense-claims', 'alice@example.com'],
    [frank, 'campaign-tracker', 'frank@example.com'],
    [frank, 'lunch-poll', 'frank@example.com'],
  ] as const) {
    const r = await fetch(`${server.url}/api/v1/apps`, {
      method: 'POST',
      headers: as(token),
      body: manifest(name, owner),
    });
    if (r.status !== 201) throw new BenchFailure(`${label}: seeding answered ${r.status}: ${await r.text()}`);
  }
  const db =
    'sqliteFile' in server.database
      ? openDatabase({ kind: 'sqlite', file: server.database.sqliteFile })
      : openDatabase({ kind: 'postgres', url: server.database.postgresUrl, poolSize: 1 });
  try {
    await seedCatalog(db, { apps: number('apps'), departments: 100, owners: 5000 });
  } finally {
    await db.destroy();
  }
  const cpu = { server: () => [server.child.pid!] };
  const rate = number('rate') || undefined;
  const read = (what: string, token: string, path: string): Target => ({
    label: `${label}: ${what}`,
    url: `${server.url}${path}`,
    headers: () => as(token),
    expect: 200,
    rate,
    cpu,
  });
  let n = 0;
  return [
    { label: `${label}: GET /healthz (baseline)`, url: `${server.url}/healthz`, expect: 200, rate, cpu },
    read('list, an admin', carol, '/api/v1/apps?limit=50'),
    read('list, a creator (one department)', alice, '/api/v1/apps?limit=50'),
    read('list, a creator, catalog rows (view=summary)', alice, '/api/v1/apps?limit=50&view=summary'),
    read('search, no match', carol, '/api/v1/apps?limit=50&q=payroll-zq'),
    read('search, no match, a creator', alice, '/api/v1/apps?limit=50&q=payroll-zq'),
    read('search, a name', alice, '/api/v1/apps?limit=50&q=expense'),
    {
      label: `${label}: POST /api/v1/apps (register)`,
      url: `${server.url}/api/v1/apps`,
      method: 'POST',
      headers: () => as(alice),
      requests: [
        { setupRequest: (req) => ({ ...req, body: manifest(`bench-${label.toLowerCase()}-${n++}`) }) },
      ],
      expect: 201,
      cpu,
    },
  ];
}

const fmt = (r: LoadResult) =>
  `  ${r.label.padEnd(56)} p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(4)} ms  ${Math.round(r.rps).toLocaleString('en-US').padStart(7)} req/s  ${r.cpuPer1000.server!.toFixed(0).padStart(6)} ms CPU/1k req` +
  (/: (list|search)/.test(r.label)
    ? `   goal p99 <= ${goalP99} ms: ${r.p99 <= goalP99 ? 'met' : 'missed'}`
    : '');

await runBench(async () => {
  const servers: Server[] = [];
  try {
    const sqlite = await startServer(null, noQuota);
    servers.push(sqlite);
    const targets = await prepare('SQLite', sqlite);
    if (values.postgres !== 'none') {
      const pg = await startServer(values.postgres, noQuota);
      servers.push(pg);
      targets.push(...(await prepare('PostgreSQL', pg)));
    }
    const results = await loadInterleaved(targets, {
      connections: number('connections'),
      seconds: number('seconds'),
      rounds: number('rounds'),
    });
    console.log(
      `node ${process.version}; ${number('connections')} connections; ${number('rounds')} slice(s) of ${number('seconds')} s per row, taking turns, reads at ${number('rate') || 'unlimited'} req/s; each server in its own process with ${number('apps').toLocaleString('en-US')} apps over 100 departments in its catalog; CPU is the server process's\nreproduce with: ${command}\n`,
    );
    for (const r of results) console.log(fmt(r));
    const by = (l: string) => results.find((r) => r.label === l);
    for (const db of ['SQLite', 'PostgreSQL']) {
      const base = by(`${db}: GET /healthz (baseline)`);
      if (!base) continue;
      const list = by(`${db}: list, a creator (one department)`)!;
      const reg = by(`${db}: POST /api/v1/apps (register)`)!;
      console.log(
        `  ${db}: a creator's list p99 ${(list.p99 / Math.max(1, base.p99)).toFixed(1)}x the baseline's; registrations ${Math.round(reg.rps)} req/s`,
      );
    }
  } finally {
    for (const s of servers) await s.cleanup();
  }
});
