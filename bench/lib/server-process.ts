// Starts `microapp server --dev` as its own process, on SQLite or in a fresh PostgreSQL schema, so that a
// load generator in the bench's process does not share its event loop.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';

const bin = resolve(import.meta.dirname, '../../packages/cli/bin/microapp.js');

export async function startServer(
  databaseUrl: string | null,
  env: Record<string, string> = {},
): Promise<{
  url: string;
  dataDir: string;
  /** Where its data is: the SQLite file, or the PostgreSQL URL with its schema. */
  database: { sqliteFile: string } | { postgresUrl: string };
  child: ChildProcess;
  cleanup: () => Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'microapp-bench-'));
  let schema: string | null = null;
  let url = databaseUrl;
  // A URL that already names its schema (another replica's) is used as it is, and left for its owner to drop.
  if (databaseUrl && !new URL(databaseUrl).searchParams.has('options')) {
    schema = `bench_${Date.now()}`;
    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    await c.query(`create schema ${schema}`);
    await c.end();
    const u = new URL(databaseUrl);
    u.searchParams.set('options', `-c search_path=${schema}`);
    url = u.href;
  }
  // MICROAPP_BENCH_PROFILE=DIR: the server writes a CPU profile there when it stops (open it in Chrome's
  // DevTools), to see where a figure's time goes.
  const profile = process.env.MICROAPP_BENCH_PROFILE;
  const child = spawn(
    process.execPath,
    [
      ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : []),
      bin,
      'server',
      '--dev',
      '--port',
      '0',
      '--dev-idp-port',
      '0',
      '--data-dir',
      dir,
    ],
    {
      env: { ...process.env, MICROAPP_LOG_LEVEL: 'warn', DATABASE_URL: url ?? '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const serverUrl = await new Promise<string>((done, fail) => {
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) done(m[1]!);
    });
    child.on('exit', (code) => fail(new Error(`server exited ${code}: ${err}`)));
  });
  return {
    url: serverUrl,
    dataDir: dir,
    database: url ? { postgresUrl: url } : { sqliteFile: join(dir, 'microapp.sqlite') },
    child,
    async cleanup() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
      if (schema && databaseUrl) {
        const c = new pg.Client({ connectionString: databaseUrl });
        await c.connect();
        await c.query(`drop schema ${schema} cascade`);
        await c.end();
      }
    },
  };
}
