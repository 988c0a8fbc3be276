// A replica killed (SIGKILL) while it serves: what it answered is kept, what it ran moves to another replica.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { openDatabase } from '../src/db/database.ts';
import type { RunningServer } from '../src/server.ts';
import { call, lunchPoll, people, sourceArchive, tokenFor, viaGateway } from './harness.ts';
import { startRegistry, type TestRegistry } from './oci-registry.ts';
import { importEmptySnapshot } from './replica-helpers.ts';

const url = process.env.MICROAPP_TEST_POSTGRES_URL;
const bin = resolve(import.meta.dirname, '../../cli/bin/microapp.js');

type Replica = { url: string; child: ChildProcess };

/** `microapp server --dev` as an operator starts it, in a process of its own; resolves once it listens. */
function startProcess(env: Record<string, string>, dataDir: string): Promise<Replica> {
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  const child = spawn(
    process.execPath,
    [bin, 'server', '--dev', '--port', '0', '--dev-idp-port', '0', '--data-dir', dataDir],
    {
      env: { ...parent, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  return new Promise((done, fail) => {
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) done({ url: m[1]!, child });
    });
    child.once('exit', (code) => fail(new Error(`the replica exited (${code}): ${err}`)));
  });
}

describe('a replica killed during load', { skip: !url && 'needs PostgreSQL' }, () => {
  let registry: TestRegistry;
  let schema: string;
  let env: Record<string, string>;
  const dirs = [
    mkdtempSync(join(tmpdir(), 'microapp-kill-a-')),
    mkdtempSync(join(tmpdir(), 'microapp-kill-b-')),
  ];
  const running: Replica[] = [];
  const db = () => openDatabase({ kind: 'postgres', url: url!, schema, poolSize: 1 });

  before(async () => {
    registry = await startRegistry();
    schema = `t_${Math.random().toString(36).slice(2, 12)}`;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`create schema ${schema}`);
    await client.end();
    const dbUrl = new URL(url!);
    dbUrl.searchParams.set('options', `-c search_path=${schema}`);
    env = {
      DATABASE_URL: dbUrl.href,
      MICROAPP_BLOB_REGISTRY: `${registry.url}/microapp`,
      MICROAPP_KEK: randomBytes(32).toString('base64'),
      MICROAPP_REPLICA_LEASE_SECONDS: '1',
      MICROAPP_JOBS: 'off',
      MICROAPP_LOG_LEVEL: 'warn',
    };
  });
  after(async () => {
    for (const r of running) r.child.kill('SIGKILL');
    await registry?.stop();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('answered requests and committed writes survive the kill; its app moves to the other replica', async () => {
    const a = await startProcess({ ...env, MICROAPP_REPLICA_ID: 'replica-a' }, dirs[0]!);
    running.push(a);
    const b = await startProcess({ ...env, MICROAPP_REPLICA_ID: 'replica-b' }, dirs[1]!);
    running.push(b);
    const dave = await tokenFor(a, people.dave);
    const carol = await tokenFor(a, people.carol);
    await importEmptySnapshot(a, carol);
    const ra = a as unknown as RunningServer;
    const reg = await call(ra, 'POST', '/api/v1/apps', {
      token: dave,
      body: lunchPoll({ name: 'under-load', owner: people.dave, audience: { department: 'finance' } }),
    });
    assert.equal(reg.status, 201, reg.text);
    const pub = await call(ra, 'POST', '/api/v1/apps/under-load/versions', {
      token: dave,
      body: {
        version: '1.0.0',
        artifact: await sourceArchive({
          'package.json': JSON.stringify({ name: 'under-load', version: '1.0.0' }),
          'server.js': "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n",
        }),
        sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] },
      },
    });
    assert.equal(pub.status, 201, pub.text);
    const dep = await call(ra, 'POST', '/api/v1/apps/under-load/deployments', {
      token: dave,
      body: { version: '1.0.0' },
    });
    assert.ok(dep.status < 300, dep.text);

    // Load on A: app requests (their usage batched in memory) and registrations, on both replicas.
    let answered = 0;
    for (let i = 0; i < 120; i++) {
      const r = await viaGateway(a, 'under-load', `/?i=${i}`, { authorization: `Bearer ${dave}` });
      if (r.status === 200) answered++;
    }
    assert.equal(answered, 120);
    const registered: string[] = [];
    const register = async (r: Replica, name: string) => {
      const res = await call(r as unknown as RunningServer, 'POST', '/api/v1/apps', {
        token: dave,
        body: lunchPoll({ name, owner: people.dave }),
      }).catch(() => null);
      if (res?.status === 201) registered.push(name);
    };
    const exited = new Promise((r) => a.child.once('exit', r));
    const writes = Array.from({ length: 12 }, (_, i) => register(i % 2 ? b : a, `load-${i}`));
    a.child.kill('SIGKILL');
    await Promise.all(writes);
    await exited;

    // The other replica takes over the app once A's lease runs out, and serves it.
    const check = db();
    try {
      for (let i = 0; ; i++) {
        const row = await check.kysely
          .selectFrom('deployments')
          .innerJoin('apps', 'apps.id', 'deployments.app_id')
          .select('deployments.replica_id')
          .where('apps.name', '=', 'under-load')
          .where('deployments.state', '=', 'running')
          .executeTakeFirst();
        if (row?.replica_id === 'replica-b') break;
        if (i > 100) throw new Error(`the app stayed with ${row?.replica_id}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // B claims the app, then starts it: it answers once it has started.
      for (
        let i = 0;
        (await viaGateway(b, 'under-load', '/', { authorization: `Bearer ${dave}` })).body !== 'ok';
        i++
      ) {
        if (i > 100) throw new Error('the app never answered on replica B');
        await new Promise((r) => setTimeout(r, 200));
      }

      // A starts again: it writes the usage rows its log kept, and leaves the app where it now runs.
      const again = await startProcess({ ...env, MICROAPP_REPLICA_ID: 'replica-a' }, dirs[0]!);
      running.push(again);
      const app = await check.kysely
        .selectFrom('apps')
        .select('id')
        .where('name', '=', 'under-load')
        .executeTakeFirstOrThrow();
      const rows = await check.kysely
        .selectFrom('app_usage')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('app_id', '=', app.id)
        .where('status', '=', 200)
        .executeTakeFirstOrThrow();
      assert.ok(Number(rows.n) >= answered, `${rows.n} usage rows for ${answered} answered requests`);
      // Every registration that was answered 201 is there, with its audit event; the chain verifies.
      const names = (await check.kysely.selectFrom('apps').select('name').execute()).map((r) => r.name);
      for (const name of registered) assert.ok(names.includes(name), name);
      const verify = await call(again as unknown as RunningServer, 'GET', '/api/v1/audit/verify', {
        token: carol,
      });
      assert.equal(verify.body.ok, true, verify.text);
      const running2 = await check.kysely
        .selectFrom('deployments')
        .select('replica_id')
        .where('app_id', '=', app.id)
        .where('state', '=', 'running')
        .execute();
      assert.deepEqual(
        running2.map((r) => r.replica_id),
        ['replica-b'],
        'one instance, on B',
      );
    } finally {
      await check.destroy();
    }
  });
});
