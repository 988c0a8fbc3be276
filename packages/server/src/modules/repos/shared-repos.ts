import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { git } from './git.ts';
import { branch, branchesIn, RefMoved, sha } from './git-branches.ts';
import { type Compaction, createRepoPacks, objectsIn, type PackBlobs } from './repo-packs.ts';
import {
  gitopsRepository,
  isRepositoryId,
  mainBranch,
  type PushCopy,
  type RefMove,
  type RepoStore,
} from './repo-store.ts';

/**
 * Repositories that replicas share through the database and the blob store, with nothing on a shared disk
 * (MICROAPP_GIT_STORE=shared). The database holds every branch's commit; the blob store holds the objects, as
 * git packs numbered in the order they were written. Each replica keeps a copy in its own data folder, as a
 * cache: before a repository is read, the copy takes the packs it lacks and the branches as the database
 * has them (`sync`). A branch moves in the database first, by compare-and-swap, in one transaction with the
 * pack of the objects it brings, and only then in the copy: two replicas writing one repository never lose a
 * commit, the later write fails and says so. Repositories the database knows nothing of (those of the
 * company's GitHub or GitLab, which the platform fetches itself) are left as they are.
 * @example const store = createSharedRepoStore({ db, clock, blobs, local: createRepoStore({ dir, hooksDir, maxPushBytes }) })
 */
export function createSharedRepoStore(deps: {
  db: Kysely<Database>;
  clock: Clock;
  blobs: PackBlobs;
  local: RepoStore;
  /** A repository with more packs than this is compacted by `maintain`. Default 32. */
  compactAbove?: number;
  /** A copy with more pack files than this is repacked into one when it is brought up to date. Default 50. */
  repackCopyAbove?: number;
  /** A copy with more loose objects than this is repacked into one after its own writes. Default 6,700. */
  looseCopyAbove?: number;
  /**
   * Which repositories are shared; the others are the copy's alone (with MICROAPP_GIT_HOST, the apps'
   * repositories are copies of the host's and only the GitOps repository is shared). Default: all.
   */
  shares?: (id: string) => boolean;
}) {
  const { db, local } = deps;
  const shares = deps.shares ?? (() => true);
  const packs = createRepoPacks(deps);
  // One sync or write at a time per repository in this process; other replicas are kept out by the
  // database's compare-and-swap.
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(id: string, work: () => Promise<T>): Promise<T> => {
    const run = (queues.get(id) ?? Promise.resolve()).catch(() => {}).then(work);
    const settled = run.catch(() => {});
    queues.set(id, settled);
    void settled.then(() => queues.get(id) === settled && queues.delete(id));
    return run;
  };
  // The packs a copy holds: the number of the last one applied, in a file beside the repository's objects.
  const markOf = (id: string) => join(local.pathOf(id), 'microapp-packs');
  const appliedIn = (id: string) => {
    try {
      return Number.parseInt(readFileSync(markOf(id), 'utf8'), 10) || 0;
    } catch {
      return 0;
    }
  };

  async function dbRefs(id: string) {
    const rows = await db
      .selectFrom('repo_refs')
      .select(['ref', 'commit_id'])
      .where('repo_id', '=', id)
      .execute();
    // Rows that are not a branch and a commit were not written by the platform: never handed to git.
    const bad = rows.find((r) => !branch.test(r.ref) || !sha.test(r.commit_id));
    if (bad)
      throw new Error(`the repository ${id} has a branch row that is not one: ${JSON.stringify(bad.ref)}`);
    return new Map(rows.map((r) => [r.ref, r.commit_id]));
  }

  /** Whether the copy holds every one of the commits (one `git cat-file` for all). */
  const holds = async (id: string, commits: string[]) =>
    commits.length > 0 && (await packs.holding(local.pathOf(id), commits)).length === commits.length;
  // The branches each copy was last found to hold every commit of, so an unchanged repository is not
  // checked again at every read.
  const held = new Map<string, string>();

  /** Brings the copy to the database's state; false when the database holds no such repository. */
  async function syncNow(id: string): Promise<boolean> {
    // Branches first: each commit they name was written with its pack, so the packs read next hold it.
    const refs = await dbRefs(id);
    if (!refs.size) return false;
    if (!local.exists(id)) await local.init(id);
    const dir = local.pathOf(id);
    let applied = appliedIn(id);
    let fetched = false; // whether packs were applied
    for (let attempt = 0; attempt < 2; attempt++) {
      const lacking = await db
        .selectFrom('repo_packs')
        .select(['seq', 'digest'])
        .where('repo_id', '=', id)
        .where('seq', '>', applied)
        .orderBy('seq')
        .execute();
      fetched ||= lacking.length > 0;
      for (const p of lacking) {
        await packs.apply(dir, p.digest);
        applied = Number(p.seq);
        writeFileSync(markOf(id), String(applied));
      }
      const state = JSON.stringify([...refs]);
      if (!lacking.length && held.get(id) === state) break;
      if (await holds(id, [...new Set(refs.values())])) {
        held.set(id, state);
        break;
      }
      held.delete(id);
      // The copy's mark says more than it holds (a copy restored from a backup, a folder copied by hand):
      // every pack again, from the first.
      if (attempt === 1)
        throw new Error(
          `the repository ${id} lacks commits its packs should hold: the blob store is incomplete`,
        );
      applied = 0;
    }
    const mine = branchesIn(dir);
    const script: string[] = [];
    for (const [ref, commit] of refs) if (mine.get(ref) !== commit) script.push(`update ${ref} ${commit}`);
    for (const ref of mine.keys()) if (!refs.has(ref)) script.push(`delete ${ref}`);
    if (script.length)
      await git(dir, ['update-ref', '--stdin', '-m', 'microapp: shared state'], {
        input: `${script.join('\n')}\n`,
      });
    // Pack files come with the packs applied here; the copy's own writes leave loose objects (below).
    if (fetched) await packs.tidyCopy(dir);
    return true;
  }

  /**
   * Writes the moves to the database, with a pack of the objects they bring that it does not hold yet, in one
   * transaction; throws RefMoved when a branch is no longer where the move expects it. The copy must hold
   * the new commits. The copy's own branches are not moved here.
   */
  async function publishNow(id: string, moves: RefMove[], made?: Buffer) {
    for (const m of moves)
      if (!branch.test(m.ref) || [m.before, m.after].some((c) => c !== null && !sha.test(c)))
        throw new Error(`not a branch move: ${m.ref}`);
    const known = await dbRefs(id);
    // Another replica moved a branch first: refused now, before a pack is made against its commit (which
    // this copy may not hold). The transaction below checks again.
    for (const m of moves) if ((known.get(m.ref) ?? null) !== m.before) throw new RefMoved(m.ref);
    const news = moves.flatMap((m) => (m.after ? [m.after] : []));
    let pack: { digest: string; objects: number } | null = null;
    if (news.length) {
      const stops = [...new Set(known.values())];
      const bytes = made ?? (await packs.packBetween(local.pathOf(id), news, stops));
      // The pack git writes when nothing is new holds no objects: not kept.
      if (objectsIn(bytes) > 0) pack = await packs.put(bytes);
    }
    let seq: number | undefined;
    for (let attempt = 0; ; attempt++)
      try {
        seq = await db.transaction().execute(async (trx) => {
          for (const m of moves) {
            let moved: bigint | undefined;
            if (m.before === null && m.after !== null)
              moved = (
                await trx
                  .insertInto('repo_refs')
                  .values({ repo_id: id, ref: m.ref, commit_id: m.after })
                  .onConflict((oc) => oc.columns(['repo_id', 'ref']).doNothing())
                  .executeTakeFirst()
              ).numInsertedOrUpdatedRows;
            else if (m.before !== null && m.after === null)
              moved = (
                await trx
                  .deleteFrom('repo_refs')
                  .where('repo_id', '=', id)
                  .where('ref', '=', m.ref)
                  .where('commit_id', '=', m.before)
                  .executeTakeFirst()
              ).numDeletedRows;
            else if (m.before !== null && m.after !== null)
              moved = (
                await trx
                  .updateTable('repo_refs')
                  .set({ commit_id: m.after })
                  .where('repo_id', '=', id)
                  .where('ref', '=', m.ref)
                  .where('commit_id', '=', m.before)
                  .executeTakeFirst()
              ).numUpdatedRows;
            if (moved !== undefined && Number(moved) !== 1) throw new RefMoved(m.ref);
          }
          if (!pack) return undefined;
          // Two writers taking the same number: the primary key lets one in, and the other tries again.
          const next = (await packs.lastSeq(id, trx)) + 1;
          await trx
            .insertInto('repo_packs')
            .values({
              repo_id: id,
              seq: next,
              digest: pack.digest,
              objects: pack.objects,
              created_at: deps.clock.now().toISOString(),
            })
            .execute();
          return next;
        });
        break;
      } catch (error) {
        if (error instanceof RefMoved || attempt >= 4 || !/unique|duplicate/i.test(String(error)))
          throw error;
      }
    if (!seq) return;
    // The copy made the pack: held, when it held every one before it (its next read fetches nothing).
    if (appliedIn(id) === seq - 1) writeFileSync(markOf(id), String(seq));
  }

  const sync = async (id: string) => shares(id) && serial(id, () => syncNow(id));
  const read =
    <A extends unknown[], R>(f: (id: string, ...rest: A) => Promise<R>) =>
    async (id: string, ...rest: A): Promise<R> => {
      await sync(id);
      return f(id, ...rest);
    };
  /** The copy's own way for a repository that is not shared, the shared way for one that is. */
  const either =
    <A extends unknown[], R>(own: (id: string, ...rest: A) => R, shared: (id: string, ...rest: A) => R) =>
    (id: string, ...rest: A): R =>
      shares(id) ? shared(id, ...rest) : own(id, ...rest);

  /** Publishes the copy's moves; when they are refused, the copy goes back to what the database holds. */
  async function publishOrUndo(id: string, moves: RefMove[]) {
    try {
      await publishNow(id, moves);
    } catch (error) {
      await syncNow(id).catch(() => {});
      throw error;
    }
    await packs.tidyCopy(local.pathOf(id));
  }

  /** A write through the copy: brought up to date, changed, then the change written to the database. */
  const write = <R>(id: string, work: () => Promise<{ result: R; moves: RefMove[] }>) =>
    serial(id, async () => {
      await syncNow(id);
      const { result, moves } = await work();
      await publishOrUndo(id, moves);
      return result;
    });

  /**
   * Shares every repository of the local folder the database does not know yet (the upgrade from a
   * folder of repositories): its branches and one pack of all its objects. Returns how many it shared.
   */
  async function importLocal(ids: string[]): Promise<number> {
    let shared = 0;
    // One query for what is shared already: after the upgrade every folder holds a copy of each.
    const known = new Set(
      (await db.selectFrom('repo_refs').select('repo_id').distinct().execute()).map((r) => r.repo_id),
    );
    for (const id of ids.filter((i) => !known.has(i)))
      await serial(id, async () => {
        // Not a repository of the platform's naming: left alone.
        if (!isRepositoryId(id) || !shares(id)) return;
        if (!local.exists(id) || (await dbRefs(id)).size) return;
        const refs = await local.refs(id);
        if (!refs.size) return;
        await publishNow(
          id,
          [...refs].map(([ref, commit]) => ({ ref, before: null, after: commit })),
        ).then(
          () => shared++,
          (error) => {
            // Another replica shared it first.
            if (!(error instanceof RefMoved)) throw error;
          },
        );
        writeFileSync(markOf(id), String(await packs.lastSeq(id)));
      });
    return shared;
  }

  /**
   * Runs `work` (a push through `git receive-pack`) on the copy, brought up to date, with no other write of
   * this process in between. `copy.publish` writes the push's moves to the database; when they are refused
   * the copy goes back to the database's state and it throws. The caller holds git's answer until then, so
   * a pusher never reads "ok" for a push that did not land.
   */
  const exclusiveShared = <R>(id: string, work: (copy: PushCopy) => Promise<R>) =>
    serial(id, async () => {
      await syncNow(id);
      return work({ refs: () => local.refs(id), publish: (moves) => publishOrUndo(id, moves) });
    });

  /**
   * Merges a repository's packs into one past `above` (repo-packs.ts), while the copy is read and written;
   * a copy that held every pack merged is then marked as holding the merged one, not read it again.
   */
  async function compact(id: string, above?: number): Promise<Compaction | null> {
    const done = await packs.compact(id, above);
    if (done)
      await serial(id, async () => {
        if (local.exists(id) && appliedIn(id) === done.upTo) writeFileSync(markOf(id), String(done.seq));
      });
    return done;
  }

  /** The scheduled upkeep (job `repository-packs`): every crowded repository compacted, then the sweep. */
  async function maintain() {
    let compacted = 0;
    for (const id of await packs.crowded()) if (await compact(id)) compacted++;
    return { compacted, ...(await packs.sweep()) };
  }

  const store: RepoStore & {
    importLocal: typeof importLocal;
    compact: typeof compact;
    maintain: typeof maintain;
    sweep: () => Promise<{ removed: number; kept: number }>;
  } = {
    ...local,
    sync,
    exclusive: (id, work) => (shares(id) ? exclusiveShared(id, work) : local.exclusive(id, work)),
    importLocal,
    compact,
    maintain,
    sweep: packs.sweep,
    shares,
    async present(id: string) {
      return (await sync(id)) || local.exists(id);
    },
    create: either(local.create, (id, files, message, author) =>
      serial(id, async () => {
        if ((await dbRefs(id)).size) {
          // Another replica made the GitOps repository a moment ago.
          if (id === gitopsRepository) throw new AppError('conflict', 'the GitOps repository exists already');
          // An app's repository is made once, at its registration: what the database holds of one whose
          // registration never recorded it is what a crash left halfway, and goes.
          await db.transaction().execute(async (trx) => {
            await trx.deleteFrom('repo_refs').where('repo_id', '=', id).execute();
            await trx.deleteFrom('repo_packs').where('repo_id', '=', id).execute();
          });
        }
        const commit = await local.create(id, files, message, author);
        // A new repository's objects are the one pack `git fast-import` wrote: shared as it is.
        const packs = join(local.pathOf(id), 'objects', 'pack');
        const made = readdirSync(packs).filter((f) => f.endsWith('.pack'));
        await publishNow(
          id,
          [{ ref: `refs/heads/${mainBranch}`, before: null, after: commit }],
          made.length === 1 ? readFileSync(join(packs, made[0]!)) : undefined,
        );
        return commit;
      }),
    ),
    setBranch: either(local.setBranch, (id, branch, commit, expected) =>
      write(id, async () => {
        const ref = `refs/heads/${branch}`;
        // The copy is the database's now: a branch another replica moved first is that conflict, whether it
        // moved before this write began or while it was written.
        if ((branchesIn(local.pathOf(id)).get(ref) ?? null) !== expected) throw new RefMoved(ref);
        const moves = [{ ref, before: expected, after: commit }];
        await local.setBranch(id, branch, commit, expected);
        return { result: undefined, moves };
      }),
    ),
    merge: either(local.merge, (id, headCommit, message, by) =>
      write(id, async () => {
        const before = await local.head(id);
        const result = await local.merge(id, headCommit, message, by);
        return { result, moves: [{ ref: `refs/heads/${mainBranch}`, before, after: result.commit }] };
      }),
    ),
    commitFiles: read(local.commitFiles),
    refs: read(local.refs),
    head: read(local.head),
    log: read(local.log),
    archive: read(local.archive),
    isAncestor: read(local.isAncestor),
    mergeBase: read(local.mergeBase),
    diff: read(local.diff),
    readFile: read(local.readFile),
    hasCommit: read(local.hasCommit),
    bundle: read(local.bundle),
  };

  return store;
}

export type SharedRepoStore = ReturnType<typeof createSharedRepoStore>;
