import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError, notFound } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { type DelegationView, delegationView } from './delegation-types.ts';

/** A person's delegations to agents: listed, and revoked at once (every token of it stops working). */
export function createDelegationService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
}) {
  const { db, clock, audit } = deps;

  async function counts(ids: string[]) {
    if (ids.length === 0) return new Map<string, { calls: number; pending: number }>();
    const calls = await db
      .selectFrom('agent_calls')
      .select(['delegation_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('delegation_id', 'in', ids)
      .groupBy('delegation_id')
      .execute();
    const pending = await db
      .selectFrom('agent_checkpoints')
      .select(['delegation_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('delegation_id', 'in', ids)
      .where('state', '=', 'pending')
      .groupBy('delegation_id')
      .execute();
    const out = new Map(ids.map((id) => [id, { calls: 0, pending: 0 }]));
    for (const r of calls) out.get(r.delegation_id)!.calls = Number(r.n);
    for (const r of pending) out.get(r.delegation_id)!.pending = Number(r.n);
    return out;
  }

  /** The caller's delegations, newest first; an admin may ask for everyone's. */
  async function list(principal: Principal, all = false): Promise<DelegationView[]> {
    if (all && !hasRole(principal, 'admin'))
      throw new AppError('forbidden', "only admins can list everyone's agents");
    let q = db
      .selectFrom('agent_delegations')
      .innerJoin('users', 'users.id', 'agent_delegations.user_id')
      .selectAll('agent_delegations')
      .select('users.email')
      .orderBy('agent_delegations.created_at', 'desc')
      .limit(500);
    if (!all) q = q.where('agent_delegations.user_id', '=', principal.userId);
    const rows = await q.execute();
    const n = await counts(rows.map((r) => r.id));
    const now = clock.nowIso();
    return rows.map((r) => delegationView(r, r.email, now, n.get(r.id)!));
  }

  /** Revokes a delegation: its tokens stop at the next call, its pending requests are refused. */
  async function revoke(principal: Principal, id: string, ctx: AuditContext): Promise<DelegationView> {
    const now = clock.nowIso();
    await db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('agent_delegations')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      // Another person's delegation is reported missing, so ids cannot be probed.
      if (!row || (row.user_id !== principal.userId && !hasRole(principal, 'admin')))
        throw notFound(`agent delegation ${id}`);
      if (row.revoked_at)
        throw new AppError('conflict', `delegation ${id} was already revoked at ${row.revoked_at}`);
      await trx
        .updateTable('agent_delegations')
        .set({ revoked_at: now, revoked_by: principal.email })
        .where('id', '=', id)
        .execute();
      await trx
        .updateTable('agent_tokens')
        .set({ revoked_at: now })
        .where('delegation_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      await trx
        .updateTable('agent_checkpoints')
        .set({
          state: 'refused',
          decided_at: now,
          decided_by: principal.email,
          note: 'the delegation was revoked',
        })
        .where('delegation_id', '=', id)
        .where('state', '=', 'pending')
        .execute();
      await audit.record(trx, ctx, {
        action: 'agent.revoked',
        targetType: 'delegation',
        target: id,
        summary: { agent: row.client_name, model: row.model },
      });
    });
    const [view] = (await list(principal, hasRole(principal, 'admin'))).filter((d) => d.id === id);
    return view!;
  }

  /** Every tool call made under a delegation, oldest first: the person's own, or anyone's for auditors and admins. */
  async function calls(principal: Principal, id: string) {
    const d = await db
      .selectFrom('agent_delegations')
      .select(['user_id'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (!d || (d.user_id !== principal.userId && !hasRole(principal, 'auditor', 'admin')))
      throw notFound(`agent delegation ${id}`);
    const rows = await db
      .selectFrom('agent_calls')
      .selectAll()
      .where('delegation_id', '=', id)
      .orderBy('at', 'asc')
      .orderBy('id', 'asc')
      .limit(5000)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      tool: r.tool,
      app: r.app,
      outcome: r.outcome,
      reason: r.reason,
      checkpoint: r.checkpoint_id,
      instruction: r.prompt,
      inputDigest: r.input_digest,
      outputDigest: r.output_digest,
    }));
  }

  return { list, revoke, calls };
}

export type DelegationService = ReturnType<typeof createDelegationService>;
