import { CompiledQuery, type Kysely, sql, type Transaction } from 'kysely';
import { canonicalJson } from '../../canonical-json.ts';
import type { Clock } from '../../clock.ts';
import type { DatabaseOptions, Dialect } from '../../db/database.ts';
import type { AuditEventsTable, AuditQueueTable, Database } from '../../db/schema.ts';
import { newTimedId, nowIso } from '../../ids.ts';
import type { AgentActor } from '../identity/principal.ts';
import { type ChainedEvent, checkLink, genesisHash, hashWithCanonicalSummary } from './audit-chain.ts';
import type { Checkpoint } from './audit-checkpoints.ts';
import { chainEnd, type VerifyResult, verifyChain } from './audit-verify.ts';

/** Who did something and from where; every governed change carries one. */
export type AuditContext = {
  actor: string;
  requestId?: string;
  sourceIp?: string;
  /** The agent that acted for `actor`, recorded in the event's summary as `act` (covered by its hash). */
  act?: AgentActor;
};

/** What happened, to what, and a summary that never holds a secret. */
export type AuditInput = {
  action: string;
  targetType: string;
  target: string;
  reason?: string | null;
  summary?: Record<string, unknown>;
};

/** An event as recorded: in the chain once sequenced, with its number and hash. */
export type QueuedEvent = Omit<ChainedEvent, 'seq' | 'prevHash'>;

/** An audit event as the API returns it. */
export type AuditEvent = ChainedEvent & { hash: string };

export type { VerifyResult } from './audit-verify.ts';

// Key names that would carry a credential. A summary is built field by field, so this only trips on a bug.
const secretKey = /(secret|password|token|credential|cookie|authorization)s?$/i;

/** An agent as an event names it: RFC 8693's `act`, with the delegation it acted under. */
const actOf = (a: AgentActor) => ({
  agent: a.client,
  version: a.version,
  model: a.model,
  delegation: a.delegationId,
});

function assertNoSecrets(value: unknown, path = 'summary'): void {
  if (value === null || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value)) {
    if (secretKey.test(key)) throw new Error(`audit ${path}.${key} looks like a secret and is refused`);
    assertNoSecrets(inner, `${path}.${key}`);
  }
}

function toEvent(row: AuditEventsTable): AuditEvent {
  return {
    seq: Number(row.seq),
    id: row.id,
    occurredAt: row.occurred_at,
    actor: row.actor,
    action: row.action,
    targetType: row.target_type,
    target: row.target,
    reason: row.reason,
    requestId: row.request_id,
    sourceIp: row.source_ip,
    summary: JSON.parse(row.summary) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

const headQuery = CompiledQuery.raw(
  'select seq, hash from audit_events order by seq desc limit 1',
) as CompiledQuery<{
  seq: number | string;
  hash: string;
}>;

/** audit_events' columns and their PostgreSQL types, in the order every insert gives them. */
const eventColumns = [
  ['seq', 'bigint'],
  ['id', 'text'],
  ['occurred_at', 'text'],
  ['actor', 'text'],
  ['action', 'text'],
  ['target_type', 'text'],
  ['target', 'text'],
  ['reason', 'text'],
  ['request_id', 'text'],
  ['source_ip', 'text'],
  ['summary', 'text'],
  ['prev_hash', 'text'],
  ['hash', 'text'],
] as const;

/** One event appended: positional parameters, which both SQLite and PostgreSQL (as $n) take. */
const insertOne = (dialect: Dialect) =>
  `insert into audit_events (${eventColumns.map(([c]) => c).join(', ')}) values (${eventColumns.map((_, i) => (dialect === 'postgres' ? `$${i + 1}` : '?')).join(', ')})`;

/** Many events appended on PostgreSQL: a parameter per column, each an array of the events' values. */
const insertUnnest = `insert into audit_events (${eventColumns.map(([c]) => c).join(', ')}) select * from unnest(${eventColumns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})`;

/** The tamper-evident audit trail: append inside the caller's transaction, read, and verify the chain. */
export function createAuditService(deps: {
  db: Kysely<Database>;
  dialect: Dialect;
  clock?: Clock;
  /** How to open the database again: the verifier reads it from worker threads. Without it, in process. */
  database?: DatabaseOptions;
}) {
  const { db, dialect } = deps;
  const insertOneSql = insertOne(dialect);

  // Events this process queued and has not seen chained yet: by the request that recorded them, and when the
  // last one without a request was recorded (a job, a build). The response to such a request waits for the
  // chain (afterResponse's caller), so that whoever acted reads their own event in the trail at once.
  const queuedBy = new Map<string, number>();
  let prunedAt = 0;
  let backgroundUntil = 0;
  let scheduled: NodeJS.Timeout | null = null;
  // Whatever no request waited for (a response that never went through the HTTP hooks, a replica that
  // stopped between its commit and its chaining) is chained within a second by every replica.
  let sweeper: NodeJS.Timeout | null = null;

  /**
   * Records one event in the given transaction, so it commits or rolls back with the change it records.
   * SQLite serializes its writers anyway: the event is chained there and then. On PostgreSQL the chain's
   * one lock would serialize every audited change across every replica, commit included: the event is
   * queued instead, and `sequence()` chains what has committed, many at once, soon after (and before
   * anything reads the trail).
   */
  async function record(
    trx: Transaction<Database>,
    ctx: AuditContext,
    input: AuditInput,
  ): Promise<QueuedEvent> {
    const summary = ctx.act ? { ...input.summary, act: actOf(ctx.act) } : (input.summary ?? {});
    assertNoSecrets(summary);
    const event: QueuedEvent = {
      id: newTimedId('event'),
      occurredAt: deps.clock ? deps.clock.nowIso() : nowIso(),
      actor: ctx.actor,
      action: input.action,
      targetType: input.targetType,
      target: input.target,
      reason: input.reason ?? null,
      requestId: ctx.requestId ?? null,
      sourceIp: ctx.sourceIp ?? null,
      summary,
    };
    const row = {
      id: event.id,
      occurred_at: event.occurredAt,
      actor: event.actor,
      action: event.action,
      target_type: event.targetType,
      target: event.target,
      reason: event.reason,
      request_id: event.requestId,
      source_ip: event.sourceIp,
      // Canonical, as the hash covers it: the verifier then hashes the stored text as it is.
      summary: canonicalJson(summary),
    };
    if (dialect === 'sqlite') {
      await appendChained(trx, [row]);
      return event;
    }
    await trx.insertInto('audit_queue').values(row).execute();
    if (ctx.requestId) {
      const now = Date.now();
      queuedBy.set(ctx.requestId, now);
      // Requests whose response never waited (chainFor) are forgotten after 10 s: looked for at most once a
      // second, since a look goes through every request still queued.
      if (queuedBy.size > 1000 && now - prunedAt > 1000) {
        prunedAt = now;
        for (const [id, at] of queuedBy) if (at < now - 10_000) queuedBy.delete(id);
      }
    } else backgroundUntil = Date.now() + 2000;
    sweeper ??= setInterval(() => sequence().catch(() => {}), 1000);
    sweeper.unref();
    // Soon after the caller commits, whoever else is writing: a timer, not the caller, so a rollback costs
    // nothing but an empty look at the queue.
    scheduled ??= setTimeout(() => {
      scheduled = null;
      sequence().catch(() => {});
    }, 5);
    scheduled.unref();
    return event;
  }

  /** Appends events after the chain's head, in order, in the given transaction (which holds the chain). */
  async function appendChained(trx: Transaction<Database>, queued: Omit<AuditQueueTable, 'position'>[]) {
    // Written as SQL once: every audited change runs these two, and building them each time cost more
    // than running them.
    const last = (await trx.executeQuery(headQuery)).rows[0];
    let seq = last ? Number(last.seq) : 0;
    let prevHash = last ? last.hash : genesisHash;
    const rows = queued.map((q) => {
      const event = {
        seq: ++seq,
        id: q.id,
        occurredAt: q.occurred_at,
        actor: q.actor,
        action: q.action,
        targetType: q.target_type,
        target: q.target,
        reason: q.reason,
        requestId: q.request_id,
        sourceIp: q.source_ip,
        prevHash,
      };
      prevHash = hashWithCanonicalSummary(event, q.summary);
      return { ...q, seq: event.seq, prev_hash: event.prevHash, hash: prevHash };
    });
    if (rows.length === 1) {
      const r = rows[0]!;
      await trx.executeQuery(
        CompiledQuery.raw(
          insertOneSql,
          eventColumns.map(([column]) => r[column]),
        ),
      );
      return;
    }
    if (dialect === 'postgres') {
      // The sequencer's batches: one array per column, whatever the batch's size, rather than a parameter
      // per value to build, send and bind.
      await trx.executeQuery(
        CompiledQuery.raw(
          insertUnnest,
          eventColumns.map(([column]) => rows.map((r) => r[column])),
        ),
      );
      return;
    }
    // A few hundred rows a statement: within SQLite's limit on parameters.
    for (let i = 0; i < rows.length; i += 500)
      await trx
        .insertInto('audit_events')
        .values(rows.slice(i, i + 500))
        .execute();
  }

  /** Chains up to `batch` queued events in one transaction; how many it chained. */
  async function chainBatch(batch: number): Promise<number> {
    return db.transaction().execute(async (trx) => {
      // One sequencer at a time, across server replicas.
      await sql`select pg_advisory_xact_lock(7305561831)`.execute(trx);
      const queued = await trx
        .selectFrom('audit_queue')
        .selectAll()
        .orderBy('position', 'asc')
        .limit(batch)
        .execute();
      if (queued.length === 0) return 0;
      await appendChained(
        trx,
        queued.map(({ position: _, ...q }) => q),
      );
      await trx.executeQuery(
        CompiledQuery.raw('delete from audit_queue where position = any($1::bigint[])', [
          queued.map((q) => q.position),
        ]),
      );
      return queued.length;
    });
  }

  // One sequencing at a time in this process; callers that arrive while one runs share the next, which
  // starts when it ends and chains whatever committed meanwhile (a group commit of the chain).
  let running: Promise<void> = Promise.resolve();
  let next: Promise<void> | null = null;

  /** Chains every event committed so far (by any replica); resolves once they are in the chain. */
  function sequence(): Promise<void> {
    // SQLite chains as it records: nothing is ever queued there.
    if (dialect === 'sqlite') return Promise.resolve();
    if (next) return next;
    const mine = running.then(async () => {
      next = null;
      while ((await chainBatch(2000)) === 2000);
    });
    next = mine;
    running = mine.catch(() => {});
    return mine;
  }

  /** Whether the response to this request must wait for the chain: it, or a job just now, queued an event. */
  function mustChainBefore(requestId: string): boolean {
    return queuedBy.has(requestId) || Date.now() < backgroundUntil;
  }

  /** Chains what this request (or a recent job) queued, then forgets the request. */
  async function chainFor(requestId: string): Promise<void> {
    try {
      await sequence();
    } finally {
      queuedBy.delete(requestId);
    }
  }

  /** Events in chain order after `afterSeq`, optionally since a time and limited to targets. */
  async function list(query: {
    afterSeq?: number;
    since?: string;
    limit: number;
    targets?: { type: string; names: string[] };
    /** An exact action, or a prefix ending in "." */
    action?: string;
    actor?: string;
  }): Promise<AuditEvent[]> {
    await sequence();
    let q = db.selectFrom('audit_events').selectAll().orderBy('seq', 'asc').limit(query.limit);
    if (query.action)
      q = query.action.endsWith('.')
        ? q.where(sql<string>`substr(action, 1, ${query.action.length})`, '=', query.action)
        : q.where('action', '=', query.action);
    if (query.actor) q = q.where('actor', '=', query.actor);
    if (query.afterSeq !== undefined) q = q.where('seq', '>', query.afterSeq);
    if (query.since) q = q.where('occurred_at', '>=', query.since);
    if (query.targets) {
      const { type, names } = query.targets;
      if (names.length === 0) return [];
      q = q.where('target_type', '=', type).where('target', 'in', names);
    }
    return (await q.execute()).map(toEvent);
  }

  /**
   * Walks the whole chain in order and names the first event that does not fit, then holds it against
   * signed checkpoints (whose signatures the caller has checked): a chain recomputed after an edit no
   * longer has a checkpoint's head at its sequence number, and a truncated one is shorter than it.
   */
  async function verify(checkpoints: Checkpoint[] = []): Promise<VerifyResult> {
    await sequence();
    if (deps.database) {
      const head = await db
        .selectFrom('audit_events')
        .select('seq')
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return verifyChain(deps.database, head ? Number(head.seq) : 0, checkpoints);
    }
    const at = new Map(checkpoints.map((c) => [c.seq, c]));
    let previous: { seq: number; hash: string } | null = null;
    let checked = 0;
    for (;;) {
      const page = await list({ afterSeq: previous?.seq ?? 0, limit: 1000 });
      if (page.length === 0) break;
      for (const event of page) {
        const reason = checkLink(event, previous);
        if (reason) return { ok: false, checked, broken: { seq: event.seq, id: event.id, reason } };
        const signed = at.get(event.seq);
        if (signed && signed.head !== event.hash)
          return {
            ok: false,
            checked,
            broken: {
              seq: event.seq,
              id: event.id,
              reason: `the chain does not match the checkpoint signed at ${signed.at}: events up to here were rewritten and their hashes recomputed`,
            },
          };
        previous = { seq: event.seq, hash: event.hash };
        checked++;
      }
    }
    return chainEnd(checked, previous, checkpoints);
  }

  /** Stops the timers; what is queued stays queued for the next start (or another replica) to chain. */
  function stop(): void {
    if (scheduled) clearTimeout(scheduled);
    if (sweeper) clearInterval(sweeper);
    scheduled = sweeper = null;
  }

  return { record, sequence, mustChainBefore, chainFor, list, verify, stop };
}

export type AuditService = ReturnType<typeof createAuditService>;
