// An app that keeps crashing is restarted with backoff and given up on past five crashes in five minutes
// (docs/runtime.md), including when a restarted process dies before it answers. Before, such a process was
// watched only once it had exited: its exit was never seen, so the supervisor neither restarted it nor gave
// up, and the deployment stayed "running" with nothing running.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { serverWith } from './app-processes.ts';
import { call } from './harness.ts';

describe('the supervisor', () => {
  let cleanup: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await cleanup?.();
    cleanup = null;
  });

  test('gives up on an app whose restarts die before they answer', async () => {
    // The first run answers, then crashes; every later one (it finds its mark in /data) dies at once.
    const app = await serverWith(
      'dies-on-restart',
      `const fs = require('node:fs');
const mark = require('node:path').join(process.env.MICROAPP_DATA_DIR, 'ran');
if (fs.existsSync(mark)) process.exit(2);
fs.writeFileSync(mark, 'once');
require('node:http').createServer((q, s) => s.end('up')).listen(process.env.PORT);
setTimeout(() => process.exit(1), 300);
`,
    );
    cleanup = app.cleanup;
    const deployed = await app.deploy();
    assert.equal(deployed.status, 201, deployed.text);
    // Restarts after 0.5, 1, 2, 4 and 8 s; the sixth crash gives up.
    let state = '';
    for (let i = 0; i < 240 && state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const history = await call(app.server, 'GET', '/api/v1/apps/dies-on-restart/deployments', {
        token: app.token,
      });
      state = history.body.items[0].state;
    }
    assert.equal(state, 'failed', 'the deployment is marked failed');
    assert.deepEqual(app.sandbox(), [], 'nothing of it runs');
  });
});
