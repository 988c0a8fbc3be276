// A server that stops while an app is starting (a deploy, a wake-up from idle, a takeover, the supervisor
// restarting a crashed app) waits for the start and then stops what it started: no app's sandbox outlives
// the server. Before, `close()` stopped the instances it knew, and a start that finished after that added
// its own, left running with the server gone (seen as a test process that never exited), or one whose
// broker socket went first failed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { afterEach, describe, test } from 'node:test';
import { call, lunchPoll, people, signInEveryone, sourceArchive, startTestServer } from './harness.ts';
import { importEmptySnapshot } from './replica-helpers.ts';

/** This test process's descendants: the app's sandbox (bwrap, and the app inside it) once it starts. */
function descendants(): number[] {
  const parentOf = new Map<number, number>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p)))
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // pid (comm) state ppid …: the command name may hold spaces and parentheses.
      parentOf.set(Number(pid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  const found: number[] = [];
  for (const pid of parentOf.keys())
    for (let p = parentOf.get(pid); p !== undefined && p > 1; p = parentOf.get(p))
      if (p === process.pid) {
        found.push(pid);
        break;
      }
  return found;
}

const until = async (what: string, check: () => boolean, ms = 20_000) => {
  for (const started = Date.now(); !check(); await new Promise((r) => setTimeout(r, 25)))
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
};

/** A server with one app of dave's, version 1.0.0 published: its `server.js` as given. */
async function serverWith(name: string, serverJs: string) {
  const server = await startTestServer('sqlite');
  const t = await signInEveryone(server);
  await importEmptySnapshot(server, t.carol);
  const reg = await call(server, 'POST', '/api/v1/apps', {
    token: t.dave,
    body: lunchPoll({ name, owner: people.dave, audience: { department: 'finance' } }),
  });
  assert.equal(reg.status, 201, reg.text);
  const pub = await call(server, 'POST', `/api/v1/apps/${name}/versions`, {
    token: t.dave,
    body: {
      version: '1.0.0',
      artifact: await sourceArchive({
        'package.json': JSON.stringify({ name, version: '1.0.0' }),
        'server.js': serverJs,
      }),
      sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] },
    },
  });
  assert.equal(pub.status, 201, pub.text);
  let closed = false;
  const before = new Set(descendants());
  return {
    server,
    deploy: () =>
      call(server, 'POST', `/api/v1/apps/${name}/deployments`, { token: t.dave, body: { version: '1.0.0' } }),
    /** The processes started since the app was published: its sandbox's. */
    sandbox: () => descendants().filter((pid) => !before.has(pid)),
    async close() {
      closed = true;
      await server.close();
    },
    async cleanup() {
      for (const pid of descendants())
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      if (!closed) return server.stop();
      await server.db.destroy();
      rmSync(server.dataDir, { recursive: true, force: true });
    },
  };
}

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
});
