// API latency under load, SQLite and PostgreSQL side by side, with /healthz as the no-database baseline.
//   npx tsx bench/api/run.ts [--seconds 10] [--connections 10] [--postgres postgres://postgres@127.0.0.1:5432/test]
// The server runs as its own process (`microapp server --dev`); autocannon loads it over loopback.
import autocannon from 'autocannon';
import { tokenFor } from '../../packages/server/test/harness.ts';
import { startServer } from '../lib/server-process.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const seconds = Number(arg('--seconds', '10'));
const connections = Number(arg('--connections', '10'));
const postgres = arg(
  '--postgres',
  process.env.MICROAPP_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
);

const token = (url: string, email: string) => tokenFor({ url }, email);

type Row = { p50: number; p99: number; rps: number; errors: number };

async function load(url: string, opts: Partial<autocannon.Options>): Promise<Row> {
  const r = await autocannon({ url, connections, duration: seconds, ...opts } as autocannon.Options);
  return { p50: r.latency.p50, p99: r.latency.p99, rps: r.requests.average, errors: r.errors + r.non2xx };
}

const manifest = (name: string) =>
  JSON.stringify({
    name,
    owner: 'alice@example.com',
    purpose: 'A benchmark app that matches invoices to payments',
    dataClasses: ['internal', 'financial'],
    integrations: { egress: ['api.bank.example.com'] },
  });

async function measure(label: string, databaseUrl: string | null) {
  const server = await startServer(databaseUrl);
  try {
    const alice = await token(server.url, 'alice@example.com');
    const auth = { authorization: `Bearer ${alice}`, 'content-type': 'application/json' };
    for (let i = 0; i < 200; i++)
      await fetch(`${server.url}/api/v1/apps`, {
        method: 'POST',
        headers: auth,
        body: manifest(`seed-${i}`),
      });
    const health = await load(`${server.url}/healthz`, {});
    const list = await load(`${server.url}/api/v1/apps?limit=50`, { headers: auth });
    let n = 0;
    const register = await load(`${server.url}/api/v1/apps`, {
      method: 'POST',
      headers: auth,
      requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: manifest(`bench-${n++}`) }) }],
    } as Partial<autocannon.Options>);
    return { label, health, list, register };
  } finally {
    await server.cleanup();
  }
}

const fmt = (r: Row) =>
  `p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(4)} ms  ${Math.round(r.rps).toLocaleString('en-US').padStart(7)} req/s${r.errors ? `  (${r.errors} errors)` : ''}`;

const results = [await measure('SQLite', null)];
try {
  results.push(await measure('PostgreSQL', postgres));
} catch (error) {
  console.error(`PostgreSQL skipped: ${(error as Error).message}`);
}
console.log(
  `\nnode ${process.version}, ${connections} connections, ${seconds} s per row, server in its own process, 200 apps in the catalog\n`,
);
for (const r of results) {
  console.log(`${r.label}`);
  console.log(`  GET /healthz (baseline)        ${fmt(r.health)}`);
  console.log(
    `  GET /api/v1/apps?limit=50      ${fmt(r.list)}   ${(r.health.rps / r.list.rps).toFixed(0)}x fewer req/s than baseline`,
  );
  console.log(
    `  POST /api/v1/apps (register)   ${fmt(r.register)}   ${(r.health.rps / r.register.rps).toFixed(0)}x fewer req/s than baseline`,
  );
}
if (results.length === 2) {
  const [s, p] = results as [(typeof results)[0], (typeof results)[0]];
  console.log(
    `\nPostgreSQL / SQLite p50: list ${(p.list.p50 / Math.max(1, s.list.p50)).toFixed(2)}x, register ${(p.register.p50 / Math.max(1, s.register.p50)).toFixed(2)}x`,
  );
}
