import type { Command } from 'commander';
import type { ConnectorView } from '../../../server/src/modules/connectors/connector-service.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';
import { readValue } from './secrets.ts';

const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

export function registerConnectorCommands(program: Command) {
  const connectors = program
    .command('connectors')
    .description('company systems apps reach through the egress broker, which adds the credential');

  examples(
    connectors
      .command('set <id>')
      .description(
        'define or change a connector (admins): an HTTP service (--methods, --paths) or a PostgreSQL database (--privileges, --tables), where each app instance gets a short-lived role of its own; with --credential-stdin the credential (token or password) is read from standard input',
      )
      .requiredOption(
        '--base-url <url>',
        'where the system is: https://ledger.corp.example.com/api, or postgres://USER@HOST:5432/DATABASE (USER creates the roles)',
      )
      .option('--methods <list>', 'HTTP: allowed methods, comma-separated')
      .option('--paths <list>', 'HTTP: allowed path prefixes, comma-separated, e.g. /entries,/accounts')
      .option('--privileges <list>', 'PostgreSQL: SELECT, INSERT, UPDATE, DELETE, comma-separated')
      .option('--tables <list>', 'PostgreSQL: the tables, as schema.table, comma-separated')
      .option('--lease-minutes <n>', 'PostgreSQL: how long a role lives unless renewed (default 15)')
      .option(
        '--vault-role <role>',
        'PostgreSQL with HashiCorp Vault: the database secrets engine role that issues each instance’s credentials (the URL then names no user)',
      )
      .option('--vault-mount <mount>', 'the database secrets engine’s mount (default database)')
      .requiredOption('--data-classes <list>', 'data classes the system may receive, e.g. internal,financial')
      .option('--auth-header <name>', 'the header the credential goes in (authorization sends "Bearer …")')
      .option(
        '--credential-stdin',
        'read a new credential from standard input (otherwise the current one is kept)',
      )
      .action(
        action(
          async (
            id: string,
            flags: {
              baseUrl: string;
              methods?: string;
              paths?: string;
              privileges?: string;
              tables?: string;
              leaseMinutes?: string;
              vaultRole?: string;
              vaultMount?: string;
              dataClasses: string;
              authHeader?: string;
              credentialStdin?: boolean;
            },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const credential = flags.credentialStdin
              ? await readValue(
                  'printf %s "$LEDGER_TOKEN" | microapp connectors set ledger … --credential-stdin',
                )
              : undefined;
            const c = await ctx.client.request<ConnectorView>(
              'PUT',
              `/api/v1/connectors/${encodeURIComponent(id)}`,
              {
                baseUrl: flags.baseUrl,
                ...(flags.methods ? { methods: list(flags.methods).map((m) => m.toUpperCase()) } : {}),
                ...(flags.paths ? { paths: list(flags.paths) } : {}),
                ...(flags.privileges
                  ? { privileges: list(flags.privileges).map((p) => p.toUpperCase()) }
                  : {}),
                ...(flags.tables ? { tables: list(flags.tables) } : {}),
                ...(flags.leaseMinutes ? { leaseMinutes: Number(flags.leaseMinutes) } : {}),
                ...(flags.vaultRole ? { vaultRole: flags.vaultRole } : {}),
                ...(flags.vaultMount ? { vaultMount: flags.vaultMount } : {}),
                dataClasses: list(flags.dataClasses),
                ...(flags.authHeader ? { authHeader: flags.authHeader } : {}),
                ...(credential !== undefined ? { credential } : {}),
              },
            );
            emit(
              ctx.json,
              c,
              () =>
                (c.grants?.vault
                  ? `Connector ${c.id}: ${c.grants.privileges.join(', ')} on ${c.grants.tables.join(', ')} at ${c.baseUrl}; each app instance gets its own credentials from Vault (${c.grants.vault.mount}/creds/${c.grants.vault.role}), checked against these grants and renewed while it runs; may receive ${c.dataClasses.join(', ')}.`
                  : c.grants
                    ? `Connector ${c.id}: ${c.grants.privileges.join(', ')} on ${c.grants.tables.join(', ')} at ${c.baseUrl}; each app instance gets its own role for ${c.grants.leaseMinutes} minutes at a time, renewed while it runs; may receive ${c.dataClasses.join(', ')}.`
                    : `Connector ${c.id}: ${c.methods.join(', ')} on ${c.paths.join(', ')} at ${c.baseUrl}; may receive ${c.dataClasses.join(', ')}.`) +
                (c.hasCredential
                  ? '\nThe credential is stored encrypted and will not be shown again.'
                  : c.grants?.vault
                    ? ''
                    : c.grants
                      ? '\nNo password is set: the platform connects as that user without one.'
                      : '\nNo credential is set: calls go out without one.') +
                (c.grants
                  ? `\nApps use it by listing it in integrations.connectors and reading the connection URL in /run/secrets/connector.${c.id}.`
                  : `\nApps use it by listing it in integrations.connectors and calling http://connector.${c.id}/…`),
            );
          },
        ),
      ),
    [
      'printf %s "$LEDGER_TOKEN" | microapp connectors set ledger --base-url https://ledger.corp.example.com/api --methods GET,POST --paths /entries --data-classes internal,financial --credential-stdin',
      'printf %s "$ORDERS_DB_PASSWORD" | microapp connectors set orders-db --base-url postgres://microapp_roles@db.corp.example.com:5432/orders --privileges SELECT --tables public.orders --data-classes internal,financial --credential-stdin',
      'microapp connectors set orders-db --base-url postgres://db.corp.example.com:5432/orders --privileges SELECT --tables public.orders --vault-role orders-read --data-classes internal,financial',
    ],
  );

  examples(
    connectors
      .command('list')
      .description('the connectors apps may ask for (never their credentials)')
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{ items: ConnectorView[] }>('/api/v1/connectors');
          emit(ctx.json, items, () =>
            table(
              ['ID', 'BASE URL', 'ALLOWS', 'ON', 'MAY RECEIVE', 'CREDENTIAL'],
              items.map((c) => [
                c.id,
                c.baseUrl,
                (c.grants?.privileges ?? c.methods).join(','),
                (c.grants?.tables ?? c.paths).join(','),
                c.dataClasses.join(','),
                c.hasCredential ? 'set' : 'none',
              ]),
            ),
          );
        }),
      ),
    ['microapp connectors list', 'microapp connectors list --json'],
  );

  examples(
    connectors
      .command('remove <id>')
      .description('remove a connector (admins); apps that use it are refused from then on')
      .action(
        action(async (id: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          await ctx.client.request('DELETE', `/api/v1/connectors/${encodeURIComponent(id)}`);
          emit(ctx.json, { removed: id }, () => `Removed the connector ${id}.`);
        }),
      ),
    ['microapp connectors remove ledger'],
  );
}
