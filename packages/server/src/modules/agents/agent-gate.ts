import { createHash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { canonicalJson } from '../../canonical-json.ts';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { maskText } from '../egress/dlp.ts';
import type { Principal } from '../identity/principal.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import type { CheckpointService, CheckpointView } from './checkpoint-service.ts';
import type { AgentScope, DelegationLimits } from './delegation-types.ts';

/** An agent's session as the MCP endpoint authenticated it. */
export type AgentSession = {
  principal: Principal;
  scopes: AgentScope[];
  limits: DelegationLimits;
  ctx: AuditContext;
};

/** The session of an agent whose token was accepted, for one request (its audit context names the agent). */
export function sessionOf(
  found: Omit<AgentSession, 'ctx'>,
  request: { id: string; ip: string },
): AgentSession {
  return {
    ...found,
    ctx: {
      actor: found.principal.email,
      requestId: request.id,
      sourceIp: request.ip,
      act: found.principal.agent!,
    },
  };
}

/** What a tool tells the policy about its call, beyond who makes it. */
export type CallFacts = {
  app?: { exists: boolean; tier: string; dataClasses: string[] } | null;
  proposed?: { tier: string; dataClasses: string[] } | null;
  change?: { dataClasses: string[]; egress: string[]; connectors: string[]; secrets: string[] };
  environment?: string;
  request?: string;
};

export type GateOutcome<T> =
  | { kind: 'done'; output: T }
  | { kind: 'refused'; reasons: string[]; checkpoint?: CheckpointView }
  | { kind: 'waiting'; checkpoint: CheckpointView }
  | { kind: 'failed'; message: string };

/** The longest instruction text kept with a call. */
export const instructionLimit = 2000;

const allKinds = new Set(['card_number', 'iban', 'national_id', 'email'] as const);
// Credentials as people paste them: this platform's tokens, cloud keys, bearer values, PEM blocks.
const credentialPatterns = [
  /\bma[atr]_[A-Za-z0-9_-]{20,}/g,
  /\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g,
  /\bxox[abpr]-[A-Za-z0-9-]{10,}/g,
  /\bBearer\s+[A-Za-z0-9._~+/=-]{16,}/gi,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
];

/** An agent's instruction as it is kept: personal data masked, credentials removed, cut to size. */
export function redactInstruction(text: string): string {
  let out = maskText(text.slice(0, instructionLimit * 2), allKinds);
  for (const p of credentialPatterns) out = out.replace(p, '[redacted:credential]');
  return out.length > instructionLimit ? `${out.slice(0, instructionLimit)}…` : out;
}

export const digestOf = (value: unknown) =>
  `sha256:${createHash('sha256')
    .update(canonicalJson(value ?? null))
    .digest('hex')}`;

/**
 * Every agent tool call goes through here: the `microapp.agents` policy decides (refuse, ask the person,
 * or go ahead), a held call waits for the person's answer, and the call is recorded (agent, model,
 * instruction, digests of input and output, outcome, checkpoint) with an audit event naming agent and person.
 */
export function createAgentGate(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  engine: Pick<PolicyEngine, 'decide'>;
  checkpoints: Pick<CheckpointService, 'settle' | 'ask'>;
}) {
  const { db, clock, audit } = deps;

  async function usage(delegationId: string) {
    const since = new Date(Date.parse(clock.nowIso()) - 86_400_000).toISOString();
    const rows = await db
      .selectFrom('agent_calls')
      .select(['tool', (eb) => eb.fn.countAll<number>().as('n')])
      .where('delegation_id', '=', delegationId)
      .where('outcome', '=', 'done')
      .where('at', '>=', since)
      .where('tool', 'in', ['register_app', 'build_app', 'push_change'])
      .groupBy('tool')
      .execute();
    const n = (tool: string) => Number(rows.find((r) => r.tool === tool)?.n ?? 0);
    // A push to a repository starts a check build: it spends the same budget as a build.
    return { registrations: n('register_app'), builds: n('build_app') + n('push_change') };
  }

  async function decide(session: AgentSession, tool: string, facts: CallFacts) {
    const agent = session.principal.agent!;
    const input = {
      tool,
      agent: { client: agent.client, version: agent.version, model: agent.model },
      delegation: { scopes: session.scopes, limits: session.limits, usage: await usage(agent.delegationId) },
      ...facts,
    };
    const setOf = async (rule: string) => {
      const d = await deps.engine.decide<unknown>(`data.microapp.agents.${rule}`, input);
      return Array.isArray(d.result) ? d.result.map(String).sort() : [];
    };
    return { refuse: await setOf('refuse'), ask: await setOf('ask') };
  }

  /**
   * Records a call: its row (inserted, or the running row `start` left, finished) and its audit event,
   * in one transaction (the caller's when given).
   */
  async function record(
    session: AgentSession,
    call: {
      tool: string;
      app: string | null;
      inputDigest: string;
      instruction: string | null;
      outcome: 'done' | 'refused' | 'waiting' | 'failed';
      reason: string | null;
      checkpoint: string | null;
      output: unknown;
    },
    trx?: Transaction<Database>,
    started?: string,
  ) {
    const write = async (q: Transaction<Database>) => {
      const id = started ?? newId('agentCall');
      const outputDigest = digestOf(call.output);
      if (started)
        await q
          .updateTable('agent_calls')
          .set({ outcome: call.outcome, reason: call.reason, output_digest: outputDigest })
          .where('id', '=', started)
          .execute();
      else
        await q
          .insertInto('agent_calls')
          .values({
            id,
            delegation_id: session.principal.agent!.delegationId,
            at: clock.nowIso(),
            tool: call.tool,
            app: call.app,
            outcome: call.outcome,
            reason: call.reason,
            checkpoint_id: call.checkpoint,
            prompt: call.instruction,
            input_digest: call.inputDigest,
            output_digest: outputDigest,
          })
          .execute();
      await audit.record(q, session.ctx, {
        action: 'agent.called',
        targetType: call.app ? 'app' : 'delegation',
        target: call.app ?? session.principal.agent!.delegationId,
        reason: call.reason,
        summary: {
          call: id,
          tool: call.tool,
          outcome: call.outcome,
          checkpoint: call.checkpoint,
          inputDigest: call.inputDigest,
          outputDigest,
          instructionDigest: call.instruction === null ? null : digestOf(call.instruction),
        },
      });
    };
    if (trx) await write(trx);
    else await db.transaction().execute((t) => write(t));
  }

  /**
   * A call about to run, written before it runs: a version published while it runs (a build) names it in
   * its agent session record. `record` finishes it.
   */
  async function start(
    session: AgentSession,
    call: {
      tool: string;
      app: string | null;
      inputDigest: string;
      instruction: string | null;
      checkpoint: string | null;
    },
  ): Promise<string> {
    const id = newId('agentCall');
    await db
      .insertInto('agent_calls')
      .values({
        id,
        delegation_id: session.principal.agent!.delegationId,
        at: clock.nowIso(),
        tool: call.tool,
        app: call.app,
        outcome: 'running',
        reason: null,
        checkpoint_id: call.checkpoint,
        prompt: call.instruction,
        input_digest: call.inputDigest,
        output_digest: digestOf(null),
      })
      .execute();
    return id;
  }

  /**
   * Runs one tool call under the policy. `input` is what the agent sent without its instruction; the same
   * input asked about before reuses the person's answer (an approval is good for one call).
   */
  async function run<T>(
    session: AgentSession,
    call: {
      tool: string;
      app: string | null;
      input: Record<string, unknown>;
      instruction?: string;
      facts: CallFacts;
    },
    act: () => Promise<T>,
  ): Promise<GateOutcome<T>> {
    const inputDigest = digestOf({ tool: call.tool, input: call.input });
    const instruction = call.instruction ? redactInstruction(call.instruction) : null;
    const base = { tool: call.tool, app: call.app, inputDigest, instruction };
    const verdict = await decide(session, call.tool, call.facts);
    if (verdict.refuse.length) {
      await record(session, {
        ...base,
        outcome: 'refused',
        reason: verdict.refuse.join('; '),
        checkpoint: null,
        output: verdict.refuse,
      });
      return { kind: 'refused', reasons: verdict.refuse };
    }
    let approvedBy: string | null = null;
    if (verdict.ask.length) {
      const held = await db.transaction().execute(async (trx) => {
        const earlier = await deps.checkpoints.settle(
          trx,
          session.principal.agent!.delegationId,
          inputDigest,
        );
        if (earlier?.state === 'approved') return { kind: 'approved' as const, checkpoint: earlier };
        if (earlier?.state === 'refused') {
          const reasons = [
            `${earlier.decidedBy ?? 'the person'} refused this${earlier.note ? `: ${earlier.note}` : ''}`,
          ];
          await record(
            session,
            { ...base, outcome: 'refused', reason: reasons[0]!, checkpoint: earlier.id, output: reasons },
            trx,
          );
          return { kind: 'refused' as const, reasons, checkpoint: earlier };
        }
        const checkpoint =
          earlier ??
          (await deps.checkpoints.ask(
            trx,
            session.principal,
            { tool: call.tool, app: call.app, input: call.input, digest: inputDigest, reasons: verdict.ask },
            session.ctx,
          ));
        await record(
          session,
          {
            ...base,
            outcome: 'waiting',
            reason: verdict.ask.join('; '),
            checkpoint: checkpoint.id,
            output: checkpoint.id,
          },
          trx,
        );
        return { kind: 'waiting' as const, checkpoint };
      });
      if (held.kind !== 'approved') return held;
      approvedBy = held.checkpoint.id;
    }
    const started = await start(session, { ...base, checkpoint: approvedBy });
    try {
      const output = await act();
      await record(
        session,
        { ...base, outcome: 'done', reason: null, checkpoint: approvedBy, output },
        undefined,
        started,
      );
      return { kind: 'done', output };
    } catch (error) {
      const message =
        error instanceof AppError ? error.message : 'the platform failed this call; it is logged';
      await record(
        session,
        { ...base, outcome: 'failed', reason: message, checkpoint: approvedBy, output: message },
        undefined,
        started,
      );
      if (!(error instanceof AppError)) throw error;
      return { kind: 'failed', message };
    }
  }

  return { run, decide, record };
}

export type AgentGate = ReturnType<typeof createAgentGate>;
