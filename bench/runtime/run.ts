// The runtime, measured: cold start of the form app through the gateway (p50 / p95 over scale-to-zero
// wake-ups), gateway throughput and p99 against a direct connection to the same app's socket and against
// nginx as a plain reverse proxy (ratios), memory per idle instance, and how many fit on this machine.
//   npx tsx bench/runtime/run.ts [--seconds 10] [--connections 10] [--colds 20] [--instances 10]
// Each server runs as its own process (`microapp server --dev`, SQLite); autocannon loads it over loopback.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { tokenFor } from '../../packages/server/test/harness.ts';
import { startServer } from '../lib/server-process.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const seconds = Number(arg('--seconds', '10'));
const connections = Number(arg('--connections', '10'));
const colds = Number(arg('--colds', '20'));
const instanceCount = Number(arg('--instances', '10'));

async function api(base: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A form app, registered (approved at once: internal data) and built and deployed by the platform. */
async function formApp(base: string, alice: string, name: string) {
  await api(base, alice, 'POST', '/api/v1/apps', {
    name,
    owner: 'alice@example.com',
    purpose: 'A benchmark form the finance team answers',
    dataClasses: ['internal'],
    audience: { department: 'finance', maxUsers: 50 },
    runtime: { kind: 'node', entry: 'server.js' },
    template: { name: 'form', version: '1.1.0' },
  });
  let b = await api(base, alice, 'POST', `/api/v1/apps/${name}/builds`, { deploy: true });
  while (b.state === 'queued' || b.state === 'running') {
    await new Promise((r) => setTimeout(r, 200));
    b = await api(base, alice, 'GET', `/api/v1/apps/${name}/builds/${b.id}`);
  }
  if (b.state !== 'passed') throw new Error(`build of ${name} failed: ${b.error}`);
}

function viaGateway(base: string, app: string, token: string): Promise<number> {
  const port = new URL(base).port;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        headers: { host: `${app}.apps.localhost:${port}`, authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function importAdvisories(base: string, carol: string, dir: string) {
  // One OSV record is enough for scans to run.
  const osv = join(dir, 'osv');
  spawnSync('mkdir', ['-p', osv]);
  writeFileSync(
    join(osv, 'GHSA-x.json'),
    JSON.stringify({
      id: 'GHSA-x',
      affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['0.0.1'] }],
    }),
  );
  const zip = join(dir, 'osv.zip');
  spawnSync('python3', [
    '-c',
    `import zipfile;z=zipfile.ZipFile('${zip}','w');z.write('${join(osv, 'GHSA-x.json')}','GHSA-x.json');z.close()`,
  ]);
  const res = await fetch(`${base}/api/v1/advisories`, {
    method: 'POST',
    headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/zip' },
    body: (await import('node:fs')).readFileSync(zip),
  });
  if (!res.ok) throw new Error(`advisory import: ${res.status} ${await res.text()}`);
}

const work = mkdtempSync(join(tmpdir(), 'microapp-bench-runtime-'));
try {
  // 1. Cold start: idle apps stop after 1.2 s (MICROAPP_IDLE_MINUTES=0.02); each timed request wakes one.
  {
    const server = await startServer(null, { MICROAPP_IDLE_MINUTES: '0.02' });
    try {
      const [alice, carol, dave] = await Promise.all(
        ['alice', 'carol', 'dave'].map((u) => tokenFor({ url: server.url }, `${u}@example.com`)),
      );
      await importAdvisories(server.url, carol!, work);
      await formApp(server.url, alice!, 'cold-form');
      const times: number[] = [];
      for (let i = 0; i < colds; i++) {
        await new Promise((r) => setTimeout(r, 3500)); // past the idle time and the sweeper's next pass
        const t0 = performance.now();
        const status = await viaGateway(server.url, 'cold-form', dave!);
        if (status !== 200) throw new Error(`cold request answered ${status}`);
        times.push(performance.now() - t0);
      }
      console.log(
        `Cold start through the gateway (${colds} wake-ups): p50 ${pct(times, 0.5).toFixed(0)} ms, p95 ${pct(times, 0.95).toFixed(0)} ms`,
      );
    } finally {
      await server.cleanup();
    }
  }

  // 2. Throughput, and 3. memory per idle instance, on a server that keeps apps running.
  const server = await startServer(null, { MICROAPP_IDLE_MINUTES: '0' });
  try {
    const [alice, carol, dave] = await Promise.all(
      ['alice', 'carol', 'dave'].map((u) => tokenFor({ url: server.url }, `${u}@example.com`)),
    );
    await importAdvisories(server.url, carol!, work);
    await formApp(server.url, alice!, 'load-form');
    const socketDir = join(server.dataDir, 'runtime', 'sockets', 'load-form');
    const socketPath = join(socketDir, readdirSync(socketDir)[0]!, 'app.sock');
    const port = new URL(server.url).port;
    // The form answers 401 without the identity the gateway adds: that is still a full round trip to the app.
    const load = async (opts: Partial<autocannon.Options>) => {
      const r = await autocannon({ connections, duration: seconds, ...opts } as autocannon.Options);
      return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors };
    };
    const direct = await load({ url: 'http://app/', socketPath });
    const gateway = await load({
      url: `http://127.0.0.1:${port}/`,
      headers: { host: `load-form.apps.localhost:${port}`, authorization: `Bearer ${dave}` },
    });
    let nginx: { rps: number; p99: number; errors: number } | null = null;
    if (existsSync('/usr/sbin/nginx')) {
      const conf = join(work, 'nginx.conf');
      writeFileSync(
        conf,
        `worker_processes 1; daemon off; pid ${work}/nginx.pid; error_log ${work}/nginx.err;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${work}; proxy_temp_path ${work};
  upstream app { server unix:${socketPath}; keepalive 32; }
  server { listen 127.0.0.1:18089; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`,
      );
      const proc = spawn('/usr/sbin/nginx', ['-c', conf], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 500));
      nginx = await load({ url: 'http://127.0.0.1:18089/' });
      proc.kill('SIGTERM');
    }
    const row = (label: string, r: { rps: number; p99: number; errors: number }) =>
      `  ${label.padEnd(34)} ${r.rps.toFixed(0).padStart(7)} req/s   p99 ${String(r.p99).padStart(4)} ms   errors ${r.errors}`;
    console.log(`Throughput, ${connections} connections for ${seconds} s each:`);
    console.log(row('direct to the app socket', direct));
    if (nginx) console.log(row('nginx reverse proxy (no auth)', nginx));
    console.log(row('microapp gateway (token, policy, JWT)', gateway));
    console.log(
      "  (not like for like: direct and nginx get the app's 401, because only the gateway adds the identity; through the gateway the app also verifies an ES256 token per request inside its 0.5-core quota)",
    );
    console.log(
      `  gateway / direct: ${(gateway.rps / direct.rps).toFixed(2)}x throughput, ${(gateway.p99 / Math.max(1, direct.p99)).toFixed(1)}x p99` +
        (nginx
          ? `; gateway / nginx: ${(gateway.rps / nginx.rps).toFixed(2)}x throughput, ${(gateway.p99 / Math.max(1, nginx.p99)).toFixed(1)}x p99`
          : '; nginx not installed (apt-get install nginx-light)'),
    );

    for (let i = 0; i < instanceCount; i++) await formApp(server.url, alice!, `idle-${i}`);
    await new Promise((r) => setTimeout(r, 3000)); // let them settle after their first request
    const ivan = await tokenFor({ url: server.url }, 'ivan@example.com');
    const metrics = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ivan}` } })
    ).text();
    const rss = [...metrics.matchAll(/^microapp_app_memory_bytes\{app="idle-\d+"\} (\d+)/gm)].map((m) =>
      Number(m[1]),
    );
    const mean = rss.reduce((a, b) => a + b, 0) / Math.max(1, rss.length);
    const budget = totalmem() * 0.8;
    console.log(
      `Memory per idle form instance (${rss.length} instances, resident set of the sandbox's process tree): ${(mean / 1024 / 1024).toFixed(1)} MB; at 80% of this machine's ${(totalmem() / 1024 ** 3).toFixed(0)} GB that is about ${Math.floor(budget / mean)} idle instances (CPU is the limit under load: each gets a 0.5-core quota by default)`,
    );
  } finally {
    await server.cleanup();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
