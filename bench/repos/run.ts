// What making an app's repository costs at registration (modules/repos/repo-store.ts: `git init` and one
// `git fast-import` of the template's files), beside `git init --bare` alone, the least any repository
// costs; and the same for a shared repository (shared-repos.ts, MICROAPP_GIT_STORE=shared: the pack into the
// blob store and the branch into the database too), with what reading one costs on a second replica: the
// first read (its copy made from the blob store) and the next ones (the copy checked against the database).
// They take turns, one repository each, so the machine's load falls on all alike; each made repository must
// hold the template's files on main or the run fails. Then one shared repository with many pushes, each a
// pack: a replica with no copy reads it first with one pack per push, then with the packs compacted into
// one (repo-packs.ts), beside the time the compaction took.
//   npx tsx bench/repos/run.ts [--quick] [--repositories 30] [--pushes 200] [--template form] [--postgres URL]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { adjustableClock } from '../../packages/server/src/clock.ts';
import { type Db, openDatabase } from '../../packages/server/src/db/database.ts';
import { migrateToLatest } from '../../packages/server/src/db/migrations.ts';
import { createFolderBlobStore } from '../../packages/server/src/modules/blobs/blob-store.ts';
import { renderTemplate } from '../../packages/server/src/modules/catalog/template-files.ts';
import { defaultTemplatesDir } from '../../packages/server/src/modules/catalog/templates.ts';
import { git } from '../../packages/server/src/modules/repos/git.ts';
import { createRepoStore } from '../../packages/server/src/modules/repos/repo-store.ts';
import { createSharedRepoStore } from '../../packages/server/src/modules/repos/shared-repos.ts';
import { BenchFailure, benchArgs, runBench } from '../lib/bench.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  "An app's repository as registration makes it, beside a bare `git init`.",
  {
    repositories: { default: '30', quick: '4', help: 'repositories made by each of the two' },
    pushes: { default: '200', quick: '20', help: 'pushes to the one repository that is compacted' },
    template: { default: 'form', help: 'the template whose files the repository starts with' },
    postgres: {
      default: '',
      help: 'the shared repositories on this PostgreSQL (a schema of their own) instead of SQLite',
    },
  },
);

await runBench(async () => {
  const rendered = renderTemplate(defaultTemplatesDir, values.template, {
    name: 'bench-app',
    owner: 'a@example.com',
  });
  if (!rendered) throw new BenchFailure(`no template ${values.template}`);
  const dir = mkdtempSync(join(tmpdir(), 'microapp-bench-repos-'));
  try {
    const store = createRepoStore({
      dir: join(dir, 'repos'),
      hooksDir: join(dir, 'hooks'),
      maxPushBytes: 50 << 20,
    });
    const n = number('repositories');
    let made = 0;
    let bare = 0;
    const shared = await sharedStores(dir, values.postgres);
    const times = { made: 0, first: 0, next: 0, folderRead: 0 };
    for (let i = 0; i < n; i++) {
      const id = `app_${String(i).padStart(20, '0')}`;
      let t = performance.now();
      await store.create(id, rendered.files, 'Create bench-app', { name: 'A', email: 'a@example.com' });
      made += performance.now() - t;
      const listed = execFileSync(
        'git',
        [`--git-dir=${store.pathOf(id)}`, 'ls-tree', '-r', '--name-only', 'main'],
        {
          encoding: 'utf8',
        },
      );
      if (listed.trim().split('\n').length !== Object.keys(rendered.files).length)
        throw new BenchFailure(
          `repository ${id} does not hold the template's ${Object.keys(rendered.files).length} files`,
        );
      t = performance.now();
      await git(join(dir, `bare-${i}.git`), [
        'init',
        '--bare',
        '--quiet',
        '--template=',
        join(dir, `bare-${i}.git`),
      ]);
      bare += performance.now() - t;
      // The same repository shared: made on one replica, read on another (its first read, then the next).
      const sharedId = `app_${String(i).padStart(19, '0')}s`;
      t = performance.now();
      const commit = await shared.a.create(sharedId, rendered.files, 'Create bench-app', {
        name: 'A',
        email: 'a@example.com',
      });
      times.made += performance.now() - t;
      t = performance.now();
      if ((await shared.b.head(sharedId)) !== commit) throw new BenchFailure(`${sharedId}: not read back`);
      times.first += performance.now() - t;
      t = performance.now();
      await shared.b.head(sharedId);
      times.next += performance.now() - t;
      t = performance.now();
      await store.head(id);
      times.folderRead += performance.now() - t;
    }
    const packs = await compaction(shared, rendered.files, number('pushes'));
    await shared.close();
    console.log(
      `  an app's repository (${Object.keys(rendered.files).length} files)  ${(made / n).toFixed(1)} ms per repository`,
    );
    console.log(`  git init --bare alone (baseline)         ${(bare / n).toFixed(1)} ms per repository`);
    const ms = (v: number) => `${(v / n).toFixed(1)} ms`;
    console.log(
      `  shared (${shared.engine}): made ${ms(times.made)} (${(times.made / made).toFixed(1)}x the folder's); on another replica, first read ${ms(times.first)}, next reads ${ms(times.next)} (a folder's read: ${ms(times.folderRead)}, ${(times.next / Math.max(0.001, times.folderRead)).toFixed(1)}x)`,
    );
    console.log(
      `  an app's repository / a bare init: ${(made / Math.max(0.001, bare)).toFixed(1)}x (${n} each)`,
    );
    console.log(
      `  a replica's first read of a repository of ${packs.pushes} pushes: ${packs.before.toFixed(0)} ms with a pack per push (baseline), ${packs.after.toFixed(0)} ms compacted (${(packs.after / packs.before).toFixed(2)}x); the compaction took ${packs.took.toFixed(0)} ms`,
    );
    console.log(`reproduce with: ${command}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A repository of `pushes` commits, each pushed on its own through one replica: the first read on a replica
 * with no copy, before and after its packs are compacted into one.
 */
async function compaction(
  shared: Awaited<ReturnType<typeof sharedStores>>,
  files: Record<string, string>,
  pushes: number,
) {
  const id = 'app_00000000000compacted';
  const by = { name: 'A', email: 'a@example.com' };
  let head = await shared.a.create(id, files, 'Create bench-app', by);
  for (let i = 1; i <= pushes; i++) {
    const next = await shared.a.commitFiles(id, head, { 'CHANGES.md': `change ${i}\n` }, `Change ${i}`, by);
    await shared.a.setBranch(id, 'main', next, head);
    head = next;
  }
  const firstRead = async (name: string) => {
    const t = performance.now();
    const store = shared.replica(name);
    if ((await store.head(id)) !== head) throw new BenchFailure(`${name}: ${id} not read back whole`);
    return performance.now() - t;
  };
  const before = await firstRead('replica-before');
  const t = performance.now();
  const done = await shared.a.compact(id, 0);
  const took = performance.now() - t;
  if (!done || done.packs !== pushes + 1)
    throw new BenchFailure(`${id}: not compacted (${JSON.stringify(done)})`);
  const after = await firstRead('replica-after');
  if ((await shared.replica('replica-after').log(id, 'main', pushes + 10)).length !== pushes + 1)
    throw new BenchFailure(`${id}: history lost in the compaction`);
  return { pushes, before, after, took };
}

/** Two replicas' shared stores (their own folders) on one database and one folder blob store. */
async function sharedStores(dir: string, postgres: string) {
  let schema: string | null = null;
  let db: Db;
  if (postgres) {
    schema = `bench_repos_${Date.now()}`;
    const c = new pg.Client({ connectionString: postgres });
    await c.connect();
    await c.query(`create schema ${schema}`);
    await c.end();
    db = openDatabase({ kind: 'postgres', url: postgres, schema, poolSize: 2 });
  } else db = openDatabase({ kind: 'sqlite', file: join(dir, 'shared.sqlite') });
  await migrateToLatest(db);
  const storeOf = (name: string) =>
    createSharedRepoStore({
      db: db.kysely,
      clock: adjustableClock(),
      blobs: createFolderBlobStore(join(dir, 'blobs')),
      local: createRepoStore({ dir: join(dir, name), hooksDir: join(dir, 'hooks'), maxPushBytes: 50 << 20 }),
    });
  return {
    engine: db.dialect,
    a: storeOf('replica-a'),
    b: storeOf('replica-b'),
    replica: storeOf,
    async close() {
      await db.destroy();
      if (schema) {
        const c = new pg.Client({ connectionString: postgres });
        await c.connect();
        await c.query(`drop schema ${schema} cascade`);
        await c.end();
      }
    },
  };
}
