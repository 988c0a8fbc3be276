import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { AgentCheckpointsTable } from '../../db/schema-agents.ts';
import { AppError, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { NotificationService } from '../notifications/notification-service.ts';

/** How long a person has to answer an agent's request before it expires (the agent then asks again). */
export const checkpointTtlMs = 24 * 3_600_000;

/** An agent's request as the person sees it: what exactly will happen, why the policy asked, and its state. */
export type CheckpointView = {
  id: string;
  delegation: string;
  agent: string;
  model: string | null;
  person: string;
  tool: string;
  app: string | null;
  /** The tool call's arguments, as the agent sent them (without its instruction text). */
  input: Record<string, unknown>;
  reasons: string[];
  state: AgentCheckpointsTable['state'];
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  note: string | null;
};

type Row = AgentCheckpointsTable & { client_name: string; model: string | null; email: string };

const toView = (r: Row, now: string): CheckpointView => ({
  id: r.id,
  delegation: r.delegation_id,
  agent: r.client_name,
  model: r.model,
  person: r.email,
  tool: r.tool,
  app: r.app,
  input: JSON.parse(r.input) as Record<string, unknown>,
  reasons: JSON.parse(r.reasons) as string[],
  state: r.state === 'pending' && r.expires_at <= now ? 'expired' : r.state,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  decidedAt: r.decided_at,
  decidedBy: r.decided_by,
  note: r.note,
});

/**
 * Human checkpoints: a tool call the `microapp.agents` policy asks about waits here until the person the
 * agent acts for approves or refuses it. An approval is good for one call with the same arguments.
 */
export function createCheckpointService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  notifications: Pick<NotificationService, 'notify'>;
  /** Where the person answers, in the console. */
  pageUrl: (id: string) => string;
}) {
  const { db, clock, audit } = deps;
  const decided: ((view: CheckpointView) => Promise<void>)[] = [];

  const select = (q: Kysely<Database> | Transaction<Database>) =>
    q
      .selectFrom('agent_checkpoints')
      .innerJoin('agent_delegations', 'agent_delegations.id', 'agent_checkpoints.delegation_id')
      .innerJoin('users', 'users.id', 'agent_checkpoints.user_id')
      .selectAll('agent_checkpoints')
      .select(['agent_delegations.client_name', 'agent_delegations.model', 'users.email']);

  /**
   * What became of an earlier ask with the same arguments: an approval is spent on this call. Returns the
   * latest checkpoint for the digest (after spending it), or undefined when there is none worth reusing.
   */
  async function settle(
    trx: Transaction<Database>,
    delegationId: string,
    digest: string,
  ): Promise<CheckpointView | undefined> {
    const row = await select(trx)
      .where('agent_checkpoints.delegation_id', '=', delegationId)
      .where('agent_checkpoints.input_digest', '=', digest)
      .where('agent_checkpoints.state', 'in', ['pending', 'approved', 'refused'])
      .orderBy('agent_checkpoints.created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    const now = clock.nowIso();
    if (!row || (row.state === 'pending' && row.expires_at <= now)) return undefined;
    if (row.state === 'approved') {
      await trx.updateTable('agent_checkpoints').set({ state: 'used' }).where('id', '=', row.id).execute();
      return toView({ ...row, state: 'approved' }, now);
    }
    return toView(row, now);
  }

  /** Holds a call for the person: records the request and tells them where to answer it. */
  async function ask(
    trx: Transaction<Database>,
    principal: Principal,
    call: {
      tool: string;
      app: string | null;
      input: Record<string, unknown>;
      digest: string;
      reasons: string[];
    },
    ctx: AuditContext,
  ): Promise<CheckpointView> {
    const agent = principal.agent!;
    const now = clock.nowIso();
    const id = newId('checkpoint');
    const row: AgentCheckpointsTable = {
      id,
      delegation_id: agent.delegationId,
      user_id: principal.userId,
      tool: call.tool,
      app: call.app,
      input: JSON.stringify(call.input),
      input_digest: call.digest,
      reasons: JSON.stringify(call.reasons),
      state: 'pending',
      created_at: now,
      expires_at: new Date(Date.parse(now) + checkpointTtlMs).toISOString(),
      decided_at: null,
      decided_by: null,
      note: null,
    };
    await trx.insertInto('agent_checkpoints').values(row).execute();
    await audit.record(trx, ctx, {
      action: 'agent.checkpoint.asked',
      targetType: 'checkpoint',
      target: id,
      summary: { tool: call.tool, app: call.app, reasons: call.reasons, inputDigest: call.digest },
    });
    await deps.notifications.notify(trx, {
      recipient: principal.email,
      app: call.app,
      kind: 'agent-checkpoint',
      subject: `${agent.client} asks before it ${call.tool.replace(/_/g, ' ')}${call.app ? ` ${call.app}` : ''}`,
      body: `${agent.client}, acting for you, wants to ${call.tool.replace(/_/g, ' ')}${call.app ? ` ${call.app}` : ''}. The policy asks you first because it ${call.reasons.join('; ')}.`,
      action: deps.pageUrl(id),
      dedupeKey: `agent-checkpoint:${id}`,
    });
    return toView({ ...row, client_name: agent.client, model: agent.model, email: principal.email }, now);
  }

  /** Pending and recent requests of the caller's agents (an admin may ask for everyone's). */
  async function list(principal: Principal, options: { all?: boolean; state?: string } = {}) {
    if (options.all && !hasRole(principal, 'admin'))
      throw new AppError('forbidden', "only admins can list everyone's agent requests");
    let q = select(db).orderBy('agent_checkpoints.created_at', 'desc').limit(200);
    if (!options.all) q = q.where('agent_checkpoints.user_id', '=', principal.userId);
    if (options.state === 'pending')
      q = q
        .where('agent_checkpoints.state', '=', 'pending')
        .where('agent_checkpoints.expires_at', '>', clock.nowIso());
    const now = clock.nowIso();
    return (await q.execute()).map((r) => toView(r, now));
  }

  async function get(principal: Principal, id: string): Promise<CheckpointView> {
    const row = await select(db).where('agent_checkpoints.id', '=', id).executeTakeFirst();
    if (!row || (row.user_id !== principal.userId && !hasRole(principal, 'admin')))
      throw notFound(`agent request ${id}`);
    return toView(row, clock.nowIso());
  }

  /**
   * The person's answer. Only the person the agent acts for decides (not an admin, not the agent: its
   * token does not reach this API), and only once.
   */
  async function decide(
    principal: Principal,
    id: string,
    answer: { approve: boolean; note?: string },
    ctx: AuditContext,
  ): Promise<CheckpointView> {
    if (principal.agent) throw new AppError('forbidden', 'an agent cannot answer its own requests');
    const now = clock.nowIso();
    await db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('agent_checkpoints')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row || row.user_id !== principal.userId) throw notFound(`agent request ${id} of yours`);
      if (row.state !== 'pending')
        throw new AppError(
          'conflict',
          `agent request ${id} was already ${row.state} by ${row.decided_by ?? 'the platform'}`,
        );
      if (row.expires_at <= now)
        throw new AppError(
          'conflict',
          `agent request ${id} expired at ${row.expires_at}; the agent has to ask again`,
        );
      const state = answer.approve ? 'approved' : 'refused';
      await trx
        .updateTable('agent_checkpoints')
        .set({ state, decided_at: now, decided_by: principal.email, note: answer.note ?? null })
        .where('id', '=', id)
        .where('state', '=', 'pending')
        .execute();
      await audit.record(trx, ctx, {
        action: answer.approve ? 'agent.checkpoint.approved' : 'agent.checkpoint.refused',
        targetType: 'checkpoint',
        target: id,
        reason: answer.note ?? null,
        summary: {
          tool: row.tool,
          app: row.app,
          delegation: row.delegation_id,
          inputDigest: row.input_digest,
        },
      });
    });
    const view = await get(principal, id);
    // What waited for this answer goes on (a merge of the agent's change); its failure is not the answer's.
    for (const listener of decided) await listener(view).catch(() => {});
    return view;
  }

  /** Calls `listener` after each answer a person gives. */
  const onDecided = (listener: (view: CheckpointView) => Promise<void>) => {
    decided.push(listener);
  };

  /** Pending requests past their time: marked expired and audited (a job runs this). */
  async function expire(): Promise<number> {
    const now = clock.nowIso();
    const due = await db
      .selectFrom('agent_checkpoints')
      .select(['id', 'tool', 'app', 'delegation_id'])
      .where('state', '=', 'pending')
      .where('expires_at', '<=', now)
      .limit(500)
      .execute();
    for (const c of due)
      await db.transaction().execute(async (trx) => {
        const done = await trx
          .updateTable('agent_checkpoints')
          .set({ state: 'expired', decided_at: now })
          .where('id', '=', c.id)
          .where('state', '=', 'pending')
          .executeTakeFirst();
        if (Number(done.numUpdatedRows) === 1)
          await audit.record(
            trx,
            { actor: 'platform' },
            {
              action: 'agent.checkpoint.expired',
              targetType: 'checkpoint',
              target: c.id,
              summary: { tool: c.tool, app: c.app, delegation: c.delegation_id },
            },
          );
      });
    return due.length;
  }

  return { settle, ask, list, get, decide, expire, onDecided };
}

export type CheckpointService = ReturnType<typeof createCheckpointService>;
