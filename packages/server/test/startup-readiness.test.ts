// A server says it is ready only once it has finished starting. It listens first, then learns its public
// URL, starts the dev identity provider and takes over the work it owns: a sign-in sent in between (which a
// ready probe invited) failed with a 500, as the platform's image test saw.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { startServer } from '../src/server.ts';

const freePort = () =>
  new Promise<number>((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });

test('/readyz answers 503 "starting" until the server has started, and sign-in works from its first 200', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'microapp-startup-'));
  const db = openDatabase({ kind: 'sqlite', file: join(dataDir, 'microapp.sqlite') });
  const port = await freePort();
  const config = loadConfig(
    { dev: true, port, devIdpPort: 0, dataDir },
    { MICROAPP_LOG_LEVEL: 'silent', MICROAPP_JOBS: 'off' },
  );
  let started = false;
  const answers: { status: number; body: string; afterStart: boolean }[] = [];
  // Asks as fast as the server answers, from before it listens until just after it says it has started.
  const probing = (async () => {
    while (!started) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        answers.push({ status: res.status, body: await res.text(), afterStart: started });
      } catch {
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  })();
  const server = await startServer(config, { db, logger: pino({ level: 'silent' }) });
  started = true;
  await probing;
  try {
    const early = answers.filter((a) => a.status === 200 && !a.afterStart);
    assert.deepEqual(early, [], 'no 200 before the server had started');
    const starting = answers.filter((a) => a.status === 503);
    assert.ok(starting.length > 0, `it was asked while starting (${answers.length} answers)`);
    for (const a of starting) assert.match(a.body, /starting: the server has not finished starting yet/);
    // Ready now, and what a ready server serves works: the browser sign-in starts at the identity provider.
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    const login = await fetch(`${server.url}/auth/login`, { redirect: 'manual' });
    assert.equal(login.status, 302);
  } finally {
    await server.close();
    await db.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
