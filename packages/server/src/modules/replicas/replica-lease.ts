import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';

/** This replica's claim on the work it runs, and what it knows of the others. */
export type ReplicaLease = {
  /** This replica's name (MICROAPP_REPLICA_ID). */
  id: string;
  /**
   * Whether work recorded under `owner` is this replica's to pick up: its own, work from before replicas
   * had names (null), or a replica whose lease ran out (it stopped, or died and stopped renewing).
   */
  mayTakeOver(owner: string | null): Promise<boolean>;
  /** Records where the other replicas reach this one, once it listens. */
  advertise(url: string): Promise<void>;
  /** Where a live replica is reached; null when its lease ran out or it said nowhere. */
  addressOf(id: string): Promise<string | null>;
};

/**
 * Registers this server in the `replicas` table and renews its lease every third of `leaseMs` (wall clock:
 * leases are between machines, not the dev clock's simulated days). A replica that is killed stops
 * renewing; `leaseMs` later its builds and app instances are free for another to take over.
 * @example const lease = await startReplicaLease({ db, id: 'node-a', version: '1.4.0' })
 */
export async function startReplicaLease(deps: {
  db: Kysely<Database>;
  id: string;
  version: string;
  leaseMs?: number;
  onError?: (error: unknown) => void;
}): Promise<ReplicaLease & { stop(): Promise<void> }> {
  const { db, id } = deps;
  const leaseMs = deps.leaseMs ?? 30_000;
  const until = () => new Date(Date.now() + leaseMs).toISOString();
  const now = new Date().toISOString();
  await db
    .insertInto('replicas')
    .values({ id, started_at: now, lease_until: until(), version: deps.version })
    .onConflict((oc) =>
      oc.column('id').doUpdateSet({ started_at: now, lease_until: until(), version: deps.version }),
    )
    .execute();
  let renewing: Promise<unknown> = Promise.resolve();
  const timer = setInterval(
    () => {
      renewing = db
        .updateTable('replicas')
        .set({ lease_until: until() })
        .where('id', '=', id)
        .execute()
        .catch((error) => deps.onError?.(error));
    },
    Math.max(100, Math.floor(leaseMs / 3)),
  );
  timer.unref();

  async function release() {
    clearInterval(timer);
    await renewing;
    await db
      .updateTable('replicas')
      .set({ lease_until: new Date(0).toISOString() })
      .where('id', '=', id)
      .execute();
  }

  return {
    id,
    async advertise(url) {
      await db.updateTable('replicas').set({ url }).where('id', '=', id).execute();
    },
    async addressOf(other) {
      const row = await db
        .selectFrom('replicas')
        .select(['url', 'lease_until'])
        .where('id', '=', other)
        .executeTakeFirst();
      return row && row.lease_until > new Date().toISOString() ? row.url : null;
    },
    async mayTakeOver(owner) {
      if (owner === null || owner === id) return true;
      const row = await db
        .selectFrom('replicas')
        .select('lease_until')
        .where('id', '=', owner)
        .executeTakeFirst();
      return !row || row.lease_until <= new Date().toISOString();
    },
    /** Gives the lease up (a clean stop), so the others take over at once rather than when it runs out. */
    async stop() {
      await release().catch((error) => deps.onError?.(error));
    },
  };
}
