import type { Command } from 'commander';
import { query } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';
import { type AppView, describeApp } from './apps.ts';

async function decide(command: Command, name: string, decision: string, comment: string | undefined) {
  const ctx = ctxOf(command);
  const app = await ctx.client.post<AppView>(`/api/v1/apps/${encodeURIComponent(name)}/reviews`, {
    decision,
    ...(comment ? { comment } : {}),
  });
  emit(ctx.json, app, () => describeApp(app));
}

export function registerApprovalCommands(program: Command) {
  const approvals = program.command('approvals').description('review apps waiting for approval');

  examples(
    approvals
      .command('list')
      .description('apps waiting for review')
      .option('--mine', 'only those you can review now')
      .action(
        action(async (flags: { mine?: boolean }, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{ items: AppView[] }>(
            `/api/v1/approvals${query({ mine: flags.mine })}`,
          );
          emit(ctx.json, items, () =>
            table(
              ['NAME', 'TIER', 'OWNER', 'WAITING FOR'],
              items.map((a) => [
                a.name,
                a.tier,
                a.owner,
                a.approval.missing.map((s) => `${s.specialty ?? 'any'} review`).join(', '),
              ]),
            ),
          );
        }),
      ),
    ['microapp approvals list --mine'],
  );

  examples(
    approvals
      .command('approve <name>')
      .description("approve the app's current revision")
      .option('--comment <text>')
      .action(
        action(async (name: string, f: { comment?: string }, c: Command) =>
          decide(c, name, 'approve', f.comment),
        ),
      ),
    ['microapp approvals approve bank-reconciliation --comment "egress limited to the bank API"'],
  );
  examples(
    approvals
      .command('reject <name>')
      .description('reject the app; the owner sees your reason')
      .requiredOption('--reason <text>', 'why (required)')
      .action(
        action(async (name: string, f: { reason: string }, c: Command) =>
          decide(c, name, 'reject', f.reason),
        ),
      ),
    ['microapp approvals reject crypto-bot --reason "moves customer funds"'],
  );
  examples(
    approvals
      .command('request-changes <name>')
      .description('send the app back to its owner with what to change')
      .requiredOption('--comment <text>', 'what to change (required)')
      .action(
        action(async (name: string, f: { comment: string }, c: Command) =>
          decide(c, name, 'request_changes', f.comment),
        ),
      ),
    ['microapp approvals request-changes bank-reconciliation --comment "drop the pii data class"'],
  );
}
