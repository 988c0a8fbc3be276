import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import {
  canDropToHostUser,
  hostUidFor,
  socketRoot,
} from '../../packages/server/src/modules/runtime/host-user.ts';
import { identitySigningKey } from '../../packages/server/src/modules/runtime/identity-key.ts';
import { tokenFor } from '../../packages/server/test/harness.ts';
import {
  BenchFailure,
  benchArgs,
  type Memory,
  mb,
  median,
  memoryOf,
  pidsOfUid,
  processTree,
  runBench,
} from '../lib/bench.ts';
import { type LoadResult, loadInterleaved, type Target } from '../lib/http-load.ts';
import { startServer } from '../lib/server-process.ts';
import { nginxBin, plainProcess, startNginx, startNodeProxy } from './alternatives.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  'The runtime: gateway, nginx and a direct connection to the same app, cold starts, memory per instance.',
  {
    seconds: { default: '2', quick: '1', help: 'length of one slice of load, in seconds' },
    rounds: { default: '3', quick: '1', help: 'slices per target; the targets take turns' },
    connections: { default: '10', quick: '4', help: 'concurrent connections of the load generator' },
    colds: { default: '5', quick: '1', help: 'cold starts timed (each waits for the app to go idle)' },
    rate: {
      default: '1000',
      quick: '200',
      help: 'requests per second of the paced section (GET / on a schedule, for the latency each proxy adds; 0 to skip it)',
    },
    instances: { default: '4', quick: '1', help: 'idle instances measured for memory' },
    'nginx-user': {
      default: 'root',
      help: 'the user nginx workers run as; they must be able to open the app socket, as the gateway does (nobody cannot)',
    },
  },
);
const seconds = number('seconds');
const rounds = number('rounds');
const connections = number('connections');
const colds = number('colds');
const instanceCount = number('instances');
const rate = number('rate');
const nginxUser = values['nginx-user'];

type Server = Awaited<ReturnType<typeof startServer>>;

async function api(base: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new BenchFailure(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A form app, registered (approved at once: internal data), built and deployed by the platform. */
async function formApp(base: string, alice: string, name: string): Promise<{ id: string }> {
  const app = await api(base, alice, 'POST', '/api/v1/apps', {
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
  if (b.state !== 'passed') throw new BenchFailure(`build of ${name} failed: ${b.error}`);
  return { id: app.app?.id ?? app.id };
}

function viaGateway(base: string, app: string, token: string, path = '/'): Promise<number> {
  const port = new URL(base).port;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
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

async function importAdvisories(base: string, carol: string) {
  // One OSV record is enough for scans to run.
  const { zipSync } = await import('fflate');
  const record = {
    id: 'GHSA-x',
    affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['0.0.1'] }],
  };
  const res = await fetch(`${base}/api/v1/advisories`, {
    method: 'POST',
    headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/zip' },
    body: zipSync({ 'GHSA-x.json': Buffer.from(JSON.stringify(record)) }),
  });
  if (!res.ok) throw new BenchFailure(`advisory import: ${res.status} ${await res.text()}`);
}

/** The socket of the app's running instance (as root: the one its own host user owns). */
function socketOf(server: Server, app: { id: string; name: string }): string {
  if (canDropToHostUser()) {
    const uid = hostUidFor(app.id, 200_000);
    for (const dir of readdirSync(socketRoot)) {
      const sock = join(socketRoot, dir, 'app.sock');
      if (statSync(sock, { throwIfNoEntry: false })?.uid === uid) return sock;
    }
  } else {
    const dir = join(server.dataDir, 'runtime', 'sockets', app.name);
    for (const id of readdirSync(dir))
      if (existsSync(join(dir, id, 'app.sock'))) return join(dir, id, 'app.sock');
  }
  throw new BenchFailure(`no socket found for ${app.name}`);
}

/** The processes of one app's sandbox: as root, those of its own host user; else the server's children. */
function appPids(server: Server, app: { id: string }): number[] {
  if (canDropToHostUser()) return pidsOfUid(hostUidFor(app.id, 200_000));
  return processTree(server.child.pid!).slice(1);
}

const fmtRow = (r: LoadResult) =>
  `  ${r.label.padEnd(40)} ${r.rps.toFixed(0).padStart(7)} ${String(r.p50).padStart(5)} ${String(r.p99).padStart(5)} ${(r.cpuPer1000.proxy ?? 0).toFixed(0).padStart(9)} ${(r.cpuPer1000.app ?? 0).toFixed(0).padStart(9)}`;

await runBench(async () => {
  const work = mkdtempSync(join(tmpdir(), 'microapp-bench-runtime-'));
  try {
    console.log(`node ${process.version}, ${cpus().length} cores\nreproduce with: ${command}\n`);

    // 1. Cold start: idle apps stop after 1.2 s (MICROAPP_IDLE_MINUTES=0.02); each timed request wakes one.
    if (colds > 0) {
      const server = await startServer(null, { MICROAPP_IDLE_MINUTES: '0.02' });
      try {
        const [alice, carol, dave] = await Promise.all(
          ['alice', 'carol', 'dave'].map((u) => tokenFor({ url: server.url }, `${u}@example.com`)),
        );
        await importAdvisories(server.url, carol!);
        await formApp(server.url, alice!, 'cold-form');
        const times: number[] = [];
        for (let i = 0; i < colds; i++) {
          await new Promise((r) => setTimeout(r, 3500)); // past the idle time and the sweeper's next pass
          const t0 = performance.now();
          const status = await viaGateway(server.url, 'cold-form', dave!);
          if (status !== 200) throw new BenchFailure(`a cold request answered ${status}, not 200`);
          times.push(performance.now() - t0);
        }
        const sorted = [...times].sort((a, b) => a - b);
        console.log(
          `Cold start through the gateway, ${colds} wake-ups: median ${median(times).toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`,
        );
      } finally {
        await server.cleanup();
      }
    }

    // 2. Throughput and CPU per request, and 3. memory per idle instance, on a server that keeps apps running.
    const server = await startServer(null, { MICROAPP_IDLE_MINUTES: '0' });
    try {
      const [alice, carol, dave] = await Promise.all(
        ['alice', 'carol', 'dave'].map((u) => tokenFor({ url: server.url }, `${u}@example.com`)),
      );
      await importAdvisories(server.url, carol!);
      const load = { name: 'load-form', ...(await formApp(server.url, alice!, 'load-form')) };
      const socketPath = socketOf(server, load);
      const port = new URL(server.url).port;
      // The identity the gateway would add for dave, signed with the platform's key (derived from its KEK).
      const key = identitySigningKey(
        Buffer.from(readFileSync(join(server.dataDir, 'kek'), 'utf8').trim(), 'base64'),
      );
      const identity = async () => ({
        'x-microapp-identity': await new SignJWT({
          email: 'dave@example.com',
          name: 'Dave',
          department: 'finance',
          roles: ['user'],
        })
          .setProtectedHeader({ alg: 'ES256' })
          .setSubject('dave@example.com')
          .setAudience('load-form')
          .setIssuedAt()
          .setExpirationTime('60s')
          .sign(key.privateKey),
      });
      const app = () => appPids(server, load);
      const nginx = existsSync(nginxBin) ? await startNginx(work, socketPath, nginxUser) : null;
      const nodeProxy = await startNodeProxy(socketPath);
      // As fast as each answers (throughput, CPU per request), then at a fixed rate below what any of them
      // takes (the latency a proxy adds, without the queue a saturated one builds).
      const sections: [string, string, number, number | undefined][] = [
        ['/favicon.ico', 'the app answers 204 without any work', 204, undefined],
        ['/', 'the app verifies the ES256 identity and renders its page: 200', 200, undefined],
        ...(rate
          ? [
              ['/', `the same, ${rate} requests a second on a schedule`, 200, rate] as [
                string,
                string,
                number,
                number,
              ],
            ]
          : []),
      ];
      try {
        for (const [path, what, expect, paced] of sections) {
          const targets: Target[] = [
            {
              label: 'direct to the app socket',
              url: `http://app${path}`,
              socketPath,
              headers: identity,
              expect,
              cpu: { app },
            },
            ...(nginx
              ? [
                  {
                    label: 'nginx reverse proxy',
                    url: `${nginx.url}${path}`,
                    headers: identity,
                    expect,
                    cpu: { proxy: nginx.pids, app },
                    diagnose: nginx.log,
                  },
                ]
              : []),
            {
              label: 'plain Node.js proxy (http module)',
              url: `${nodeProxy.url}${path}`,
              headers: identity,
              expect,
              cpu: { proxy: nodeProxy.pids, app },
            },
            {
              label: 'microapp gateway (token, policy, JWT)',
              url: `http://127.0.0.1:${port}${path}`,
              headers: () => ({ host: `load-form.apps.localhost:${port}`, authorization: `Bearer ${dave}` }),
              expect,
              cpu: { proxy: () => [server.child.pid!], app },
            },
          ];
          const results = await loadInterleaved(
            paced ? targets.map((t) => ({ ...t, rate: paced })) : targets,
            { connections, seconds, rounds },
          );
          console.log(
            `\nGET ${path} (${what}); ${paced ? 'at most ' : ''}${connections} connections, ${rounds} slice(s) of ${seconds} s per row, taking turns`,
          );
          console.log(`  ${''.padEnd(40)}   req/s   p50   p99  proxy CPU   app CPU`);
          console.log(`  ${''.padEnd(40)}           (ms)  (ms)  ms/1k req ms/1k req`);
          for (const r of results) console.log(fmtRow(r));
          const direct = results[0]!;
          const gateway = results.at(-1)!;
          const base = nginx ? results[1]! : direct;
          if (paced) {
            const added = Math.round((gateway.p99 - base.p99) * 10) / 10;
            console.log(
              `  gateway / ${nginx ? 'nginx' : 'direct'}: p50 ${gateway.p50} against ${base.p50} ms, p99 ${gateway.p99} against ${base.p99} ms: ${added} ms added (goal: at most 2 ms${nginx ? ' over nginx' : ''}: ${added <= 2 ? 'met' : 'missed'})`,
            );
            continue;
          }
          console.log(
            `  gateway / ${nginx ? 'nginx' : 'direct'}: ${(gateway.rps / base.rps).toFixed(2)}x throughput, p99 ${gateway.p99 - base.p99 >= 0 ? '+' : ''}${gateway.p99 - base.p99} ms` +
              (nginx
                ? `, ${(gateway.cpuPer1000.proxy! / Math.max(0.001, base.cpuPer1000.proxy!)).toFixed(1)}x the proxy's CPU per request`
                : '; nginx is not installed (apt-get install nginx-light)'),
          );
          const plain = results.at(-2)!;
          console.log(
            `  gateway / plain Node.js proxy: ${(gateway.rps / plain.rps).toFixed(2)}x throughput, ${(gateway.cpuPer1000.proxy! / Math.max(0.001, plain.cpuPer1000.proxy!)).toFixed(1)}x its CPU per request` +
              (nginx
                ? `; the plain Node.js proxy itself takes ${(plain.cpuPer1000.proxy! / Math.max(0.001, base.cpuPer1000.proxy!)).toFixed(1)}x nginx's CPU (goal for the gateway: 5x)`
                : ''),
          );
        }
      } finally {
        nginx?.stop();
        nodeProxy.stop();
      }

      // 3. Memory per idle instance, after one request each, beside a plain process of the same code.
      const idle: { id: string; name: string }[] = [];
      for (let i = 0; i < instanceCount; i++) {
        const name = `idle-${i}`;
        idle.push({ name, ...(await formApp(server.url, alice!, name)) });
        const status = await viaGateway(server.url, name, dave!);
        if (status !== 200) throw new BenchFailure(`${name} answered ${status}, not 200`);
      }
      const plain = await plainProcess(server, work, key.publicPem, identity);
      await new Promise((r) => setTimeout(r, 2000)); // let them settle after their first request
      const each: Memory[] = idle.map((a) => memoryOf(canDropToHostUser() ? appPids(server, a) : []));
      const plainMemory = memoryOf([plain.pid]);
      plain.stop();
      if (canDropToHostUser()) {
        const mid = (f: keyof Memory) => median(each.map((m) => m[f]));
        console.log(
          `\nMemory per idle form instance, median of ${each.length} (every process of its sandbox, after one request):`,
        );
        console.log(
          `  sandboxed instance     RSS ${mb(mid('rss'))}   PSS ${mb(mid('pss'))}   private ${mb(mid('private'))}`,
        );
        console.log(
          `  plain node process     RSS ${mb(plainMemory.rss)}   PSS ${mb(plainMemory.pss)}   private ${mb(plainMemory.private)}   (the same code, unsandboxed)`,
        );
        const budget = totalmem() * 0.8;
        console.log(
          `  at 80% of this machine's ${(totalmem() / 1024 ** 3).toFixed(0)} GB: about ${Math.floor(budget / mid('pss'))} idle instances by PSS (${Math.floor(budget / mid('rss'))} if RSS is summed, which counts shared pages once per process); CPU is the limit under load (0.5 core each by default)`,
        );
      } else
        console.log(
          `\nMemory per instance: skipped (run as root, where each app has its own host user, to tell instances apart); a plain node process of the app: PSS ${mb(plainMemory.pss)}, private ${mb(plainMemory.private)}`,
        );
    } finally {
      await server.cleanup();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
