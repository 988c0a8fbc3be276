import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adjustableClock } from '../src/clock.ts';
import type { Db } from '../src/db/database.ts';
import { BlobMissingError, createFolderBlobStore } from '../src/modules/blobs/blob-store.ts';
import { git, gitText } from '../src/modules/repos/git.ts';
import { branchesIn, RefMoved } from '../src/modules/repos/git-branches.ts';
import { createRepoStore, gitopsRepository } from '../src/modules/repos/repo-store.ts';
import { createSharedRepoStore, type SharedRepoStore } from '../src/modules/repos/shared-repos.ts';
import { engines } from './harness.ts';
import { testDatabase } from './test-db.ts';

// Two replicas' repository stores, each with its own folder, sharing one database and one blob store: what
// one writes the other reads, a branch two of them move at once moves once, and neither replica's folder
// is the truth (a copy edited or lost behind the platform's back is brought back to the shared state).

const alice = { name: 'Alice', email: 'alice@example.com' };
const id = 'app_000000000sharedrepo1';
const main = 'refs/heads/main';

test("a copy's branches read from its files are git's own, packed or loose", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'microapp-branches-'));
  try {
    const store = createRepoStore({
      dir: join(dir, 'repos'),
      hooksDir: join(dir, 'hooks'),
      maxPushBytes: 1024,
    });
    const repo = 'app_000000000branchfile1';
    const first = await store.create(repo, { 'a.txt': 'a\n' }, 'First', alice);
    const second = await store.commitFiles(repo, first, { 'b.txt': 'b\n' }, 'Second', alice);
    const path = store.pathOf(repo);
    const gits = async () => {
      const out = await gitText(path, ['for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads']);
      return new Map(
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' ') as [string, string]),
      );
    };
    await git(path, ['update-ref', 'refs/heads/team/feature', second]);
    await git(path, ['update-ref', 'refs/heads/gone', second]);
    assert.deepEqual(branchesIn(path), await gits());
    await git(path, ['pack-refs', '--all']);
    assert.deepEqual(branchesIn(path), await gits());
    // A packed branch moved (a loose file overrides it) and one deleted (git rewrites packed-refs).
    await git(path, ['update-ref', 'refs/heads/main', second]);
    await git(path, ['update-ref', '-d', 'refs/heads/gone']);
    assert.deepEqual(branchesIn(path), await gits());
    assert.equal(branchesIn(path).get('refs/heads/main'), second);
    assert.equal(branchesIn(path).has('refs/heads/gone'), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const engine of engines()) {
  describe(`repositories shared through the database and the blob store (${engine})`, () => {
    let db: Db;
    let dir: string;
    let a: SharedRepoStore;
    let b: SharedRepoStore;
    const storeIn = (name: string, shares?: (repo: string) => boolean) =>
      createSharedRepoStore({
        db: db.kysely,
        clock: adjustableClock(),
        blobs: createFolderBlobStore(join(dir, 'blobs')),
        local: createRepoStore({
          dir: join(dir, name, 'repos'),
          hooksDir: join(dir, name, 'hooks'),
          maxPushBytes: 1024 * 1024,
        }),
        ...(shares ? { shares } : {}),
      });

    let drop: () => Promise<void>;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'microapp-shared-repos-'));
      ({ db, drop } = await testDatabase(engine, dir));
      a = storeIn('a');
      b = storeIn('b');
    });
    after(async () => {
      await drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('what one replica writes the other reads, though it never had a copy', async () => {
      const first = await a.create(
        id,
        { 'form.json': '{"fields":[]}\n', 'README.md': 'Lunch\n' },
        'Start',
        alice,
      );
      assert.equal(existsSync(b.pathOf(id)), false);
      assert.equal(await b.present(id), true);
      assert.equal(await b.head(id), first);
      assert.equal(await b.readFile(id, first, 'README.md'), 'Lunch\n');

      // A branch written through b, merged through a: each sees the other's commits.
      const feature = await b.commitFiles(id, first, { 'README.md': 'Friday lunch\n' }, 'Say when', alice);
      await b.setBranch(id, 'friday', feature, null);
      assert.equal((await a.refs(id)).get('refs/heads/friday'), feature);
      const merged = await a.merge(id, feature, 'Merge friday', alice);
      assert.equal(merged.fastForward, true);
      assert.equal(await b.head(id), feature);
      assert.deepEqual(
        (await b.log(id, 'main')).map((c) => c.subject),
        ['Say when', 'Start'],
      );
      assert.ok((await b.archive(id, feature)).length > 0);
      // Every write that brought objects left one pack; a branch moved onto a known commit left none.
      const packs = await db.kysely.selectFrom('repo_packs').selectAll().where('repo_id', '=', id).execute();
      assert.deepEqual(
        packs.map((p) => Number(p.seq)),
        [1, 2],
      );
    });

    test('a branch two replicas move at once from the same commit moves once; the loser is told', async () => {
      const base = (await a.head(id))!;
      const mine = await a.commitFiles(id, base, { 'a.txt': 'a\n' }, 'From a', alice);
      const theirs = await b.commitFiles(id, base, { 'b.txt': 'b\n' }, 'From b', alice);
      const results = await Promise.allSettled([
        a.setBranch(id, 'main', mine, base),
        b.setBranch(id, 'main', theirs, base),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1, JSON.stringify(results));
      assert.ok((lost[0] as PromiseRejectedResult).reason instanceof RefMoved);
      const winner = results[0]!.status === 'fulfilled' ? mine : theirs;
      // Both copies, the loser's included, show the winner's commit: the loser's own move was undone.
      assert.equal(await gitText(a.pathOf(id), ['rev-parse', main]), winner);
      assert.equal(await gitText(b.pathOf(id), ['rev-parse', main]), winner);
      assert.equal(await a.head(id), winner);
      assert.equal(await b.head(id), winner);
    });

    test('a branch another replica moved before the write began is the same conflict, told the same way', async () => {
      const base = (await a.head(id))!;
      const mine = await a.commitFiles(id, base, { 'late.txt': 'a\n' }, 'Late from a', alice);
      const theirs = await b.commitFiles(id, base, { 'early.txt': 'b\n' }, 'Early from b', alice);
      await b.setBranch(id, 'main', theirs, base);
      await assert.rejects(a.setBranch(id, 'main', mine, base), RefMoved);
      assert.equal(await a.head(id), theirs);
    });

    test('branches moved at once on two replicas, each its own, both land', async () => {
      const base = (await a.head(id))!;
      const one = await a.commitFiles(id, base, { 'one.txt': '1\n' }, 'One', alice);
      const two = await b.commitFiles(id, base, { 'two.txt': '2\n' }, 'Two', alice);
      await Promise.all([a.setBranch(id, 'one', one, null), b.setBranch(id, 'two', two, null)]);
      for (const s of [a, b]) {
        const refs = await s.refs(id);
        assert.equal(refs.get('refs/heads/one'), one);
        assert.equal(refs.get('refs/heads/two'), two);
      }
    });

    test("a copy changed behind the platform's back is not the truth", async () => {
      const shared = (await a.head(id))!;
      // Someone with a shell on a's machine points main at another commit and adds a branch.
      const forged = await a.commitFiles(id, shared, { 'evil.js': 'steal()\n' }, 'Forged', alice);
      await git(a.pathOf(id), ['update-ref', main, forged]);
      await git(a.pathOf(id), ['update-ref', 'refs/heads/backdoor', forged]);
      assert.equal(await a.head(id), shared);
      assert.equal((await a.refs(id)).has('refs/heads/backdoor'), false);
      // Nor does a forged branch reach the database when the next write on that copy publishes.
      assert.equal((await b.refs(id)).has('refs/heads/backdoor'), false);
    });

    test('a branch row that is not a branch is never handed to git', async () => {
      const shared = (await a.head(id))!;
      // A row written past the platform, trying to smuggle a second line into `git update-ref --stdin`.
      await db.kysely
        .insertInto('repo_refs')
        .values({
          repo_id: id,
          ref: `refs/heads/x\nupdate refs/heads/main ${'0'.repeat(40)}`,
          commit_id: shared,
        })
        .execute();
      await assert.rejects(a.head(id), /has a branch row that is not one/);
      await db.kysely
        .deleteFrom('repo_refs')
        .where('repo_id', '=', id)
        .where('ref', 'like', 'refs/heads/x%')
        .execute();
      assert.equal(await a.head(id), shared);
    });

    test('a lost copy, or one whose mark claims packs it lacks, is filled again from the blob store', async () => {
      const shared = (await a.head(id))!;
      rmSync(b.pathOf(id), { recursive: true, force: true });
      assert.equal(await b.head(id), shared);
      // A copy restored from an older backup: its mark says it holds every pack, its objects are older.
      rmSync(b.pathOf(id), { recursive: true, force: true });
      const c = storeIn('c');
      await c.sync(id);
      writeFileSync(join(c.pathOf(id), 'microapp-packs'), '999');
      rmSync(join(c.pathOf(id), 'objects', 'pack'), { recursive: true, force: true });
      // The replica starts again on that folder.
      const restarted = storeIn('c');
      assert.equal(await restarted.head(id), shared);
      assert.equal(await restarted.readFile(id, shared, 'README.md'), 'Friday lunch\n');
    });

    test('a pack changed in the blob store is refused, not served', async () => {
      const d = storeIn('d');
      const packsDir = join(dir, 'blobs', 'repo-packs', 'sha256');
      // The first pack (a refused write's pack may lie in the store too, named by no row).
      const first = await db.kysely
        .selectFrom('repo_packs')
        .select('digest')
        .where('repo_id', '=', id)
        .where('seq', '=', 1)
        .executeTakeFirstOrThrow();
      const file = join(packsDir, `${first.digest.slice('sha256:'.length)}.pack`);
      chmodSync(file, 0o600);
      writeFileSync(file, Buffer.from('PACK tampered'));
      await assert.rejects(d.head(id), (e: Error) => e instanceof BlobMissingError && e.changed);
    });

    test("a folder's repositories are shared at the upgrade, once", async () => {
      const folder = createRepoStore({
        dir: join(dir, 'old', 'repos'),
        hooksDir: join(dir, 'old', 'hooks'),
        maxPushBytes: 1024 * 1024,
      });
      const old = 'app_000000000oldfolder01';
      const commit = await folder.create(old, { 'README.md': 'Before the upgrade\n' }, 'Old', alice);
      const upgraded = createSharedRepoStore({
        db: db.kysely,
        clock: adjustableClock(),
        blobs: createFolderBlobStore(join(dir, 'blobs')),
        local: folder,
      });
      assert.equal(await upgraded.importLocal([old, 'not-a-repository', id]), 1);
      assert.equal(await upgraded.importLocal([old]), 0);
      const e = storeIn('e');
      assert.equal(await e.head(old), commit);
      assert.equal(await e.readFile(old, commit, 'README.md'), 'Before the upgrade\n');
    });

    test("with a git host only the GitOps repository is shared; the apps' copies are the copy's alone", async () => {
      const withHost = (name: string) => storeIn(name, (repo) => repo === gitopsRepository);
      const f = withHost('f');
      const g = withHost('g');
      const hosted = 'app_000000000hostedcopy1';
      const commit = await f.create(hosted, { 'README.md': 'At GitHub\n' }, 'Fetched', alice);
      const rows = await db.kysely
        .selectFrom('repo_refs')
        .selectAll()
        .where('repo_id', '=', hosted)
        .execute();
      assert.equal(rows.length, 0);
      assert.equal(await g.present(hosted), false);
      assert.equal(await f.head(hosted), commit);
      const gitops = await f.create(gitopsRepository, { 'README.md': 'GitOps\n' }, 'Start', alice);
      assert.equal(await g.head(gitopsRepository), gitops);
    });
  });
}
