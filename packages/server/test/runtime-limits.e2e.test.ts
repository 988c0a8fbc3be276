import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  buildFinished,
  call,
  lunchPoll,
  nodeApp,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

// An app that shows what its limits do: /hog allocates until something stops it, /pids starts processes.
const hungry = nodeApp(
  'hungry',
  'name: hungry\nowner: alice@example.com\npurpose: Show what the runtime limits do to a greedy app\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\nruntime: { kind: node, entry: server.js, memoryMb: 64, cpu: 0.25 }\n',
  `const http = require('node:http');
const { spawn } = require('node:child_process');
const kept = [];
http.createServer((req, res) => {
  if (req.url === '/hog') { for (;;) kept.push(Buffer.alloc(1 << 20, 1)); }
  if (req.url === '/pids') {
    let started = 0, refused = 0;
    for (let i = 0; i < 300; i++) {
      try {
        const c = spawn('sleep', ['3'], { stdio: 'ignore' });
        c.on('error', () => {});
        if (c.pid) started++; else refused++;
      } catch { refused++; }
    }
    return res.end(JSON.stringify({ started, refused }));
  }
  res.end('ok');
}).listen(process.env.PORT);
`,
);

/** The memory, CPU and process limits of the local driver, enforced by the kernel through cgroups. */
describe('runtime limits (cgroups)', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let deploymentId: string;

  before(async () => {
    ({ server, t, stop } = await startBuildServer({ MICROAPP_BUILD_MEMORY_MB: '768' }));
    const manifest = lunchPoll({
      name: 'hungry',
      owner: people.alice,
      purpose: 'Show what the runtime limits do to a greedy app',
      runtime: { kind: 'node', entry: 'server.js', memoryMb: 64, cpu: 0.25 },
    });
    assert.equal(
      (await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: manifest })).status,
      201,
    );
    const res = await call(server, 'POST', '/api/v1/apps/hungry/builds', {
      token: t.alice,
      body: { source: await sourceArchive(hungry), deploy: true },
    });
    const build = await buildFinished(server, 'hungry', res.body.id, t.alice);
    assert.equal(build.state, 'passed', `${build.error} ${JSON.stringify(build.steps)}`);
    const events = await call(server, 'GET', '/api/v1/audit/events?app=hungry&action=deployment.started', {
      token: t.ivan,
    });
    deploymentId = events.body.items[0].summary.deploymentId;
  });
  after(async () => {
    await stop();
  });

  /** The instance's control-group folders, in whichever layout the host has. */
  function groupsOf(id: string): { memory: string; cpu: string; pids: string; v: 1 | 2 } {
    const find = (base: string) => {
      const hit = existsSync(base) ? readdirSync(base).find((d) => d.startsWith(`${id}-`)) : undefined;
      return hit ? join(base, hit) : null;
    };
    const v2 = find('/sys/fs/cgroup/microapp') ?? find('/sys/fs/cgroup/unified/microapp');
    if (v2) return { memory: v2, cpu: v2, pids: v2, v: 2 };
    const memory = find('/sys/fs/cgroup/memory/microapp');
    const cpu = find('/sys/fs/cgroup/cpu/microapp');
    const pids = find('/sys/fs/cgroup/pids/microapp');
    assert.ok(
      memory && cpu && pids,
      `no control group for ${id}: this machine must give the platform cgroups`,
    );
    return { memory, cpu, pids, v: 1 };
  }
  const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8').trim();

  test('the running instance is in a control group with the manifest’s memory and CPU and the default pids', () => {
    const g = groupsOf(deploymentId);
    if (g.v === 1) {
      assert.equal(read(g.memory, 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
      assert.equal(read(g.cpu, 'cpu.cfs_quota_us'), '25000');
      assert.equal(read(g.cpu, 'cpu.cfs_period_us'), '100000');
    } else {
      assert.equal(read(g.memory, 'memory.max'), String(64 * 1024 * 1024));
      assert.equal(read(g.cpu, 'cpu.max'), '25000 100000');
    }
    assert.equal(read(g.pids, 'pids.max'), '128');
    assert.match(read(g.pids, 'cgroup.procs'), /^\d+/, 'the app’s processes are in it');
  });

  test('a fork bomb stops at the process limit', async () => {
    const res = await viaGateway(server, 'hungry', '/pids', { authorization: `Bearer ${t.dave}` });
    assert.equal(res.status, 200, res.body);
    const { started, refused } = JSON.parse(res.body) as { started: number; refused: number };
    assert.ok(started < 128, `started ${started} processes; the limit is 128 for the whole instance`);
    assert.ok(refused > 0, 'the kernel refused the rest');
  });

  test('over its memory limit the instance is killed, the event is recorded, and it is restarted', async () => {
    const hog = await viaGateway(server, 'hungry', '/hog', { authorization: `Bearer ${t.dave}` }).catch(
      (e: Error) => ({ status: 0, body: e.message }),
    );
    assert.notEqual(hog.status, 200, 'the hog did not finish');
    let event: { reason: string; summary: { memoryMb: number } } | undefined;
    for (let i = 0; i < 100 && !event; i++) {
      const events = await call(
        server,
        'GET',
        '/api/v1/audit/events?app=hungry&action=deployment.out_of_memory',
        {
          token: t.ivan,
        },
      );
      event = events.body.items[0];
      if (!event) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(event, 'the out-of-memory kill is in the audit trail');
    assert.match(event.reason, /memory limit of 64 MB/);
    let back = 0;
    for (let i = 0; i < 100 && back !== 200; i++) {
      back = (
        await viaGateway(server, 'hungry', '/', { authorization: `Bearer ${t.dave}` }).catch(() => ({
          status: 0,
        }))
      ).status;
      if (back !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(back, 200, 'the supervisor restarted it');
    const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${t.ivan}` } });
    assert.match(await metrics.text(), /microapp_app_out_of_memory_total\{app="hungry"\} 1/);
  });

  test('a build is held to its own limits: a test step that eats memory fails the build, named, and the platform carries on', async () => {
    const greedy = nodeApp(
      'greedy-build',
      'name: greedy-build\nowner: alice@example.com\npurpose: A build whose tests try to eat the machine\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n',
      "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n",
    );
    greedy['test/ok.test.js'] =
      "require('node:test')('eats', () => { const kept = []; for (;;) kept.push(Buffer.alloc(16 << 20, 1)); });\n";
    const manifest = lunchPoll({
      name: 'greedy-build',
      owner: people.alice,
      purpose: 'A build whose tests try to eat the machine',
    });
    assert.equal(
      (await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: manifest })).status,
      201,
    );
    const res = await call(server, 'POST', '/api/v1/apps/greedy-build/builds', {
      token: t.alice,
      body: { source: await sourceArchive(greedy) },
    });
    assert.equal(res.status, 202, res.text);
    const build = await buildFinished(server, 'greedy-build', res.body.id, t.alice);
    assert.equal(build.state, 'failed');
    assert.match(
      String(build.error),
      /the build ran out of memory \(builds may use 768 MB, MICROAPP_BUILD_MEMORY_MB\): the test step was stopped/,
    );
    const groupsLeft = () =>
      ['/sys/fs/cgroup/microapp', '/sys/fs/cgroup/unified/microapp', '/sys/fs/cgroup/memory/microapp']
        .filter((d) => existsSync(d))
        .flatMap((d) => readdirSync(d))
        .filter((d) => d === `build-${res.body.id}`);
    for (let i = 0; i < 50 && groupsLeft().length; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(groupsLeft(), [], 'the build’s control group is removed');
    const ok = await viaGateway(server, 'hungry', '/', { authorization: `Bearer ${t.dave}` });
    assert.equal(ok.status, 200, 'the deployed app still answers');
  });
});
