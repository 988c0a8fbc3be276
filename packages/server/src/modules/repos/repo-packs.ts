import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { type BlobStore, digestOf } from '../blobs/blob-store.ts';
import { git } from './git.ts';

/** The objects a pack holds, from its header: the pack git writes for no objects holds none. */
export const objectsIn = (pack: Buffer) => (pack.length >= 12 ? pack.readUInt32BE(8) : 0);

export type PackBlobs = Pick<BlobStore, 'put' | 'get' | 'remove'>;

// The largest pack a write shares (git's output is read whole); a push itself is refused past 50 MB.
const maxPackBytes = 1024 * 1024 * 1024;

/** What a compaction did: `packs` packs up to number `upTo` became the one pack numbered `seq`. */
export type Compaction = { packs: number; upTo: number; seq: number; objects: number; digest: string };

/**
 * The packs of shared repositories (shared-repos.ts) in the blob store, kept from growing without end:
 *
 * - Every push adds a pack, and a replica with no copy applies them all. Past `compactAbove` packs, a
 *   repository's packs are merged into one (`compact`) that holds every object of every pack it replaces,
 *   reachable or not: a writer that left out objects another replica's pack already held still finds them.
 *   Replicas whose copy lacks some of the old packs apply the merged one instead.
 * - A pack is put in the blob store before the transaction that names it, which another replica's write can
 *   refuse, and a compaction leaves the packs it replaced named by nothing. Both are recorded
 *   (`repo_pack_uploads`) and removed by `sweep` once nothing has named them for `graceMs`, time enough for
 *   a replica reading the old packs, or a backup copying them, to finish.
 */
export function createRepoPacks(deps: {
  db: Kysely<Database>;
  clock: Clock;
  blobs: PackBlobs;
  /** A repository with more packs than this is compacted by `maintain`. Default 32. */
  compactAbove?: number;
  /** A replica's copy with more pack files than this is repacked into one as it is brought up to date. Default 50. */
  repackCopyAbove?: number;
  /** A replica's copy with more loose objects than this is repacked after its own writes. Default 6,700 (git's `gc.auto`). */
  looseCopyAbove?: number;
  /** How long a pack named by nothing stays in the blob store. Default one hour. */
  graceMs?: number;
}) {
  const { db, clock } = deps;
  const compactAbove = deps.compactAbove ?? 32;
  const graceMs = deps.graceMs ?? 3_600_000;
  const repackCopyAbove = deps.repackCopyAbove ?? 50;
  const looseCopyAbove = deps.looseCopyAbove ?? 6700;

  /** Records that these packs are (or may soon be) in the blob store, named by nothing yet, as of now. */
  const noteUploads = (k: Kysely<Database>, digests: string[]) =>
    digests.length === 0
      ? Promise.resolve()
      : k
          .insertInto('repo_pack_uploads')
          .values(digests.map((digest) => ({ digest, uploaded_at: clock.nowIso() })))
          .onConflict((oc) => oc.column('digest').doUpdateSet({ uploaded_at: clock.nowIso() }))
          .execute()
          .then(() => {});

  /** Stores a pack, recorded first, so that a crash before its row is written leaves nothing unswept. */
  async function put(bytes: Buffer): Promise<{ digest: string; objects: number }> {
    const digest = digestOf(bytes);
    await noteUploads(db, [digest]);
    await deps.blobs.put('pack', bytes);
    return { digest, objects: objectsIn(bytes) };
  }

  /**
   * One pack of the objects the commits `news` reach and the commits `stops` do not, from a copy. Never cut
   * short: a pack past the limit stops the write rather than share a broken one.
   */
  async function packBetween(gitDir: string, news: string[], stops: string[]): Promise<Buffer> {
    // A stop this copy does not hold (another replica's write it has not fetched) cannot bound the pack:
    // git would refuse it as a bad object. Left out, the pack may repeat objects the blob store has.
    const held = await holding(gitDir, stops);
    const out = await git(gitDir, ['pack-objects', '--revs', '--stdout', '--quiet'], {
      input: `${news.join('\n')}\n${held.map((c) => `^${c}`).join('\n')}\n`,
      maxBytes: maxPackBytes,
    });
    if (out.truncated) throw new Error(`the pack of this write is over ${maxPackBytes >> 20} MB: not shared`);
    return out.stdout;
  }

  /** The commits of `ids` a copy holds. */
  async function holding(gitDir: string, ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const out = await git(gitDir, ['cat-file', '--batch-check=%(objectname) %(objecttype)'], {
      input: `${ids.join('\n')}\n`,
    });
    const commits = new Set(
      out.stdout
        .toString('utf8')
        .split('\n')
        .filter((line) => line.endsWith(' commit'))
        .map((line) => line.split(' ')[0]),
    );
    return ids.filter((c) => commits.has(c));
  }

  /** Adds a pack's objects to a copy, refusing a pack whose bytes or objects are not what they should be. */
  async function apply(gitDir: string, digest: string) {
    await git(gitDir, ['index-pack', '--stdin', '--strict'], { input: await deps.blobs.get('pack', digest) });
  }

  /**
   * Merges a repository's packs into one, when it has more than `above`; null when it has not, or when
   * another write numbered a pack first (the next run tries again).
   */
  async function compact(id: string, above = compactAbove): Promise<Compaction | null> {
    const rows = await db
      .selectFrom('repo_packs')
      .select(['seq', 'digest'])
      .where('repo_id', '=', id)
      .orderBy('seq')
      .execute();
    if (rows.length <= above) return null;
    const upTo = Number(rows.at(-1)!.seq);
    const work = mkdtempSync(join(tmpdir(), 'microapp-compact-'));
    try {
      const scratch = join(work, 'repo.git');
      await git(scratch, ['init', '--bare', '-q']);
      for (const r of rows) await apply(scratch, r.digest);
      // Every object of every pack, by name (no ref names them all), into one pack written to a file.
      const names = await git(scratch, ['cat-file', '--batch-all-objects', '--batch-check=%(objectname)'], {
        maxBytes: maxPackBytes,
      });
      if (names.truncated) throw new Error(`${id} holds too many objects to compact`);
      await git(scratch, ['pack-objects', '-q', join(work, 'merged')], { input: names.stdout });
      const file = readdirSync(work).find((f) => f.startsWith('merged-') && f.endsWith('.pack'));
      if (!file) throw new Error(`git pack-objects wrote no pack for ${id}`);
      const { digest, objects } = await put(readFileSync(join(work, file)));
      const replaced = [...new Set(rows.map((r) => r.digest))].filter((d) => d !== digest);
      await db.transaction().execute(async (trx) => {
        // The next number: taken already when another write came first, and the key refuses this one.
        await trx
          .insertInto('repo_packs')
          .values({ repo_id: id, seq: upTo + 1, digest, objects, created_at: clock.nowIso() })
          .execute();
        const gone = await trx
          .deleteFrom('repo_packs')
          .where('repo_id', '=', id)
          .where('seq', '<=', upTo)
          .executeTakeFirst();
        if (Number(gone.numDeletedRows) !== rows.length)
          throw new Error(`the packs of ${id} changed while they were merged`);
        await noteUploads(trx, replaced);
      });
      return { packs: rows.length, upTo, seq: upTo + 1, objects, digest };
    } catch (error) {
      if (/unique|duplicate|changed while/i.test(String(error))) return null;
      throw error;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /**
   * Removes from the blob store the packs no repository has named for `graceMs`, and forgets the uploads
   * that are named. Each is decided and removed under its row's lock, which a writer putting the same pack
   * again waits for: a pack is never removed from under the row that names it.
   */
  async function sweep(): Promise<{ removed: number; kept: number }> {
    const before = new Date(clock.now().getTime() - graceMs).toISOString();
    const due = await db
      .selectFrom('repo_pack_uploads')
      .select('digest')
      .where('uploaded_at', '<', before)
      .orderBy('digest')
      .execute();
    let removed = 0;
    let kept = 0;
    for (const { digest } of due)
      await db.transaction().execute(async (trx) => {
        // Takes the row (PostgreSQL: its lock; SQLite: the write lock) if it is still old.
        const held = await trx
          .updateTable('repo_pack_uploads')
          .set({ uploaded_at: before })
          .where('digest', '=', digest)
          .where('uploaded_at', '<', before)
          .executeTakeFirst();
        if (Number(held.numUpdatedRows) !== 1) return;
        // Looked at under the lock: a writer that put the pack again and named it has committed by now.
        const named = await trx
          .selectFrom('repo_packs')
          .select('repo_id')
          .where('digest', '=', digest)
          .limit(1)
          .executeTakeFirst();
        if (named) kept++;
        else {
          await deps.blobs.remove('pack', digest);
          removed++;
        }
        await trx.deleteFrom('repo_pack_uploads').where('digest', '=', digest).execute();
      });
    return { removed, kept };
  }

  /**
   * Repacks a replica's copy into one pack when it holds more than `repackCopyAbove` pack files (one per
   * pack applied: git reads a copy of 300 packs 1.4x slower than one of one) or more than `looseCopyAbove`
   * loose objects (its own writes and small pushes leave them, one file each, as `git gc --auto` would
   * find). Objects no branch reaches are kept in it (`--keep-unreachable`): a pack another replica writes
   * later may leave out objects its branches reached when it was made.
   */
  async function tidyCopy(gitDir: string) {
    const objects = join(gitDir, 'objects');
    const entries = (folder: string) => {
      try {
        return readdirSync(folder);
      } catch {
        return [];
      }
    };
    const packFiles = entries(join(objects, 'pack')).filter((f) => f.endsWith('.pack')).length;
    let loose = 0;
    if (packFiles <= repackCopyAbove)
      for (const bucket of entries(objects)) {
        if (/^[0-9a-f]{2}$/.test(bucket)) loose += entries(join(objects, bucket)).length;
        if (loose > looseCopyAbove) break;
      }
    if (packFiles <= repackCopyAbove && loose <= looseCopyAbove) return;
    // Upkeep only: a repack that fails (a full disk) leaves the copy as it was, and the next write or sync
    // tries again; the write or read that asked has succeeded and must not be reported as failed.
    await git(gitDir, ['repack', '-a', '-d', '-q', '--keep-unreachable']).catch(() => {});
  }

  /** The number of a repository's last pack; 0 when it has none. */
  async function lastSeq(id: string, k: Kysely<Database> = db) {
    const row = await k
      .selectFrom('repo_packs')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('repo_id', '=', id)
      .executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  /** The repositories with more than `compactAbove` packs. */
  const crowded = async () =>
    (
      await db
        .selectFrom('repo_packs')
        .select('repo_id')
        .groupBy('repo_id')
        .having((eb) => eb.fn.countAll(), '>', compactAbove)
        .execute()
    ).map((r) => r.repo_id);

  return { put, apply, packBetween, holding, compact, sweep, crowded, lastSeq, tidyCopy };
}

export type RepoPacks = ReturnType<typeof createRepoPacks>;
