import { CompiledQuery } from 'kysely';
import pg from 'pg';
import type { Db } from './database.ts';

/**
 * What the gateway reads on every request (a token's or session's row and its user, an app's view, a
 * lifecycle hold), kept in memory until a write to a table it depends on commits (migration 0026).
 *
 * SQLite (one process writes): a counter bumped by triggers in the writing transaction, read once at the
 * start of each request, so a request never sees a row older than the last commit before it began.
 * PostgreSQL (replicas): triggers notify on commit and every replica listens; a replica forgets everything
 * when a notification arrives, and after each write request it served itself, so its own changes are seen
 * at once and another replica's within the notification's delivery. While the listening connection is
 * down, nothing is kept.
 */
export type ReadCache = {
  /** Call at the start of a request, before `memo`. */
  begin(): Promise<void>;
  /** The value kept for (kind, key), or `load()`'s, kept. A failed load is not kept. */
  memo<T>(kind: string, key: string, load: () => Promise<T>): Promise<T>;
  /** Forgets everything (a write this process made). */
  forget(): void;
  stop(): Promise<void>;
};

// Read on every gateway request: written as SQL once.
const generationQuery = CompiledQuery.raw(
  'select value from change_generation where id = 1',
) as CompiledQuery<{
  value: number;
}>;

// Past this many entries, everything is forgotten at once: simpler than an LRU, and rare.
const maxEntries = 20_000;

export function createReadCache(db: Db, options: { onError?: (error: Error) => void } = {}): ReadCache {
  let kept = new Map<string, Promise<unknown>>();
  let generation = -1;
  // PostgreSQL only: whether the listening connection is up.
  let listening = db.dialect === 'sqlite';
  let listener: pg.Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;

  const forget = () => {
    kept = new Map();
  };

  async function listen(): Promise<void> {
    if (db.options.kind !== 'postgres' || stopped) return;
    const { url, schema } = db.options;
    const client = new pg.Client({
      connectionString: url,
      ...(schema ? { options: `-c search_path="${schema.replaceAll('"', '""')}"` } : {}),
    });
    const down = (error?: Error) => {
      if (listener !== client) return;
      listening = false;
      listener = null;
      forget();
      client.end().catch(() => {});
      if (error) options.onError?.(error);
      if (!stopped) {
        retry = setTimeout(() => listen().catch(() => {}), 1000);
        retry.unref();
      }
    };
    listener = client;
    client.on('error', down);
    client.on('end', () => down());
    client.on('notification', forget);
    try {
      await client.connect();
      await client.query('listen microapp_changes');
      forget();
      listening = true;
    } catch (error) {
      down(error as Error);
    }
  }
  if (db.dialect === 'postgres') void listen();

  async function begin(): Promise<void> {
    if (db.dialect !== 'sqlite') return;
    const row = await db.kysely.executeQuery(generationQuery);
    const now = Number(row.rows[0]?.value ?? 0);
    // Never backwards: a request that read an older value than another still loads fresh rows.
    if (now > generation) {
      generation = now;
      forget();
    }
  }

  function memo<T>(kind: string, key: string, load: () => Promise<T>): Promise<T> {
    if (!listening) return load();
    const k = `${kind}\u0000${key}`;
    const found = kept.get(k) as Promise<T> | undefined;
    if (found) return found;
    if (kept.size >= maxEntries) forget();
    const map = kept;
    const loading = load();
    map.set(k, loading);
    loading.catch(() => map.delete(k));
    return loading;
  }

  async function stop(): Promise<void> {
    stopped = true;
    if (retry) clearTimeout(retry);
    const client = listener;
    listener = null;
    listening = db.dialect === 'sqlite';
    forget();
    await client?.end().catch(() => {});
  }

  return { begin, memo, forget, stop };
}
