import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import pino, { type Logger } from 'pino';
import { create as createTar } from 'tar';
import { devUserLogin, newCliLogin } from '../../cli/src/login-flow.ts';
import { importAdvisories } from '../../cli/test/cli-harness.ts';
import { loadConfig } from '../src/config.ts';
import { type Db, openDatabase } from '../src/db/database.ts';
import { type RunningServer, startServer } from '../src/server.ts';

/** The engines database tests run on: SQLite always; PostgreSQL when MICROAPP_TEST_POSTGRES_URL is set. */
export function engines(): ('sqlite' | 'postgres')[] {
  return process.env.MICROAPP_TEST_POSTGRES_URL ? ['sqlite', 'postgres'] : ['sqlite'];
}

export type TestServer = RunningServer & {
  engine: 'sqlite' | 'postgres';
  dataDir: string;
  sqliteFile: string | null;
  pgSchema: string | null;
  /** A fresh connection to the same database, for tests that act as an attacker with database access. */
  rawDb(): Db;
  stop(): Promise<void>;
};

/** A real server in dev mode on port 0, with its own database (a temp SQLite file or a new PostgreSQL schema). */
export async function startTestServer(
  engine: 'sqlite' | 'postgres',
  options: { logger?: Logger; env?: Record<string, string> } = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'microapp-test-'));
  let db: Db;
  let pgSchema: string | null = null;
  const pgUrl = process.env.MICROAPP_TEST_POSTGRES_URL;
  if (engine === 'postgres') {
    if (!pgUrl) throw new Error('MICROAPP_TEST_POSTGRES_URL is not set');
    pgSchema = `t_${Math.random().toString(36).slice(2, 12)}`;
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    await client.query(`create schema ${pgSchema}`);
    await client.end();
    db = openDatabase({ kind: 'postgres', url: pgUrl, schema: pgSchema, poolSize: 5 });
  } else {
    db = openDatabase({ kind: 'sqlite', file: join(dataDir, 'microapp.sqlite') });
  }
  // Jobs run when a test asks (`server.internals.jobs.runDue()`), never on a timer behind its back.
  const config = loadConfig(
    { dev: true, port: 0, devIdpPort: 0, dataDir },
    { MICROAPP_LOG_LEVEL: 'silent', MICROAPP_JOBS: 'off', ...options.env },
  );
  const server = await startServer(config, {
    db,
    logger: options.logger ?? pino({ level: process.env.MICROAPP_TEST_LOG ?? 'silent' }),
  });
  const rawDb = () =>
    engine === 'postgres'
      ? openDatabase({ kind: 'postgres', url: pgUrl!, schema: pgSchema!, poolSize: 1 })
      : openDatabase({ kind: 'sqlite', file: join(dataDir, 'microapp.sqlite') });
  return {
    ...server,
    engine,
    dataDir,
    sqliteFile: engine === 'sqlite' ? join(dataDir, 'microapp.sqlite') : null,
    pgSchema,
    rawDb,
    async stop() {
      await server.close();
      await db.destroy();
      if (pgSchema) {
        const client = new pg.Client({ connectionString: pgUrl });
        await client.connect();
        await client.query(`drop schema ${pgSchema} cascade`);
        await client.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Signs in as a seeded dev user through the real OIDC flow and returns an API token. */
export async function tokenFor(server: { url: string }, email: string): Promise<string> {
  const pkce = newCliLogin();
  const code = await devUserLogin(server.url, email, pkce);
  const res = await fetch(`${server.url}/api/v1/auth/cli/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code, codeVerifier: pkce.verifier }),
  });
  if (res.status !== 201) throw new Error(`token exchange failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

export type ApiResponse<T = any> = { status: number; body: T; headers: Headers; text: string };

/** A plain HTTP call to the server; the body is parsed when it is JSON. */
export async function call<T = any>(
  server: RunningServer,
  method: string,
  path: string,
  options: {
    token?: string;
    body?: unknown;
    raw?: string;
    contentType?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await fetch(server.url + path, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed as T, headers: res.headers, text };
}

/** The seeded users by role, for tests. */
export const people = {
  alice: 'alice@example.com',
  dave: 'dave@example.com',
  frank: 'frank@example.com',
  bob: 'bob@example.com',
  erin: 'erin@example.com',
  carol: 'carol@example.com',
  ivan: 'ivan@example.com',
} as const;

/**
 * Another replica of the same platform as `a` (a PostgreSQL test server): the same database schema, jobs
 * off, a replica name of its own. By default it shares `a`'s data folder (its KEK, its repositories); with
 * `dataDir` it has its own, and `env` must then carry what the replicas share (MICROAPP_KEK, the blob
 * registry). Close it with `close()` and `db.destroy()`.
 */
export function startReplica(
  a: TestServer,
  options: { dataDir?: string; env?: Record<string, string>; name?: string } = {},
): Promise<RunningServer> {
  return startServer(
    loadConfig(
      { dev: true, port: 0, devIdpPort: 0, dataDir: options.dataDir ?? a.dataDir },
      {
        MICROAPP_LOG_LEVEL: 'silent',
        MICROAPP_JOBS: 'off',
        MICROAPP_REPLICA_ID: options.name ?? `replica-${Math.random().toString(36).slice(2, 8)}`,
        ...options.env,
      },
    ),
    {
      db: openDatabase({
        kind: 'postgres',
        url: process.env.MICROAPP_TEST_POSTGRES_URL!,
        schema: a.pgSchema!,
        poolSize: 3,
      }),
      logger: pino({ level: process.env.MICROAPP_TEST_LOG ?? 'silent' }),
    },
  );
}

/** Tokens for every seeded user, signed in once per server. */
export async function signInEveryone(server: RunningServer): Promise<Record<keyof typeof people, string>> {
  const entries = await Promise.all(
    Object.entries(people).map(async ([k, email]) => [k, await tokenFor(server, email)] as const),
  );
  return Object.fromEntries(entries) as Record<keyof typeof people, string>;
}

/** The seed's example manifest. */
export function bankReconciliation(overrides: Record<string, unknown> = {}) {
  return {
    name: 'bank-reconciliation',
    owner: 'alice@example.com',
    purpose: 'Match bank CSVs to ledger entries',
    dataClasses: ['internal', 'financial', 'pii'],
    audience: { department: 'finance', maxUsers: 40 },
    integrations: { egress: ['api.bank.example.com'], connectors: ['ledger-api'] },
    secrets: ['LEDGER_READ_TOKEN'],
    runtime: { kind: 'node', entry: 'server.js', memoryMb: 256, cpu: 0.5 },
    lifetime: { expires: '2027-03-31' },
    ...overrides,
  };
}

export function lunchPoll(overrides: Record<string, unknown> = {}) {
  return {
    name: 'team-lunch-poll',
    owner: 'dave@example.com',
    purpose: 'Let the team vote on where to have lunch on Fridays',
    dataClasses: ['internal'],
    ...overrides,
  };
}

/** A request to an app through the gateway: Host names the app, as a browser on `{app}.apps.localhost` sends it. */
export function viaGateway(
  server: { url: string },
  appName: string,
  path: string,
  headers: Record<string, string> = {},
  options: { method?: string; body?: string } = {},
) {
  const url = new URL(server.url);
  return new Promise<{ status: number; body: string; headers: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: url.port,
          path,
          method: options.method ?? 'GET',
          headers: { host: `${appName}.apps.localhost:${url.port}`, ...headers },
        },
        (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        },
      );
      req.on('error', reject);
      req.end(options.body);
    },
  );
}

/** Opens an upgraded connection (a WebSocket handshake) to an app through the gateway. */
export function upgradeVia(server: { url: string }, appName: string, headers: Record<string, string> = {}) {
  const url = new URL(server.url);
  return new Promise<{ status: number; socket?: Socket }>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: url.port,
      path: '/live',
      headers: {
        host: `${appName}.apps.localhost:${url.port}`,
        connection: 'Upgrade',
        upgrade: 'websocket',
        ...headers,
      },
    });
    req.on('upgrade', (res, socket, head) => {
      // Bytes that came with the handshake belong to the stream.
      if (head.length) socket.unshift(head);
      resolve({ status: res.statusCode ?? 0, socket });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The next line an upgraded connection sends. */
export function lineFrom(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i >= 0) {
        socket.off('data', onData);
        resolve(buf.slice(0, i));
      }
    };
    socket.on('data', onData);
  });
}

/** An app folder as the base64 tar.gz that `POST /api/v1/apps/{name}/builds` takes as `source`. */
export async function sourceArchive(files: Record<string, string>): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'microapp-source-'));
  try {
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, f)), { recursive: true });
      writeFileSync(join(root, f), text);
    }
    const out = `${root}.tar.gz`;
    await createTar({ gzip: true, cwd: root, file: out, portable: true }, Object.keys(files));
    const bytes = readFileSync(out).toString('base64');
    rmSync(out, { force: true });
    return bytes;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Polls a platform build until it ends. */
export async function buildFinished(
  server: TestServer,
  name: string,
  id: string,
  token: string,
): Promise<{
  id: string;
  state: string;
  steps: { step: string; status: string; detail: string }[];
  version: string;
  error: string | null;
  url: string | null;
}> {
  for (;;) {
    const res = await call(server, 'GET', `/api/v1/apps/${name}/builds/${id}`, { token });
    if (res.status !== 200) throw new Error(`build ${id}: ${res.status} ${res.text}`);
    if (res.body.state === 'passed' || res.body.state === 'failed') return res.body;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A server ready for platform builds: everyone signed in, and an advisory snapshot (scans need one). */
export async function startBuildServer(
  env: Record<string, string> = {},
  options: { logger?: Logger } = {},
): Promise<{
  server: TestServer;
  t: Awaited<ReturnType<typeof signInEveryone>>;
  dir: string;
  stop: () => Promise<void>;
}> {
  const server = await startTestServer('sqlite', { env, ...options });
  const t = await signInEveryone(server);
  const dir = mkdtempSync(join(tmpdir(), 'microapp-builds-'));
  await importAdvisories({ MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url }, dir);
  return {
    server,
    t,
    dir,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The files of a dependency-free Node app for `sourceArchive`: manifest, package, lockfile, a passing test. */
export function nodeApp(name: string, manifestYaml: string, serverJs: string, version = '1.0.0') {
  return {
    'microapp.yaml': manifestYaml,
    'package.json': JSON.stringify({ name, version, private: true, scripts: { test: 'node --test' } }),
    'package-lock.json': JSON.stringify({
      name,
      version,
      lockfileVersion: 3,
      requires: true,
      packages: { '': { name, version } },
    }),
    'server.js': serverJs,
    'test/ok.test.js': "require('node:test')('ok', () => {});\n",
  };
}

/** GET over an app instance's unix socket, as the gateway sends it. */
export function getOverSocket(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: 30_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until a sandboxed app answers on its socket (any status), or fails with what it printed. */
export async function sandboxReady(p: { socketPath: string; output: () => string }): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await getOverSocket(p.socketPath, '/healthz');
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`the app did not listen on its socket: ${p.output()}`);
}

/** A company CA and a certificate it signed for 127.0.0.1, made with openssl. */
export function companyCa(dir: string): { ca: string; key: string; cert: string } {
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  writeFileSync(
    join(dir, 'ca.ext'),
    'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n',
  );
  writeFileSync(
    join(dir, 'srv.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n',
  );
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Example Bank Root CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  run([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'srv.key',
    '-out',
    'srv.csr',
    '-subj',
    '/CN=npm.bank.example',
  ]);
  run([
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'srv.pem',
    '-days',
    '2',
    '-extfile',
    'srv.ext',
  ]);
  return {
    ca: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'srv.key'), 'utf8'),
    cert: readFileSync(join(dir, 'srv.pem'), 'utf8'),
  };
}
