// An app scaled to zero wakes on the replica that ran it, whichever replica the next request reaches: its
// data is in that replica's data folder. Two replicas on one PostgreSQL with a data folder each (as on
// Kubernetes); the app counts visits in a file under /data, so a copy started elsewhere, with an empty
// folder, would count from one again. Before, a request reaching the other replica got 503 (it does not
// take a live replica's app over), so an idle app came back only for requests that reached its own.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../src/server.ts';
import {
  call,
  lunchPoll,
  people,
  signInEveryone,
  sourceArchive,
  startReplica,
  startTestServer,
  type TestServer,
  viaGateway,
} from './harness.ts';
import { importEmptySnapshot } from './replica-helpers.ts';

const pg = Boolean(process.env.MICROAPP_TEST_POSTGRES_URL);
const name = 'visit-counter';

describe('an idle app wakes where its data is', { skip: !pg && 'needs PostgreSQL' }, () => {
  let a: TestServer;
  let b: RunningServer;
  let dir: string;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  // Idle after about a second and a half without a request.
  const env = { MICROAPP_IDLE_MINUTES: '0.025', MICROAPP_REPLICA_LEASE_SECONDS: '2' };

  before(async () => {
    a = await startTestServer('postgres', { env: { ...env, MICROAPP_REPLICA_ID: 'replica-a' } });
    dir = mkdtempSync(join(tmpdir(), 'microapp-replica-b-'));
    copyFileSync(join(a.dataDir, 'kek'), join(dir, 'kek'));
    b = await startReplica(a, { dataDir: dir, env, name: 'replica-b' });
    t = await signInEveryone(a);
    await importEmptySnapshot(a, t.carol);
    const reg = await call(a, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({ name, owner: people.dave, audience: { department: 'finance' } }),
    });
    assert.equal(reg.status, 201, reg.text);
    const pub = await call(a, 'POST', `/api/v1/apps/${name}/versions`, {
      token: t.dave,
      body: {
        version: '1.0.0',
        artifact: await sourceArchive({
          'package.json': JSON.stringify({ name, version: '1.0.0' }),
          'server.js': `const fs = require('node:fs');
const file = require('node:path').join(process.env.MICROAPP_DATA_DIR, 'visits');
require('node:http').createServer((q, s) => {
  // The platform's start check asks for /: only visits count.
  if (q.url !== '/visit') return s.end('up');
  let n = 0;
  try { n = Number(fs.readFileSync(file, 'utf8')); } catch {}
  fs.writeFileSync(file, String(n + 1));
  s.end(String(n + 1));
}).listen(process.env.PORT);
`,
        }),
        sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] },
      },
    });
    assert.equal(pub.status, 201, pub.text);
  });
  after(async () => {
    await b?.close().catch(() => {});
    await b?.db.destroy().catch(() => {});
    await a?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('scaled to zero on one replica, woken through the other: it runs where it ran, with its data', async () => {
    const dep = await call(a, 'POST', `/api/v1/apps/${name}/deployments`, {
      token: t.dave,
      body: { version: '1.0.0' },
    });
    assert.ok(dep.status < 300, dep.text);
    const visit = async (via: RunningServer) => {
      const res = await viaGateway(via, name, '/visit', { authorization: `Bearer ${t.dave}` });
      assert.equal(res.status, 200, res.body);
      return Number(res.body);
    };
    assert.equal(await visit(a), 1);
    assert.equal(await visit(b), 2, 'forwarded to the replica that runs it');

    const state = async () =>
      (
        await a
          .rawDb()
          .kysely.selectFrom('deployments')
          .innerJoin('apps', 'apps.id', 'deployments.app_id')
          .select(['deployments.state', 'deployments.replica_id'])
          .where('apps.name', '=', name)
          .orderBy('deployments.started_at', 'desc')
          .executeTakeFirstOrThrow()
      ).state;
    const deadline = Date.now() + 20_000;
    while ((await state()) !== 'idle') {
      assert.ok(Date.now() < deadline, 'the app was never scaled to zero');
      await new Promise((r) => setTimeout(r, 200));
    }

    // The next request reaches the other replica: the app wakes on its own, and counts on.
    assert.equal(await visit(b), 3, 'woken where its data is, not started empty elsewhere');
    const running = await a
      .rawDb()
      .kysely.selectFrom('deployments')
      .innerJoin('apps', 'apps.id', 'deployments.app_id')
      .select('deployments.replica_id')
      .where('apps.name', '=', name)
      .where('deployments.state', '=', 'running')
      .execute();
    assert.deepEqual(running, [{ replica_id: 'replica-a' }]);
  });
});
