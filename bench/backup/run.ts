// Backup and restore of a platform that serves: `microapp server backup` of a PostgreSQL platform with a
// company's catalog (apps seeded in the database, a few registered through the API with their repositories
// and a signed version), timed while the server answers, then `microapp server restore` into a new schema
// and data folder; beside them, `pg_dump` of the same schema as the baseline. Each command is timed whole
// (wall clock, and the CPU of the command and its children).
//   npx tsx bench/backup/run.ts [--quick] [--apps 100000] [--postgres URL]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { openDatabase } from '../../packages/server/src/db/database.ts';
import { tokenFor } from '../../packages/server/test/harness.ts';
import { seedCatalog } from '../../packages/server/test/seed-catalog.ts';
import { benchArgs, mb, runBench, timedCommand } from '../lib/bench.ts';
import { startServer } from '../lib/server-process.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  'Backup and restore of a serving platform, beside pg_dump.',
  {
    apps: { default: '100000', quick: '500', help: 'apps in the catalog' },
    postgres: {
      default: process.env.MICROAPP_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      help: 'the PostgreSQL the platform runs on',
    },
  },
);
const bin = resolve(import.meta.dirname, '../../packages/cli/bin/microapp.js');

await runBench(async () => {
  const kek = randomBytes(32).toString('base64');
  const server = await startServer(values.postgres, { MICROAPP_KEK: kek, MICROAPP_JOBS: 'off' });
  const work = mkdtempSync(join(tmpdir(), 'microapp-bench-backup-'));
  const restoreSchema = `bench_restore_${Date.now()}`;
  try {
    const alice = await tokenFor({ url: server.url }, 'alice@example.com');
    for (const name of ['invoice-matching', 'expense-claims', 'training-survey']) {
      const res = await fetch(`${server.url}/api/v1/apps`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name,
          owner: 'alice@example.com',
          purpose: 'A benchmark app for the backup',
          dataClasses: ['internal'],
        }),
      });
      if (res.status !== 201) throw new Error(`registration: ${res.status} ${await res.text()}`);
    }
    const url = (server.database as { postgresUrl: string }).postgresUrl;
    const db = openDatabase({ kind: 'postgres', url });
    await seedCatalog(db, { apps: number('apps'), departments: 100, owners: 5000 });
    await db.destroy();
    const env = { DATABASE_URL: url, MICROAPP_KEK: kek, MICROAPP_OIDC_ISSUER: '' };
    const file = join(work, 'backup.tar.gz');
    const backup = await timedCommand(
      process.execPath,
      [bin, 'server', 'backup', '--data-dir', server.dataDir, '--out', file],
      {
        env,
        errFile: join(work, 'backup.err'),
      },
    );
    const schema = new URL(url).searchParams.get('options')!.replace('-c search_path=', '');
    const dumpUrl = new URL(url);
    dumpUrl.searchParams.delete('options');
    const dump = await timedCommand(
      'pg_dump',
      ['--schema', schema, '--format', 'custom', '--file', join(work, 'dump'), dumpUrl.href],
      {
        errFile: join(work, 'dump.err'),
      },
    );
    const c = new pg.Client({ connectionString: dumpUrl.href });
    await c.connect();
    await c.query(`create schema ${restoreSchema}`);
    await c.end();
    const target = new URL(dumpUrl.href);
    target.searchParams.set('options', `-c search_path=${restoreSchema}`);
    const restore = await timedCommand(
      process.execPath,
      [bin, 'server', 'restore', file, '--data-dir', join(work, 'restored')],
      {
        env: { ...env, DATABASE_URL: target.href },
        errFile: join(work, 'restore.err'),
      },
    );
    console.log(
      `node ${process.version}; PostgreSQL; ${number('apps').toLocaleString('en-US')} seeded apps and 3 registered, the server serving meanwhile\nreproduce with: ${command}\n`,
    );
    const line = (what: string, r: { wallMs: number; cpuMs: number }, extra = '') =>
      console.log(
        `  ${what.padEnd(34)} ${(r.wallMs / 1000).toFixed(2).padStart(6)} s wall  ${(r.cpuMs / 1000).toFixed(2).padStart(6)} s CPU${extra}`,
      );
    line('microapp server backup', backup, `  ${mb(statSync(file).size)}`);
    line('pg_dump of the same schema', dump, `  ${mb(statSync(join(work, 'dump')).size)}`);
    line('microapp server restore', restore);
    console.log(`  backup / pg_dump: ${(backup.wallMs / dump.wallMs).toFixed(1)}x`);
  } finally {
    await server.cleanup();
    const c = new pg.Client({ connectionString: values.postgres });
    await c.connect();
    await c.query(`drop schema if exists ${restoreSchema} cascade`);
    await c.end();
    rmSync(work, { recursive: true, force: true });
  }
});
