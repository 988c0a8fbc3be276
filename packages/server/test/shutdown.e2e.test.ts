// A server that stops while an app is starting (a deploy, a wake-up from idle, a takeover) waits for the
// start and then stops what it started: no app's sandbox outlives the server. Before, `close()` stopped the
// instances it knew, and a start that finished after that added its own, left running with the server gone
// (seen as a test process that never exited), or one whose broker socket went first failed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  call,
  lunchPoll,
  people,
  signInEveryone,
  sourceArchive,
  startTestServer,
  type TestServer,
} from './harness.ts';
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

describe('a server stopping while an app starts', () => {
  let server: TestServer;
  let dave: string;
  let closed = false;
  const name = 'slow-starter';

  before(async () => {
    server = await startTestServer('sqlite');
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
        // It answers a second and a half after it starts: the server stops in between.
        artifact: await sourceArchive({
          'package.json': JSON.stringify({ name, version: '1.0.0' }),
          'server.js':
            "setTimeout(() => require('node:http').createServer((q, s) => s.end('up')).listen(process.env.PORT), 1500);\n",
        }),
        sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] },
      },
    });
    assert.equal(pub.status, 201, pub.text);
    dave = t.dave;
  });
  after(async () => {
    for (const pid of descendants())
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    if (!closed) return server.stop();
    await server.db.destroy();
    rmSync(server.dataDir, { recursive: true, force: true });
  });

  test('the start is waited for and its sandbox stopped: none outlives the server', async () => {
    const before = new Set(descendants());
    const sandbox = () => descendants().filter((pid) => !before.has(pid));
    const deploy = call(server, 'POST', `/api/v1/apps/${name}/deployments`, {
      token: dave,
      body: { version: '1.0.0' },
    });
    // The sandbox is up, and the app not answering yet.
    await until('the sandbox to start', () => sandbox().length > 0);
    await server.close();
    closed = true;
    const answered = await deploy;
    // The start under way finished (before, the stop pulled the broker's socket from under it: a 503
    // "the app did not start", and a minute more to close) and was then stopped.
    assert.equal(answered.status, 201, answered.text);
    assert.deepEqual(sandbox(), [], 'no process of the app is left');
  });
});
