// API latency under load, SQLite and PostgreSQL side by side, with /healthz as the no-database baseline.
// Both servers run at once, each as its own process (`microapp server --dev`); the six rows take turns in
// short slices of autocannon load, and every response must have the expected status (200, or 201 for a
// registration) or the run fails. CPU time of each server process per 1,000 requests is read from /proc.
// The per-person registration quota (20 a day by default) is lifted: one person registers thousands here.
//   npx tsx bench/api/run.ts [--quick] [--seconds 2] [--rounds 3] [--connections 10] [--postgres URL]
import { tokenFor } from '../../packages/server/test/harness.ts';
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
    apps: { default: '200', quick: '20', help: 'apps in each catalog before the load starts' },
    postgres: {
      default: process.env.MICROAPP_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      help: 'the PostgreSQL to run the second server on ("none" to skip it)',
    },
  },
);

const manifest = (name: string) =>
  JSON.stringify({
    name,
    owner: 'alice@example.com',
    purpose: 'A benchmark app that matches invoices to payments',
    dataClasses: ['internal', 'financial'],
    integrations: { egress: ['api.bank.example.com'] },
  });

const noQuota = { MICROAPP_QUOTA_REGISTRATIONS_PER_DAY: '1000000000' };

type Server = Awaited<ReturnType<typeof startServer>>;

async function prepare(label: string, server: Server): Promise<Target[]> {
  const alice = await tokenFor({ url: server.url }, 'alice@example.com');
  const auth = { authorization: `Bearer ${alice}`, 'content-type': 'application/json' };
  for (let i = 0; i < number('apps'); i++) {
    const r = await fetch(`${server.url}/api/v1/apps`, {
      method: 'POST',
      headers: auth,
      body: manifest(`seed-${i}`),
    });
    if (r.status !== 201) throw new BenchFailure(`${label}: seeding answered ${r.status}: ${await r.text()}`);
  }
  const cpu = { server: () => [server.child.pid!] };
  let n = 0;
  return [
    { label: `${label}: GET /healthz (baseline)`, url: `${server.url}/healthz`, expect: 200, cpu },
    {
      label: `${label}: GET /api/v1/apps?limit=50`,
      url: `${server.url}/api/v1/apps?limit=50`,
      headers: () => auth,
      expect: 200,
      cpu,
    },
    {
      label: `${label}: POST /api/v1/apps (register)`,
      url: `${server.url}/api/v1/apps`,
      method: 'POST',
      headers: () => auth,
      requests: [
        { setupRequest: (req) => ({ ...req, body: manifest(`bench-${label.toLowerCase()}-${n++}`) }) },
      ],
      expect: 201,
      cpu,
    },
  ];
}

const fmt = (r: LoadResult) =>
  `  ${r.label.padEnd(44)} p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(4)} ms  ${Math.round(r.rps).toLocaleString('en-US').padStart(7)} req/s  ${r.cpuPer1000.server!.toFixed(0).padStart(6)} ms CPU/1k req`;

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
      `node ${process.version}; ${number('connections')} connections; ${number('rounds')} slice(s) of ${number('seconds')} s per row, taking turns; each server in its own process with ${number('apps')} apps in its catalog; CPU is the server process's\nreproduce with: ${command}\n`,
    );
    for (const r of results) console.log(fmt(r));
    const by = (l: string) => results.find((r) => r.label === l);
    for (const db of ['SQLite', 'PostgreSQL']) {
      const base = by(`${db}: GET /healthz (baseline)`);
      if (!base) continue;
      const list = by(`${db}: GET /api/v1/apps?limit=50`)!;
      const reg = by(`${db}: POST /api/v1/apps (register)`)!;
      console.log(
        `  ${db}: list ${(base.rps / list.rps).toFixed(1)}x and register ${(base.rps / reg.rps).toFixed(1)}x fewer req/s than the baseline`,
      );
    }
  } finally {
    for (const s of servers) await s.cleanup();
  }
});
