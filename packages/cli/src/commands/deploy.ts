import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { type Command, Option } from 'commander';
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
      .addOption(
        new Option('--env <env>', 'preview: the owner and reviewers try it first; live: its audience')
          .choices(['live', 'preview'])
          .default('live'),
      )
      .addOption(
        new Option(
          '--driver <driver>',
          "local: run it here in a sandbox; kubernetes: write its Deployment, Service, NetworkPolicy, claim, service account and disruption budget (and the apps' namespace) into a GitOps directory (--out) for Argo CD or Flux",
        )
          .choices(['local', 'kubernetes'])
          .default('local'),
      )
      .option('--out <dir>', 'kubernetes: the GitOps directory; files go to DIR/apps/APP/ and DIR/namespace/')
      .action(
        action(
          async (
            ref: string,
            flags: { env: 'live' | 'preview'; driver: string; out?: string },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            if (flags.driver === 'kubernetes' && !flags.out)
              throw new CliError(
                '--driver kubernetes needs --out DIR, the GitOps directory Argo CD or Flux watches',
                { exitCode: 2 },
              );
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
            if (flags.driver === 'kubernetes') {
              progress(`verifying ${name}@${version} and rendering it for Kubernetes`);
              const r = await ctx.client.post<{
                version: string;
                digest: string;
                namespace: string;
                files: { path: string; content: string }[];
              }>(`/api/v1/apps/${encodeURIComponent(name)}/kubernetes-manifests`, {
                version,
                env: flags.env,
              });
              const out = resolve(flags.out!);
              for (const f of r.files) {
                const path = resolve(out, f.path);
                // The server names the files; none may land outside the directory the user chose.
                if (!path.startsWith(`${out}${sep}`))
                  throw new CliError(`refusing to write ${f.path} outside ${out}`);
                mkdirSync(dirname(path), { recursive: true });
                writeFileSync(path, f.content);
              }
              emit(
                ctx.json,
                { ...r, written: r.files.map((f) => join(out, f.path)), files: undefined },
                () =>
                  `${name}@${r.version} (${r.digest}) is rendered for the namespace ${r.namespace}:\n${r.files.map((f) => `  ${join(flags.out!, f.path)}`).join('\n')}\nCommit and push them; Argo CD or Flux applies them.`,
              );
              return;
            }
            progress(
              `verifying and starting ${name}@${version}${flags.env === 'preview' ? ' in preview' : ''}`,
            );
            const d = await ctx.client.post<{ id: string; version: string; digest: string; url: string }>(
              `/api/v1/apps/${encodeURIComponent(name)}/deployments`,
              { version, env: flags.env },
            );
            emit(ctx.json, d, () =>
              flags.env === 'preview'
                ? `${name}@${d.version} is running in preview (${d.digest}).\nTry it at ${d.url} (you and reviewers), then: microapp promote ${name} ${d.version}`
                : `${name}@${d.version} is running (${d.digest}).\nOpen ${d.url} (sign in required).`,
            );
          },
        ),
      ),
    [
      'microapp deploy recon',
      'microapp deploy recon@1.0.0',
      'microapp deploy recon@1.1.0 --env preview',
      'microapp deploy recon@1.0.0 --driver kubernetes --out ./gitops',
    ],
  );
  examples(
    program
      .command('promote <app> <version>')
      .description('run in live a version that was tried in preview (the app must still be approved)')
      .action(
        action(async (name: string, version: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          progress(`promoting ${name}@${version} to live`);
          const d = await ctx.client.post<{ version: string; digest: string; url: string }>(
            `/api/v1/apps/${encodeURIComponent(name)}/promotions`,
            { version },
          );
          emit(
            ctx.json,
            d,
            () => `${name}@${d.version} is live (${d.digest}).\nOpen ${d.url} (sign in required).`,
          );
        }),
      ),
    ['microapp promote recon 1.2.0'],
  );
  examples(
    program
      .command('rollback <app>')
      .description('run the version that ran before the current one')
      .addOption(new Option('--env <env>', 'which environment').choices(['live', 'preview']).default('live'))
      .action(
        action(async (name: string, flags: { env: string }, command: Command) => {
          const ctx = ctxOf(command);
          const d = await ctx.client.post<{ version: string }>(
            `/api/v1/apps/${encodeURIComponent(name)}/rollback`,
            { env: flags.env },
          );
          emit(
            ctx.json,
            d,
            () => `${name}${flags.env === 'preview' ? ' (preview)' : ''} is back on ${d.version}.`,
          );
        }),
      ),
    ['microapp rollback recon', 'microapp rollback recon --env preview'],
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
