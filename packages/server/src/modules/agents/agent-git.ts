import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { ChangeRequestsTable } from '../../db/schema-repos.ts';
import type { AppView } from '../catalog/app-view.ts';
import type { MergeConfirmation } from '../repos/change-view.ts';
import { type AgentGate, type AgentSession, digestOf, sessionOf } from './agent-gate.ts';
import type { AgentTokens } from './agent-tokens.ts';
import type { CheckpointService } from './checkpoint-service.ts';

/** What git's HTTP side and the change flow ask of agents (the repos module never imports agent code). */
export type AgentGit = ReturnType<typeof createAgentGit>;

/** The reason every merge of an agent's push gives the person, before any the policy adds. */
const mergeReason =
  'merges what the agent pushed into main, after which the platform builds, signs and deploys it';

/** What the person confirms: the change and the exact commit the agent pushed. */
const mergeInput = (
  cr: Pick<ChangeRequestsTable, 'app_name' | 'number' | 'branch' | 'head_commit' | 'title'>,
) => ({
  app: cr.app_name,
  change: Number(cr.number),
  branch: cr.branch,
  head: cr.head_commit,
  title: cr.title,
});

/**
 * Agents at the platform's git server. An agent's token clones what its person may read and pushes to a
 * branch of an app its person owns, as its delegation and the `microapp.agents` policy allow (tools
 * `read_repository` and `push_change`; a push spends the day's build budget, since it starts a check). A
 * change whose head an agent pushed merges only when its person confirms that exact commit (a checkpoint,
 * tool `merge_change`), on top of the tier's reviews: an agent's code never reaches main on its own.
 */
export function createAgentGit(deps: {
  db: Kysely<Database>;
  clock: Clock;
  tokens: Pick<AgentTokens, 'authenticate'>;
  gate: Pick<AgentGate, 'decide' | 'record'>;
  checkpoints: Pick<CheckpointService, 'ask'>;
  pageUrl: (id: string) => string;
}) {
  const { db, gate } = deps;
  const facts = (app: AppView) => ({
    app: { exists: true, tier: app.tier, dataClasses: app.manifest.dataClasses },
  });

  /** The agent an access token stands for, with the request's audit context; or why it is refused. */
  async function authenticate(
    token: string,
    request: { id: string; ip: string },
  ): Promise<AgentSession | { refused: string }> {
    const found = await deps.tokens.authenticate(token);
    return 'refused' in found ? found : sessionOf(found, request);
  }

  /**
   * Why the policy refuses the agent reading (cloning, fetching) or pushing to the app's repository; empty
   * when it may. A refusal is recorded as the agent's call, like any refused tool call.
   */
  async function refusals(session: AgentSession, app: AppView, action: 'read' | 'push'): Promise<string[]> {
    const tool = action === 'read' ? 'read_repository' : 'push_change';
    const verdict = await gate.decide(session, tool, facts(app));
    if (verdict.refuse.length)
      await gate.record(session, {
        tool,
        app: app.name,
        inputDigest: digestOf({ tool, input: { app: app.name } }),
        instruction: null,
        outcome: 'refused',
        reason: verdict.refuse.join('; '),
        checkpoint: null,
        output: verdict.refuse,
      });
    return verdict.refuse;
  }

  /** A push the agent made, recorded as its call (it counts against the day's builds). */
  async function pushed(
    session: AgentSession,
    app: AppView,
    updates: { ref: string; after: string | null }[],
  ): Promise<void> {
    const input = { app: app.name, updates: updates.map((u) => ({ ref: u.ref, after: u.after })) };
    await gate.record(session, {
      tool: 'push_change',
      app: app.name,
      inputDigest: digestOf({ tool: 'push_change', input }),
      instruction: null,
      outcome: 'done',
      reason: null,
      checkpoint: null,
      output: null,
    });
  }

  /** Asks the person to confirm merging the change's head, which their agent pushed. */
  async function askMerge(session: AgentSession, app: AppView, cr: ChangeRequestsTable) {
    const input = mergeInput(cr);
    const digest = digestOf({ tool: 'merge_change', input });
    const verdict = await gate.decide(session, 'merge_change', facts(app));
    const reasons = [mergeReason, ...verdict.ask.filter((r) => r !== mergeReason)];
    await db.transaction().execute(async (trx) => {
      const checkpoint = await deps.checkpoints.ask(
        trx,
        session.principal,
        { tool: 'merge_change', app: app.name, input, digest, reasons },
        session.ctx,
      );
      await gate.record(
        session,
        {
          tool: 'merge_change',
          app: app.name,
          inputDigest: digest,
          instruction: null,
          outcome: 'waiting',
          reason: reasons.join('; '),
          checkpoint: checkpoint.id,
          output: checkpoint.id,
        },
        trx,
      );
    });
  }

  /** Where the person stands on the change's head; null when a person pushed it. */
  async function confirmation(cr: ChangeRequestsTable): Promise<MergeConfirmation | null> {
    if (!cr.agent_delegation_id) return null;
    const delegation = await db
      .selectFrom('agent_delegations')
      .innerJoin('users', 'users.id', 'agent_delegations.user_id')
      .select(['agent_delegations.client_name', 'agent_delegations.model', 'users.email'])
      .where('agent_delegations.id', '=', cr.agent_delegation_id)
      .executeTakeFirst();
    const row = await db
      .selectFrom('agent_checkpoints')
      .select(['id', 'state', 'expires_at', 'note'])
      .where('delegation_id', '=', cr.agent_delegation_id)
      .where('input_digest', '=', digestOf({ tool: 'merge_change', input: mergeInput(cr) }))
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    const now = deps.clock.nowIso();
    const state: MergeConfirmation['state'] = !row
      ? 'expired'
      : row.state === 'approved' || row.state === 'used'
        ? 'confirmed'
        : row.state === 'refused'
          ? 'refused'
          : row.state === 'pending' && row.expires_at > now
            ? 'waiting'
            : 'expired';
    return {
      person: delegation?.email ?? 'the person who delegated',
      agent: delegation?.client_name ?? 'an agent',
      model: delegation?.model ?? null,
      checkpoint: row?.id ?? null,
      state,
      note: row?.note ?? null,
      url: row ? deps.pageUrl(row.id) : null,
    };
  }

  /** The confirmation is spent by the merge it allowed. */
  async function spend(checkpoint: string, trx: Kysely<Database> = db) {
    await trx
      .updateTable('agent_checkpoints')
      .set({ state: 'used' })
      .where('id', '=', checkpoint)
      .where('state', '=', 'approved')
      .execute();
  }

  return { authenticate, refusals, pushed, askMerge, confirmation, spend };
}
