import type { Command } from 'commander';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, progress } from '../output.ts';

export function registerDeployCommands(program: Command) {
  examples(
    program
      .command('deploy <app>')
      .description(
        'run a signed, published version in a sandbox behind the gateway: APP (the latest) or APP@VERSION',
      )
      .action(
        action(async (ref: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const [name, wanted] = ref.split('@') as [string, string | undefined];
          let version = wanted;
          if (!version) {
            const { items } = await ctx.client.get<{ items: { version: string }[] }>(
              `/api/v1/apps/${encodeURIComponent(name)}/versions`,
            );
            if (items.length === 0)
              throw new CliError(`${name} has no published version; run \`microapp ci\` first`);
            version = items[0]!.version;
          }
          progress(`verifying and starting ${name}@${version}`);
          const d = await ctx.client.post<{ id: string; version: string; digest: string }>(
            `/api/v1/apps/${encodeURIComponent(name)}/deployments`,
            { version },
          );
          const port = new URL(ctx.server).port;
          emit(
            ctx.json,
            d,
            () =>
              `${name}@${d.version} is running (${d.digest}).\nOpen http://${name}.apps.localhost${port ? `:${port}` : ''}/ (sign in required).`,
          );
        }),
      ),
    ['microapp deploy recon', 'microapp deploy recon@1.0.0'],
  );
  examples(
    program
      .command('rollback <app>')
      .description('run the version that ran before the current one')
      .action(
        action(async (name: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const d = await ctx.client.post<{ version: string }>(
            `/api/v1/apps/${encodeURIComponent(name)}/rollback`,
            {},
          );
          emit(ctx.json, d, () => `${name} is back on ${d.version}.`);
        }),
      ),
    ['microapp rollback recon'],
  );
  examples(
    program
      .command('stop <app>')
      .description('stop the running instance')
      .action(
        action(async (name: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const r = await ctx.client.request<{ state: string }>(
            'DELETE',
            `/api/v1/apps/${encodeURIComponent(name)}/deployments/current`,
          );
          emit(ctx.json, r, () => `${name} stopped.`);
        }),
      ),
    ['microapp stop recon'],
  );
}
