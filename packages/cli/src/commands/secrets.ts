import type { Command } from 'commander';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';

/** Reads the value from stdin, so it never lands in shell history or the process list. */
export async function readValue(
  example = 'printf %s "$TOKEN" | microapp secrets set NAME --app APP',
): Promise<string> {
  if (process.stdin.isTTY)
    process.stderr.write('Value (input hidden is not available here; paste and press Ctrl-D): ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const value = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (!value) throw new CliError(`no value on standard input; e.g. \`${example}\``, { exitCode: 2 });
  return value;
}

export function registerSecretCommands(program: Command) {
  const secrets = program
    .command('secrets')
    .description("app secrets: encrypted at rest, never shown again, injected into the app's sandbox");

  examples(
    secrets
      .command('set <name>')
      .description('set a secret the app declares; the value is read from standard input')
      .requiredOption('--app <app>', 'the app')
      .action(
        action(async (name: string, flags: { app: string }, command: Command) => {
          const ctx = ctxOf(command);
          const value = await readValue();
          const res = await ctx.client.request<{ version: number }>(
            'PUT',
            `/api/v1/apps/${encodeURIComponent(flags.app)}/secrets/${encodeURIComponent(name)}`,
            { value },
          );
          emit(
            ctx.json,
            { app: flags.app, name, version: res.version },
            () => `Set ${name} for ${flags.app} (version ${res.version}). The value will not be shown again.`,
          );
        }),
      ),
    ['printf %s "$LEDGER_TOKEN" | microapp secrets set LEDGER_READ_TOKEN --app recon'],
  );

  examples(
    secrets
      .command('list')
      .description('the secrets an app declares and whether each is set (never the values)')
      .requiredOption('--app <app>', 'the app')
      .action(
        action(async (flags: { app: string }, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{
            items: {
              name: string;
              set: boolean;
              version: number | null;
              updatedBy: string | null;
              updatedAt: string | null;
            }[];
          }>(`/api/v1/apps/${encodeURIComponent(flags.app)}/secrets`);
          emit(ctx.json, items, () =>
            table(
              ['NAME', 'SET', 'VERSION', 'BY', 'WHEN'],
              items.map((s) => [
                s.name,
                s.set ? 'yes' : 'no',
                String(s.version ?? '-'),
                s.updatedBy ?? '-',
                s.updatedAt?.slice(0, 16) ?? '-',
              ]),
            ),
          );
        }),
      ),
    ['microapp secrets list --app recon'],
  );

  examples(
    secrets
      .command('delete <name>')
      .description("delete a secret's value")
      .requiredOption('--app <app>', 'the app')
      .action(
        action(async (name: string, flags: { app: string }, command: Command) => {
          const ctx = ctxOf(command);
          await ctx.client.delete(
            `/api/v1/apps/${encodeURIComponent(flags.app)}/secrets/${encodeURIComponent(name)}`,
          );
          emit(ctx.json, { app: flags.app, name, deleted: true }, () => `Deleted ${name} of ${flags.app}.`);
        }),
      ),
    ['microapp secrets delete LEDGER_READ_TOKEN --app recon'],
  );
}
