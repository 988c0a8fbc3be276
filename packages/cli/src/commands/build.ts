import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { BuildView } from '../../../server/src/modules/builds/build-service.ts';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';

/** Never uploaded: installed packages, the pipeline's own output, local data and version control. */
const skipped = new Set(['node_modules', '.git', '.microapp', 'data']);

async function packFolder(dir: string): Promise<Buffer> {
  const { create } = await import('tar');
  const chunks: Buffer[] = [];
  const stream = create(
    { gzip: true, cwd: dir, portable: true, filter: (path) => !path.split('/').some((p) => skipped.has(p)) },
    ['.'],
  );
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function appNameIn(dir: string): Promise<string> {
  const file = join(dir, 'microapp.yaml');
  if (!existsSync(file))
    throw new CliError(`no microapp.yaml in ${dir}; pass --dir, or NAME with --template`, { exitCode: 2 });
  const { parseYaml } = await import('../yaml.ts');
  const name = (parseYaml(readFileSync(file, 'utf8')) as { name?: unknown }).name;
  if (typeof name !== 'string' || !name) throw new CliError(`${file} has no name`, { exitCode: 2 });
  return name;
}

const mark = (s: string) => (s === 'passed' ? 'ok  ' : s === 'skipped' ? 'skip' : 'FAIL');

export function registerBuildCommands(program: Command) {
  examples(
    program
      .command('build [name]')
      .description(
        "build on the platform: the same pipeline as `microapp ci`, sandboxed, from this folder (uploaded) or from the app's template",
      )
      .option('-C, --dir <dir>', 'the app folder to upload', '.')
      .option('--template', "build the app's registered template instead of uploading a folder")
      .option('--deploy', 'deploy the version once the build passes')
      .option('--wait', 'follow the build step by step until it ends (exit 1 when it fails)')
      .action(
        action(
          async (
            appName: string | undefined,
            flags: { dir: string; template?: boolean; deploy?: boolean; wait?: boolean },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const dir = resolve(flags.dir);
            const name = appName ?? (await appNameIn(dir));
            const body: Record<string, unknown> = { deploy: Boolean(flags.deploy) };
            if (!flags.template) {
              const archive = await packFolder(dir);
              if (!ctx.json)
                process.stderr.write(`uploading ${dir} (${Math.ceil(archive.length / 1024)} KB)\n`);
              body.source = archive.toString('base64');
            }
            let build = await ctx.client.post<BuildView>(
              `/api/v1/apps/${encodeURIComponent(name)}/builds`,
              body,
            );
            if (!flags.wait) {
              emit(
                ctx.json,
                build,
                () => `Build ${build.id} of ${name} is ${build.state}.\nFollow it: microapp builds ${name}`,
              );
              return;
            }
            let shown = 0;
            for (;;) {
              for (const s of build.steps.slice(shown)) {
                if (!ctx.json)
                  process.stderr.write(
                    `[${shown + 1}/${build.total}] ${mark(s.status)} ${s.step.padEnd(9)} ${String(s.durationMs).padStart(6)} ms  ${s.detail.split('\n')[0]}\n`,
                  );
                shown++;
              }
              if (build.state === 'passed' || build.state === 'failed') break;
              await new Promise((r) => setTimeout(r, 500));
              build = await ctx.client.get<BuildView>(
                `/api/v1/apps/${encodeURIComponent(name)}/builds/${build.id}`,
              );
            }
            emit(ctx.json, build, () =>
              build.state === 'passed'
                ? `Built ${name}@${build.version} (${build.digest}).${build.url ? `\nRunning at ${build.url} (sign in required).` : `\nDeploy it: microapp deploy ${name}@${build.version}`}`
                : `The build failed: ${build.error}${build.steps.find((s) => s.status === 'failed')?.next ? `\nnext: ${build.steps.find((s) => s.status === 'failed')?.next}` : ''}`,
            );
            if (build.state === 'failed') process.exitCode = 1;
          },
        ),
      ),
    [
      'microapp build --wait',
      'microapp build --dir apps/survey --deploy --wait',
      'microapp build survey --template --wait --json',
    ],
  );
  examples(
    program
      .command('builds <app>')
      .description("an app's builds on the platform, newest first")
      .action(
        action(async (name: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{ items: BuildView[] }>(
            `/api/v1/apps/${encodeURIComponent(name)}/builds`,
          );
          emit(ctx.json, items, () =>
            table(
              ['BUILD', 'STATE', 'VERSION', 'BY', 'STARTED', 'STEPS', 'ERROR'],
              items.map((b) => [
                b.id,
                b.state,
                b.version ?? '',
                b.requestedBy,
                b.createdAt.slice(0, 16).replace('T', ' '),
                `${b.steps.length}/${b.total}`,
                (b.error ?? '').slice(0, 60),
              ]),
            ),
          );
        }),
      ),
    ['microapp builds survey', 'microapp builds survey --json'],
  );
}
