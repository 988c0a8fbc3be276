import { hostname } from 'node:os';
import type { Command } from 'commander';
import { CliError, createClient } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { forgetCredential, loadCredential, saveCredential } from '../credentials.ts';
import { browserLogin, devUserLogin, newCliLogin } from '../login-flow.ts';
import { emit } from '../output.ts';

type Session = {
  user: { email: string; name: string; department: string | null; roles: string[]; specialties: string[] };
  via: string;
  scopes: string[];
};

export function registerAuthCommands(program: Command) {
  const login = program
    .command('login')
    .description('sign in through your identity provider and keep an API token for this server')
    .option('--token <token>', 'use an existing API token (e.g. in CI) instead of signing in')
    .option('--dev-user <email>', 'sign in as a seeded user of a --dev server, without a browser')
    .option('--no-browser', 'print the sign-in URL instead of opening a browser')
    .action(
      action(async (flags: { token?: string; devUser?: string; browser: boolean }, command: Command) => {
        const ctx = ctxOf(command);
        let token = flags.token;
        let expiresAt: string | null = null;
        if (!token) {
          const pkce = newCliLogin();
          let code: string;
          if (flags.devUser) {
            const meta = await ctx.client.get<{ dev: boolean }>('/api/v1/meta', { auth: false });
            if (!meta.dev)
              throw new CliError('--dev-user works only against a server started with --dev', {
                exitCode: 2,
              });
            code = await devUserLogin(ctx.server, flags.devUser.toLowerCase(), pkce);
          } else {
            code = await browserLogin(
              ctx.server,
              {
                open: flags.browser,
                announce: (url) => process.stderr.write(`Sign in in your browser:\n  ${url}\n`),
              },
              pkce,
            );
          }
          const issued = await ctx.client.post<{ token: string; token_info: { expiresAt: string } }>(
            '/api/v1/auth/cli/token',
            { code, codeVerifier: pkce.verifier, name: `microapp CLI on ${hostname()}` },
            { auth: false },
          );
          token = issued.token;
          expiresAt = issued.token_info.expiresAt;
        }
        const session = await createClient({ server: ctx.server, token }).get<Session>(
          '/api/v1/auth/session',
        );
        saveCredential(ctx.server, { token, email: session.user.email, expiresAt });
        emit(
          ctx.json,
          { server: ctx.server, user: session.user },
          () =>
            `Signed in to ${ctx.server} as ${session.user.email} (${session.user.roles.join(', ') || 'no roles'})`,
        );
      }),
    );
  examples(login, [
    'microapp login',
    'microapp login --dev-user alice@example.com',
    'microapp login --token "$MICROAPP_TOKEN" --server https://microapp.example.com',
  ]);

  examples(
    program
      .command('logout')
      .description("forget this server's token on this machine (revoke it with `microapp tokens revoke`)")
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const removed = forgetCredential(ctx.server);
          emit(ctx.json, { server: ctx.server, removed }, () =>
            removed ? `Signed out of ${ctx.server}` : `Not signed in to ${ctx.server}`,
          );
        }),
      ),
    ['microapp logout'],
  );

  examples(
    program
      .command('whoami')
      .description('show who you are signed in as, with roles and department')
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const s = await ctx.client.get<Session>('/api/v1/auth/session');
          const cred = loadCredential(ctx.server);
          emit(ctx.json, { server: ctx.server, ...s }, () =>
            [
              `${s.user.name} <${s.user.email}>`,
              `department:  ${s.user.department ?? '-'}`,
              `roles:       ${s.user.roles.join(', ') || '-'}`,
              `specialties: ${s.user.specialties.join(', ') || '-'}`,
              `server:      ${ctx.server}`,
              ...(cred?.expiresAt ? [`token until: ${cred.expiresAt}`] : []),
            ].join('\n'),
          );
        }),
      ),
    ['microapp whoami --json'],
  );
}
