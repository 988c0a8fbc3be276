import { type Kysely, sql, type Transaction } from 'kysely';
import { canonicalJson } from '../../canonical-json.ts';
import type { Clock } from '../../clock.ts';
import type { DatabaseOptions, Dialect } from '../../db/database.ts';
import type { AuditEventsTable, Database } from '../../db/schema.ts';
import { newId, nowIso } from '../../ids.ts';
import { type ChainedEvent, checkLink, genesisHash, hashEvent } from './audit-chain.ts';
import type { Checkpoint } from './audit-checkpoints.ts';
import { type VerifyResult, verifyChain } from './audit-verify.ts';

/** Who did something and from where; every governed change carries one. */
export type AuditContext = { actor: string; requestId?: string; sourceIp?: string };

/** What happened, to what, and a summary that never holds a secret. */
export type AuditInput = {
  action: string;
  targetType: string;
  target: string;
  reason?: string | null;
  summary?: Record<string, unknown>;
};

/** An audit event as the API returns it. */
export type AuditEvent = ChainedEvent & { hash: string };

export type { VerifyResult } from './audit-verify.ts';

// Key names that would carry a credential. A summary is built field by field, so this only trips on a bug.
const secretKey = /(secret|password|token|credential|cookie|authorization)s?$/i;

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

/** The tamper-evident audit trail: append inside the caller's transaction, read, and verify the chain. */
export function createAuditService(deps: {
  db: Kysely<Database>;
  dialect: Dialect;
  clock?: Clock;
  /** How to open the database again: the verifier reads it from worker threads. Without it, in process. */
  database?: DatabaseOptions;
}) {
  const { db, dialect } = deps;

  /** Appends one event in the given transaction, so it commits or rolls back with the change it records. */
  async function record(
    trx: Transaction<Database>,
    ctx: AuditContext,
    input: AuditInput,
  ): Promise<AuditEvent> {
    const summary = input.summary ?? {};
    assertNoSecrets(summary);
    // Serialize appends so the chain has one head, across server replicas on PostgreSQL.
    if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(7305561831)`.execute(trx);
    const last = await trx
      .selectFrom('audit_events')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const event: ChainedEvent = {
      seq: last ? Number(last.seq) + 1 : 1,
      id: newId('event'),
      occurredAt: deps.clock ? deps.clock.nowIso() : nowIso(),
      actor: ctx.actor,
      action: input.action,
      targetType: input.targetType,
      target: input.target,
      reason: input.reason ?? null,
      requestId: ctx.requestId ?? null,
      sourceIp: ctx.sourceIp ?? null,
      summary,
      prevHash: last ? last.hash : genesisHash,
    };
    const hash = hashEvent(event);
    await trx
      .insertInto('audit_events')
      .values({
        seq: event.seq,
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
        prev_hash: event.prevHash,
        hash,
      })
      .execute();
    return { ...event, hash };
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
    const newest = checkpoints.reduce<Checkpoint | null>((a, c) => (!a || c.seq > a.seq ? c : a), null);
    if (newest && newest.seq > checked)
      return {
        ok: false,
        checked,
        broken: {
          seq: checked + 1,
          id: null,
          reason: `the chain ends after ${checked} events, but the checkpoint signed at ${newest.at} counted ${newest.seq}: the newest events were deleted`,
        },
      };
    return {
      ok: true,
      checked,
      head: previous?.hash ?? genesisHash,
      checkpoint: newest ? { seq: newest.seq, at: newest.at } : null,
    };
  }

  return { record, list, verify };
}

export type AuditService = ReturnType<typeof createAuditService>;
