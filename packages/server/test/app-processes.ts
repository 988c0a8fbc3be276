// Test helpers for an app's processes: a server with one app of dave's published, and the processes its
// sandbox (or a build) runs, found in /proc.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { processTree } from '../src/modules/runtime/process-stats.ts';
import { call, signInEveryone, startTestServer } from './harness.ts';
import { importEmptySnapshot, pollApp } from './replica-helpers.ts';

/** The processes under `root` (this test process by default): an app's sandbox (bwrap, and the app inside it). */
export const descendants = (root = process.pid) => processTree(root).slice(1);

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
  await pollApp(server, t.dave, name, { publish: true, serverJs });
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
