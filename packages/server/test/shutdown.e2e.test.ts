// A server that stops while an app is starting (a deploy, a wake-up from idle, a takeover, the supervisor
// restarting a crashed app) waits for the start and then stops what it started: no app's sandbox outlives
// the server. Before, `close()` stopped the instances it knew, and a start that finished after that added
// its own, left running with the server gone (seen as a test process that never exited), or one whose
// broker socket went first failed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, describe, test } from 'node:test';
import { isRunning } from '../src/modules/runtime/process-stats.ts';
import { descendants, processesWith, serverWith, until } from './app-processes.ts';
import { call, lunchPoll, nodeApp, people, sourceArchive, startBuildServer } from './harness.ts';

describe('a server stopping while an app starts', () => {
  let cleanup: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await cleanup?.();
    cleanup = null;
  });

  test('a deploy under way is waited for and its sandbox stopped: none outlives the server', async () => {
    // It answers a second and a half after it starts: the server stops in between.
    const app = await serverWith(
      'slow-starter',
      "setTimeout(() => require('node:http').createServer((q, s) => s.end('up')).listen(process.env.PORT), 1500);\n",
    );
    cleanup = app.cleanup;
    const deploy = app.deploy();
    // The sandbox is up, and the app not answering yet.
    await until('the sandbox to start', () => app.sandbox().length > 0);
    await app.close();
    const answered = await deploy;
    // The start under way finished (before, the stop pulled the broker's socket from under it: a 503
    // "the app did not start", and a minute more to close) and was then stopped.
    assert.equal(answered.status, 201, answered.text);
    assert.deepEqual(app.sandbox(), [], 'no process of the app is left');
  });

  test("the supervisor's restart of a crashed app under way is stopped too", async () => {
    // The first run answers at once and crashes 300 ms later; the next (it finds its mark in /data)
    // answers after two seconds: the server stops while the supervisor waits for it.
    const app = await serverWith(
      'crash-then-slow',
      `const fs = require('node:fs');
const mark = require('node:path').join(process.env.MICROAPP_DATA_DIR, 'ran');
const serve = () => require('node:http').createServer((q, s) => s.end('up')).listen(process.env.PORT);
if (fs.existsSync(mark)) setTimeout(serve, 2000);
else {
  fs.writeFileSync(mark, 'once');
  serve();
  setTimeout(() => process.exit(1), 300);
}
`,
    );
    cleanup = app.cleanup;
    const deployed = await app.deploy();
    assert.equal(deployed.status, 201, deployed.text);
    const first = new Set(app.sandbox());
    // The crash, then the restart's new sandbox.
    await until('the restart', () => app.sandbox().some((pid) => !first.has(pid)));
    await app.close();
    assert.deepEqual(app.sandbox(), [], 'no process of the app is left');
  });

  test('a build under way is stopped with every process it started, one its tests detached included', async () => {
    const { server, t, stop } = await startBuildServer();
    let closed = false;
    cleanup = async () => {
      for (const pid of descendants())
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      if (!closed) await stop();
    };
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({ name: 'long-tests', owner: people.alice, purpose: 'Tests that take a minute' }),
    });
    assert.equal(reg.status, 201, reg.text);
    // Each run's own: a process of an earlier run is not this one's.
    const marker = `microapp-build-marker-${process.pid}-${Date.now()}`;
    const files: Record<string, string> = nodeApp(
      'long-tests',
      'name: long-tests\nowner: alice@example.com\npurpose: Tests that take a minute\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n',
      "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n",
    );
    // The test step runs for a minute, and a process it starts on its own for longer.
    files['test/slow.test.js'] =
      `require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000) // ${marker}'], { detached: true, stdio: 'ignore' }).unref();
require('node:test')('slow', () => new Promise((r) => setTimeout(r, 60000)));
`;
    const res = await call(server, 'POST', '/api/v1/apps/long-tests/builds', {
      token: t.alice,
      body: { source: await sourceArchive(files) },
    });
    assert.equal(res.status, 202, res.text);
    await until('the test step', () => processesWith(marker).length > 0, 120_000);
    // The pipeline (`microapp ci` for this build) and everything under it.
    const pipeline = processesWith(res.body.id).map((line) => Number(line.split(':')[0]));
    assert.ok(pipeline.length > 0, 'the pipeline runs');
    const building = [...pipeline, ...pipeline.flatMap((pid) => descendants(pid))];
    closed = true;
    await server.close();
    assert.deepEqual(processesWith(marker), [], 'the process the tests started is not left');
    assert.deepEqual(
      building.filter(isRunning).map((pid) => `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8')}`),
      [],
      'no process of the build is left',
    );
    await server.db.destroy();
    await stop().catch(() => {});
  });
});
