import type { Command } from 'commander';
import { query } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';

type Delegation = {
  id: string;
  person: string;
  agent: { client: string; version: string | null; model: string | null };
  scopes: string[];
  limits: { registrationsPerDay: number; buildsPerDay: number; tiers: string[]; liveTiers: string[] };
  expiresAt: string;
  state: 'active' | 'expired' | 'revoked';
  calls: number;
  pending: number;
};

type Request = {
  id: string;
  agent: string;
  model: string | null;
  person: string;
  tool: string;
  app: string | null;
  input: Record<string, unknown>;
  reasons: string[];
  state: string;
  createdAt: string;
  expiresAt: string;
  decidedBy: string | null;
  note: string | null;
};

const describeRequest = (r: Request) =>
  [
    `${r.id}  ${r.agent}${r.model ? ` (${r.model})` : ''} asks to ${r.tool.replace(/_/g, ' ')}${r.app ? ` ${r.app}` : ''}`,
    `  state: ${r.state}${r.decidedBy ? ` by ${r.decidedBy}` : ''}${r.note ? ` (${r.note})` : ''}; asked ${r.createdAt}`,
    ...r.reasons.map((x) => `  - it ${x}`),
    ...(r.tool === 'merge_change' && r.app
      ? [
          `  change #${String(r.input.change)} "${String(r.input.title ?? '')}", commit ${String(r.input.head ?? '').slice(0, 12)} on ${String(r.input.branch ?? '')}; read it first: microapp changes show ${r.app} ${String(r.input.change)}`,
        ]
      : []),
  ].join('\n');

/** The AI agents acting for you: list and revoke them, and answer what they ask before they go on. */
export function registerAgentCommands(program: Command) {
  const agents = program
    .command('agents')
    .description(
      'AI agents acting for you through the MCP endpoint: list, revoke, and answer their requests',
    );

  examples(
    agents
      .command('list')
      .description('the agents you allowed, with their model, limits, calls and requests waiting for you')
      .option('--all', "everyone's agents (admins)")
      .action(
        action(async (flags: { all?: boolean }, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{ items: Delegation[] }>(
            `/api/v1/agents${query({ all: flags.all })}`,
          );
          emit(ctx.json, items, () =>
            items.length === 0
              ? 'No agent acts for you. Connect one to <server>/mcp (see docs/agents.md).'
              : table(
                  ['ID', 'AGENT', 'MODEL', 'FOR', 'UNTIL', 'CALLS', 'WAITING', 'STATE'],
                  items.map((d) => [
                    d.id,
                    `${d.agent.client}${d.agent.version ? ` ${d.agent.version}` : ''}`,
                    d.agent.model ?? 'not declared',
                    d.person,
                    d.expiresAt.slice(0, 10),
                    String(d.calls),
                    String(d.pending),
                    d.state,
                  ]),
                ),
          );
        }),
      ),
    ['microapp agents list', 'microapp agents list --json'],
  );

  examples(
    agents
      .command('revoke <id>')
      .description("revoke an agent's delegation: its next call is refused, its waiting requests are refused")
      .action(
        action(async (id: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const d = await ctx.client.delete<Delegation>(`/api/v1/agents/${encodeURIComponent(id)}`);
          emit(
            ctx.json,
            d,
            () => `Revoked ${d.agent.client} (${d.id}): it can no longer act for ${d.person}.`,
          );
        }),
      ),
    ['microapp agents revoke dlg_0123456789abcdefghij'],
  );

  examples(
    agents
      .command('requests')
      .description(
        'what your agents wait on, with exactly what will happen (pending only unless --all-states)',
      )
      .option('--all-states', 'also the requests already answered or expired')
      .action(
        action(async (flags: { allStates?: boolean }, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{ items: Request[] }>(
            `/api/v1/agents/requests${query({ state: flags.allStates ? undefined : 'pending' })}`,
          );
          emit(ctx.json, items, () =>
            items.length === 0
              ? 'No agent is waiting for you.'
              : `${items.map(describeRequest).join('\n\n')}\n\nAnswer with \`microapp agents approve ID\` or \`microapp agents refuse ID --note "why"\`.`,
          );
        }),
      ),
    ['microapp agents requests', 'microapp agents requests --all-states --json'],
  );

  for (const verb of ['approve', 'refuse'] as const)
    examples(
      agents
        .command(`${verb} <id>`)
        .description(
          verb === 'approve'
            ? 'approve what your agent asked: its next identical call goes ahead, once'
            : 'refuse what your agent asked: it is told so, with your note',
        )
        .option('--note <text>', 'a note for the record (and for the agent)')
        .action(
          action(async (id: string, flags: { note?: string }, command: Command) => {
            const ctx = ctxOf(command);
            const r = await ctx.client.post<Request>(
              `/api/v1/agents/requests/${encodeURIComponent(id)}/${verb}`,
              flags.note ? { note: flags.note } : {},
            );
            emit(ctx.json, r, () =>
              verb === 'approve'
                ? `Approved ${r.id}: ${r.agent} goes on at its next call.`
                : `Refused ${r.id}: ${r.agent} is told so.`,
            );
          }),
        ),
      [
        `microapp agents ${verb} chk_0123456789abcdefghij${verb === 'refuse' ? ' --note "not with customer data"' : ''}`,
      ],
    );
}
