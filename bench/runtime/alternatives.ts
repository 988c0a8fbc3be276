// What the runtime bench compares the gateway with: nginx as a plain reverse proxy to the app's socket, and
// the app's own code as a plain node process (for memory).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BenchFailure, processTree } from '../lib/bench.ts';

export const nginxBin = '/usr/sbin/nginx';

/** The primary group of a user (nginx's `user` line needs one; Debian's nobody is in nogroup). */
function groupOf(user: string): string {
  const r = spawnSync('id', ['-gn', user], { encoding: 'utf8' });
  if (r.status !== 0) throw new BenchFailure(`--nginx-user ${user}: no such user`);
  return r.stdout.trim();
}

/** A loopback port nobody is using now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export async function startNginx(
  work: string,
  socketPath: string,
  nginxUser: string,
): Promise<{ url: string; pids: () => number[]; log: () => string; stop: () => void }> {
  const port = await freePort();
  const dir = join(work, 'nginx');
  mkdirSync(dir, { mode: 0o755 });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? `user ${nginxUser} ${groupOf(nginxUser)};\n` : ''}worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  upstream app { server unix:${socketPath}; keepalive 32; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`,
  );
  let stderr = '';
  const proc: ChildProcess = spawn(nginxBin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d) => {
    stderr += d;
  });
  const log = () => {
    const text = `${stderr}${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`;
    return `nginx's error log says:\n  ${text.trim().split('\n').slice(-3).join('\n  ')}`;
  };
  for (let i = 0; i < 50 && !existsSync(join(dir, 'nginx.pid')) && proc.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 100));
  if (proc.exitCode !== null) throw new BenchFailure(`nginx did not start. ${log()}`);
  return {
    url: `http://127.0.0.1:${port}`,
    pids: () => processTree(proc.pid!),
    log,
    stop: () => proc.kill('SIGTERM'),
  };
}

// The least a reverse proxy written on Node.js's own http module does: pass each request and its headers
// to the app's socket over kept connections, and the answer back. What the gateway costs beyond it is
// sign-in, policy, the identity it signs and metering.
const nodeProxySource = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, timeout: 2000, maxFreeSockets: 64 });
const [socketPath, port] = process.argv.slice(1);
http.createServer((req, res) => {
  const send = (reuse) => {
    const up = http.request({ socketPath, agent: reuse && agent, method: req.method, path: req.url, headers: req.headers }, (a) => {
      res.writeHead(a.statusCode, a.headers);
      a.pipe(res);
    });
    // As nginx and the gateway do: a GET lost on a kept connection the app just closed goes once more.
    up.on('error', () => {
      if (up.reusedSocket && reuse && req.method === 'GET' && !res.headersSent) return send(false);
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    if (req.method === 'GET') up.end();
    else req.pipe(up);
  };
  send(true);
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\\n'));
`;

/** A plain Node.js reverse proxy to the app's socket, in a process of its own. */
export async function startNodeProxy(
  socketPath: string,
): Promise<{ url: string; pids: () => number[]; stop: () => void }> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['-e', nodeProxySource, socketPath, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', (code) => reject(new BenchFailure(`the plain Node.js proxy exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, pids: () => [proc.pid!], stop: () => proc.kill('SIGTERM') };
}

/** The deployed app's code run as a plain node process (no sandbox), answered once with an identity. */
export async function plainProcess(
  server: { dataDir: string },
  work: string,
  publicPem: string,
  identity: () => Promise<Record<string, string>>,
): Promise<{ pid: number; stop: () => void }> {
  const codeRoot = join(server.dataDir, 'runtime', 'code', 'load-form');
  const code = readdirSync(codeRoot)
    .map((d) => join(codeRoot, d))
    .find((d) => existsSync(join(d, 'server.js')));
  if (!code) throw new BenchFailure(`no unpacked code of load-form under ${codeRoot}`);
  const data = join(work, 'plain-data');
  mkdirSync(data, { recursive: true });
  const sock = join(work, 'plain.sock');
  const child = spawn(process.execPath, ['server.js'], {
    cwd: code,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      NODE_ENV: 'production',
      PORT: sock,
      MICROAPP_DATA_DIR: data,
      MICROAPP_IDENTITY_PUBLIC_KEY: publicPem,
      MICROAPP_OWNER: 'alice@example.com',
      MICROAPP_APP: 'load-form',
    },
    stdio: 'ignore',
  });
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  const headers = await identity();
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ socketPath: sock, path: '/', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
  if (status !== 200) throw new BenchFailure(`the plain process answered ${status}, not 200`);
  return { pid: child.pid!, stop: () => child.kill('SIGTERM') };
}
