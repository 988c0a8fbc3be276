import type { Command } from 'commander';
import { query } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';

type TokenInfo = {
  id: string;
  name: string;
  owner: string;
  scopes: string[];
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
};

export function registerTokenCommands(program: Command) {
  const tokens = program.command('tokens').description('API tokens for CI and scripts');

  examples(
    tokens
      .command('create')
      .description('create an API token; its value is printed once and never again')
      .requiredOption('--name <name>', 'what the token is for, e.g. "github-actions finance"')
      .option(
        '--scope <scope...>',
        'limit it: apps:read apps:write apps:use approvals:write audit:read tokens:write policies:write (apps:use: open apps through the gateway)',
      )
      .option('--expires-in-days <days>', 'lifetime in days (1-365, default 30)', (v) => Number(v))
      .action(
        action(
          async (flags: { name: string; scope?: string[]; expiresInDays?: number }, command: Command) => {
            const ctx = ctxOf(command);
            const created = await ctx.client.post<TokenInfo & { token: string }>('/api/v1/tokens', {
              name: flags.name,
              ...(flags.scope ? { scopes: flags.scope } : {}),
              ...(flags.expiresInDays !== undefined ? { expiresInDays: flags.expiresInDays } : {}),
            });
            emit(
              ctx.json,
              created,
              () =>
                `${created.token}\n\nToken ${created.id} (${created.scopes.join(' ')}) expires ${created.expiresAt}.\nStore it now: it will not be shown again.`,
            );
          },
        ),
      ),
    ['microapp tokens create --name ci-finance --scope apps:read apps:write --expires-in-days 90'],
  );

  examples(
    tokens
      .command('list')
      .description('list your tokens (never their values)')
      .option('--all', "every user's tokens (admins)")
      .action(
        action(async (flags: { all?: boolean }, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{ items: TokenInfo[] }>(
            `/api/v1/tokens${query({ all: flags.all })}`,
          );
          emit(ctx.json, items, () =>
            table(
              ['ID', 'NAME', 'OWNER', 'SCOPES', 'EXPIRES', 'STATUS'],
              items.map((t) => [
                t.id,
                t.name,
                t.owner,
                t.scopes.join(' '),
                t.expiresAt.slice(0, 10),
                t.revokedAt ? 'revoked' : 'active',
              ]),
            ),
          );
        }),
      ),
    ['microapp tokens list --json'],
  );

  examples(
    tokens
      .command('revoke <id>')
      .description('revoke a token at once')
      .action(
        action(async (id: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const t = await ctx.client.delete<TokenInfo>(`/api/v1/tokens/${encodeURIComponent(id)}`);
          emit(ctx.json, t, () => `Revoked ${t.id} (${t.name})`);
        }),
      ),
    ['microapp tokens revoke tok_0123456789abcdefghij'],
  );
}
