import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../src/server.ts';
import { gitCli, withToken } from './git-client.ts';
import {
  call,
  lineFrom,
  lunchPoll,
  people,
  signInEveryone,
  sourceArchive,
  startReplica,
  startTestServer,
  type TestServer,
  upgradeVia,
  viaGateway,
} from './harness.ts';
import { referrersOf, startRegistry, type TestRegistry } from './oci-registry.ts';
import { importEmptySnapshot } from './replica-helpers.ts';

const pg = Boolean(process.env.MICROAPP_TEST_POSTGRES_URL);

/** A version published straight from an archive: a dependency-free app that says which app it is. */
async function publish(server: { url: string }, token: string, name: string) {
  const reg = await call(server as RunningServer, 'POST', '/api/v1/apps', {
    token,
    body: lunchPoll({ name, owner: people.dave, audience: { department: 'finance' } }),
  });
  assert.equal(reg.status, 201, reg.text);
  const artifact = await sourceArchive({
    'package.json': JSON.stringify({ name, version: '1.0.0' }),
    // It answers requests with its name, and a WebSocket with its name and whether it got an identity, then
    // echoes what it is sent.
    'server.js': `require('node:http').createServer((q, s) => s.end('${name} answers')).on('upgrade', (q, sock) => { sock.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n${name} live ' + Boolean(q.headers['x-microapp-identity']) + '\\n'); sock.pipe(sock); }).listen(process.env.PORT);\n`,
  });
  const sbom = { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] };
  const pub = await call(server as RunningServer, 'POST', `/api/v1/apps/${name}/versions`, {
    token,
    body: { version: '1.0.0', artifact, sbom },
  });
  assert.equal(pub.status, 201, pub.text);
  return pub.body.digest as string;
}

/** Each running deployment's app and the replica that runs it, by app name. */
const runningOn = (server: TestServer) =>
  server
    .rawDb()
    .kysely.selectFrom('deployments')
    .innerJoin('apps', 'apps.id', 'deployments.app_id')
    .select(['apps.name', 'deployments.replica_id'])
    .where('deployments.state', '=', 'running')
    .orderBy('apps.name')
    .execute();

const until = async (what: string, ok: () => Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

describe('three replicas on one PostgreSQL and an OCI registry', { skip: !pg && 'needs PostgreSQL' }, () => {
  let registry: TestRegistry;
  let a: TestServer;
  let b: RunningServer;
  let c: RunningServer;
  const dirs: string[] = [];
  let env: Record<string, string>;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  const replica = (name: string) => {
    const dataDir = mkdtempSync(join(tmpdir(), `microapp-${name}-`));
    dirs.push(dataDir);
    // The replicas share the KEK (in production MICROAPP_KEK_FILE from a secret) and nothing else on disk.
    copyFileSync(join(a.dataDir, 'kek'), join(dataDir, 'kek'));
    return { dataDir, env, name };
  };

  before(async () => {
    registry = await startRegistry({ user: { name: 'platform', password: 'registry-pw-9' } });
    env = {
      MICROAPP_BLOB_REGISTRY: `${registry.url}/microapp`,
      MICROAPP_BLOB_REGISTRY_USERNAME: 'platform',
      MICROAPP_BLOB_REGISTRY_PASSWORD: 'registry-pw-9',
      MICROAPP_REPLICA_LEASE_SECONDS: '1',
    };
    a = await startTestServer('postgres', { env: { ...env, MICROAPP_REPLICA_ID: 'replica-a' } });
    b = await startReplica(a, replica('replica-b'));
    c = await startReplica(a, replica('replica-c'));
    t = await signInEveryone(a);
    await importEmptySnapshot(a, t.carol);
  });
  after(async () => {
    for (const r of [c, b]) {
      await r?.close().catch(() => {});
      await r?.db.destroy().catch(() => {});
    }
    await a?.stop();
    await registry?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('each replica is ready, and its readiness covers the blob registry', async () => {
    for (const r of [a, b, c]) assert.equal((await call(r, 'GET', '/readyz')).status, 200);
    const live = await a.rawDb().kysely.selectFrom('replicas').select('id').execute();
    assert.ok(['replica-a', 'replica-b', 'replica-c'].every((id) => live.some((r) => r.id === id)));
  });

  test('a version published through one replica is pulled and deployed through the others', async () => {
    const servers = [a, b, c] as RunningServer[];
    const names = ['poll-one', 'poll-two', 'poll-three'];
    for (const [i, name] of names.entries()) {
      // Published through one replica, pulled through the next, deployed through the third.
      const digest = await publish(servers[i]!, t.dave, name);
      const pulled = await fetch(`${servers[(i + 1) % 3]!.url}/api/v1/apps/${name}/versions/1.0.0/artifact`, {
        headers: { authorization: `Bearer ${t.dave}` },
      });
      assert.equal(pulled.status, 200);
      const bytes = Buffer.from(await pulled.arrayBuffer());
      assert.equal(
        `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`,
        digest,
      );
      const deployer = servers[(i + 2) % 3]!;
      const dep = await call(deployer, 'POST', `/api/v1/apps/${name}/deployments`, {
        token: t.dave,
        body: { version: '1.0.0' },
      });
      assert.ok(dep.status < 300, dep.text);
      const answer = await viaGateway(deployer, name, '/', { authorization: `Bearer ${t.dave}` });
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.body, `${name} answers`);
    }
    // Any replica serves any app: a request reaching a replica that does not run it is forwarded to the one
    // that does, which signs the caller in and applies the access policy itself.
    for (const name of names)
      for (const server of servers) {
        const answer = await viaGateway(server, name, '/', { authorization: `Bearer ${t.dave}` });
        assert.equal(answer.status, 200, `${name} through ${server.url}: ${answer.body}`);
        assert.equal(answer.body, `${name} answers`);
      }
    // Forwarding decides nothing: without a sign-in the owner's refusal comes back, and a caller's own hop
    // header only stops the forwarding (the replica then says the app does not run here).
    const anonymous = await viaGateway(a, 'poll-three', '/', { accept: 'application/json' });
    assert.equal(anonymous.status, 401, anonymous.body);
    const forged = await viaGateway(a, 'poll-three', '/', {
      authorization: `Bearer ${t.dave}`,
      'x-microapp-replica-hop': 'replica-b',
    });
    assert.equal(forged.status, 503, forged.body);
    // A WebSocket too: the handshake goes to the replica that runs the app, which signs the caller in; then
    // the bytes flow both ways through the replica the caller reached.
    for (const server of [a, c]) {
      const live = await upgradeVia(server, 'poll-three', { authorization: `Bearer ${t.dave}` });
      assert.equal(live.status, 101, `through ${server.url}`);
      assert.equal(await lineFrom(live.socket!), 'poll-three live true', 'the app got an identity');
      live.socket!.write('ping through the replicas\n');
      assert.equal(await lineFrom(live.socket!), 'ping through the replicas');
      live.socket!.destroy();
    }
    assert.equal((await upgradeVia(a, 'poll-three')).status, 401, "the owner's refusal, passed on");
    // Every artifact is in the registry, not on any replica's disk.
    const auth = `Basic ${Buffer.from('platform:registry-pw-9').toString('base64')}`;
    const tags = await fetch(`${registry.url}/v2/microapp/artifacts/tags/list`, {
      headers: { authorization: auth },
    });
    // Three artifacts, and for each the index of its Sigstore bundles (its OCI referrers, by the fallback
    // tag, as Debian's registry has no referrers API): a client finds a version's signatures from it alone.
    assert.equal(((await tags.json()) as { tags: string[] }).tags.length, 6);
    const version = await call(b, 'GET', '/api/v1/apps/poll-one/versions/1.0.0', { token: t.dave });
    const referrers = await referrersOf(
      registry,
      { name: 'platform', password: 'registry-pw-9' },
      'microapp/artifacts',
      version.body.digest,
    );
    assert.deepEqual(referrers.items.map((r) => r.name).sort(), Object.keys(version.body.bundles).sort());
    const owners = await runningOn(a);
    assert.deepEqual(
      owners.map((o) => [o.name, o.replica_id]),
      [
        ['poll-one', 'replica-c'],
        ['poll-three', 'replica-b'],
        ['poll-two', 'replica-a'],
      ],
    );
  });

  test("an app's repository is pushed to through each replica and read through the others", async () => {
    // Dave's app from the test before; the replicas share its repository through PostgreSQL and the
    // registry alone (MICROAPP_GIT_STORE=shared, the default with a registry).
    const servers = [a, b, c] as RunningServer[];
    const work = mkdtempSync(join(tmpdir(), 'microapp-replica-git-'));
    dirs.push(work);
    const url = (i: number) => withToken(`${servers[i % 3]!.url}/git/poll-one.git`, t.dave);
    const pushed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const clone = join(work, `clone-${i}`);
      const cloned = await gitCli(work, ['clone', '--quiet', url(i), clone]);
      assert.equal(cloned.code, 0, cloned.stderr);
      writeFileSync(join(clone, `from-${i}.md`), `written through replica ${i}\n`);
      await gitCli(clone, ['add', '.']);
      await gitCli(clone, ['commit', '-qm', `Through replica ${i}`]);
      const push = await gitCli(clone, ['push', url(i), `HEAD:refs/heads/from-${i}`]);
      assert.equal(push.code, 0, push.stderr);
      pushed.push((await gitCli(clone, ['rev-parse', 'HEAD'])).stdout.trim());
    }
    // Every replica shows every branch at the commit pushed through another.
    for (let j = 0; j < 3; j++) {
      const listed = (await gitCli(work, ['ls-remote', url(j)])).stdout;
      for (let i = 0; i < 3; i++) assert.ok(listed.includes(`${pushed[i]}\trefs/heads/from-${i}`), listed);
    }
    // Nothing of it went through a disk the replicas share: each keeps its own copy.
    const copies = await a.rawDb().kysely.selectFrom('repo_packs').select('digest').execute();
    assert.ok(copies.length >= 4, 'the registration and three pushes, each a pack in the registry');
  });

  test("a replica that starts again leaves the others' apps and builds alone, and its own app runs once", async () => {
    const db = a.rawDb().kysely;
    // A build that replica B is running now.
    const app = await db
      .selectFrom('apps')
      .select('id')
      .where('name', '=', 'poll-three')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('builds')
      .values({
        id: 'bld_running_on_b',
        app_id: app.id,
        app_name: 'poll-three',
        requested_by: people.dave,
        source: 'upload',
        settings: '{}',
        deploy: 0,
        state: 'running',
        steps: '[]',
        created_at: new Date().toISOString(),
        replica_id: 'replica-b',
      })
      .execute();
    await c.close();
    await c.db.destroy();
    c = await startReplica(a, { ...replica('unused'), dataDir: dirs[1]!, name: 'replica-c' });
    const build = await db
      .selectFrom('builds')
      .select('state')
      .where('id', '=', 'bld_running_on_b')
      .executeTakeFirstOrThrow();
    assert.equal(build.state, 'running', "another live replica's build is its own");
    // C's clean stop gave its lease up, so its app runs again either on C (back first) or on the replica that
    // took it over meanwhile: once, in either case. A's and B's apps stayed where they were.
    const running = await runningOn(a);
    assert.deepEqual(
      running.map((o) => [o.name, o.name === 'poll-one' ? 'one replica' : o.replica_id]),
      [
        ['poll-one', 'one replica'],
        ['poll-three', 'replica-b'],
        ['poll-two', 'replica-a'],
      ],
      'nobody marked another replica’s deployment stopped',
    );
    // And C serves it, itself or by forwarding.
    await until('poll-one to answer through replica C', async () => {
      const answer = await viaGateway(c, 'poll-one', '/', { authorization: `Bearer ${t.dave}` });
      return answer.body === 'poll-one answers';
    });
  });

  test('when a replica stops, its lease runs out and another takes over its apps and fails its builds', async () => {
    const db = a.rawDb().kysely;
    await b.close();
    await b.db.destroy();
    b = undefined as unknown as RunningServer;
    await until('poll-three to run on another replica', async () => {
      const row = await db
        .selectFrom('deployments')
        .innerJoin('apps', 'apps.id', 'deployments.app_id')
        .select('deployments.replica_id')
        .where('apps.name', '=', 'poll-three')
        .where('deployments.state', '=', 'running')
        .executeTakeFirst();
      return row?.replica_id === 'replica-a' || row?.replica_id === 'replica-c';
    });
    const row = await db
      .selectFrom('deployments')
      .innerJoin('apps', 'apps.id', 'deployments.app_id')
      .select('deployments.replica_id')
      .where('apps.name', '=', 'poll-three')
      .where('deployments.state', '=', 'running')
      .executeTakeFirstOrThrow();
    const taker = row.replica_id === 'replica-a' ? a : c;
    // The taker claims the app, then starts it: it answers once it has started.
    await until('poll-three to answer on the replica that took it over', async () => {
      const answer = await viaGateway(taker, 'poll-three', '/', { authorization: `Bearer ${t.dave}` });
      return answer.body === 'poll-three answers';
    });
    await until('the stopped replica’s build to fail', async () => {
      const build = await db
        .selectFrom('builds')
        .select(['state', 'error'])
        .where('id', '=', 'bld_running_on_b')
        .executeTakeFirstOrThrow();
      return build.state === 'failed';
    });
    const build = await db
      .selectFrom('builds')
      .select('error')
      .where('id', '=', 'bld_running_on_b')
      .executeTakeFirstOrThrow();
    assert.match(build.error ?? '', /the replica running this build \(replica-b\) stopped/);
    const recovered = () =>
      db
        .selectFrom('audit_events')
        .select('action')
        .where('action', '=', 'deployment.recovered')
        .where('target', '=', 'poll-three')
        .execute();
    // The taker records the start in the transaction right after the instance answers: wait for it.
    await until('the takeover to be audited', async () => (await recovered()).length > 0);
    assert.equal((await recovered()).length, 1, 'taken over once, by one replica');
  });
});
