import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { canonicalJson } from '../../canonical-json.ts';
import type { Database } from '../../db/schema.ts';
import { agentSessionPredicate } from '../signing/attestations.ts';

/** What a version's provenance says of the agent session that built it: the summary and the record's digest. */
export type AgentSessionReference = {
  predicateType: string;
  predicateDigest: string;
  delegation: string;
  agent: string;
  model: string | null;
  person: string;
  calls: number;
  checkpointsApproved: number;
  approvedBy: string[];
};

/**
 * The record of an agent's session, as signed into the attestation of a version it built: the delegation
 * (person, agent, declared model, scopes, limits), every tool call so far with the digests of its input,
 * output and instruction, and every checkpoint with the person's answer.
 */
export function createAgentSessionRecord(db: Kysely<Database>) {
  return async function record(
    delegationId: string,
  ): Promise<{ predicate: Record<string, unknown>; reference: AgentSessionReference } | null> {
    const d = await db
      .selectFrom('agent_delegations')
      .innerJoin('users', 'users.id', 'agent_delegations.user_id')
      .selectAll('agent_delegations')
      .select('users.email')
      .where('agent_delegations.id', '=', delegationId)
      .executeTakeFirst();
    if (!d) return null;
    const calls = await db
      .selectFrom('agent_calls')
      .selectAll()
      .where('delegation_id', '=', delegationId)
      .orderBy('at', 'asc')
      .orderBy('id', 'asc')
      .limit(5000)
      .execute();
    const checkpoints = await db
      .selectFrom('agent_checkpoints')
      .selectAll()
      .where('delegation_id', '=', delegationId)
      .orderBy('created_at', 'asc')
      .execute();
    const digest = (text: string | null) =>
      text === null ? null : `sha256:${createHash('sha256').update(canonicalJson(text)).digest('hex')}`;
    const predicate = {
      delegation: d.id,
      person: d.email,
      agent: { client: d.client_name, version: d.client_version, model: d.model },
      scopes: JSON.parse(d.scopes) as string[],
      limits: JSON.parse(d.limits) as unknown,
      consentedAt: d.created_at,
      expiresAt: d.expires_at,
      calls: calls.map((c) => ({
        id: c.id,
        at: c.at,
        tool: c.tool,
        app: c.app,
        outcome: c.outcome,
        reason: c.reason,
        checkpoint: c.checkpoint_id,
        inputDigest: c.input_digest,
        outputDigest: c.output_digest,
        instructionDigest: digest(c.prompt),
      })),
      checkpoints: checkpoints.map((c) => ({
        id: c.id,
        tool: c.tool,
        app: c.app,
        reasons: JSON.parse(c.reasons) as string[],
        inputDigest: c.input_digest,
        state: c.state,
        decidedBy: c.decided_by,
        decidedAt: c.decided_at,
      })),
    };
    const approved = checkpoints.filter((c) => c.state === 'approved' || c.state === 'used');
    return {
      predicate,
      reference: {
        predicateType: agentSessionPredicate,
        predicateDigest: `sha256:${createHash('sha256').update(canonicalJson(predicate)).digest('hex')}`,
        delegation: d.id,
        agent: d.client_name,
        model: d.model,
        person: d.email,
        calls: calls.length,
        checkpointsApproved: approved.length,
        approvedBy: [
          ...new Set(approved.map((c) => c.decided_by).filter((x): x is string => Boolean(x))),
        ].sort(),
      },
    };
  };
}

export type AgentSessionRecord = ReturnType<typeof createAgentSessionRecord>;
