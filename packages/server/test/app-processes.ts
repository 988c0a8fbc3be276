// Test helpers for an app's processes: a server with one app of dave's published, and the processes its
// sandbox (or a build) runs, found in /proc.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { call, lunchPoll, people, signInEveryone, sourceArchive, startTestServer } from './harness.ts';
import { importEmptySnapshot } from './replica-helpers.ts';

/** The processes under `root` (this test process by default): an app's sandbox (bwrap, and the app inside it). */
export function descendants(root = process.pid): number[] {
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
      if (p === root) {
        found.push(pid);
        break;
      }
  return found;
}

/** Whether a process is there, dead but not yet waited for (a zombie) counting as not there. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Every process whose command line holds `text`, whoever its parent (an orphan's is init). */
export function processesWith(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p)))
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      if (command.includes(text)) found.push(`${pid}: ${command}`);
    } catch {
      // Gone meanwhile.
    }
  return found;
}

export const until = async (what: string, check: () => boolean, ms = 20_000) => {
  for (const started = Date.now(); !check(); await new Promise((r) => setTimeout(r, 25)))
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
};

/** A server with one app of dave's, version 1.0.0 published: its `server.js` as given. */
export async function serverWith(name: string, serverJs: string) {
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
    /** Dave's API token: he owns the app. */
    token: t.dave,
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
