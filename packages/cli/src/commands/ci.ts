import { type Command, Option } from 'commander';
import { CliError, createClient } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { loadCredential } from '../credentials.ts';
import { emit } from '../output.ts';
import { serverCode } from '../server-code.ts';

async function evaluatePolicy(input: unknown, appPolicyDir: string | null) {
  const [{ readPolicyDir, deepMerge, builtinPolicyDir }, { compile }] = await Promise.all([
    serverCode('policy'),
    serverCode('rego'),
  ]);
  const builtin = readPolicyDir(builtinPolicyDir);
  const own = appPolicyDir ? readPolicyDir(appPolicyDir) : { modules: [], data: {} };
  const modules = [...builtin.modules, ...own.modules.map((m) => ({ ...m, file: `app/${m.file}` }))];
  const data = deepMerge(builtin.data, own.data);
  const policy = compile(modules);
  const failed = policy
    .test({ data })
    .filter((t) => t.outcome !== 'pass')
    .map((t) => `${t.package}.${t.name}`);
  const denials: string[] = [];
  const walk = (node: typeof policy.compiled.root, path: string[]) => {
    for (const [name, child] of node.children) {
      const p = [...path, name];
      if (name === 'deny' && p[0] === 'microapp' && !p.some((s) => s.endsWith('_test'))) {
        const result = policy.evaluate(`data.${p.join('.')}`, { input, data });
        if (Array.isArray(result)) denials.push(...result.map(String));
      } else walk(child, p);
    }
  };
  walk(policy.compiled.root, []);
  return { denials, tests: { failed } };
}

async function stepSandbox() {
  const { sandboxAvailable, sandboxedCommand } = await serverCode('sandbox');
  if (!sandboxAvailable())
    throw new CliError('--sandbox needs bubblewrap: install the Debian package `bubblewrap`', {
      exitCode: 2,
    });
  return sandboxedCommand;
}

export function registerCiCommands(program: Command) {
  examples(
    program
      .command('ci')
      .description(
        'run the pipeline: manifest check, install, test, SBOM, scan, licenses, policy, artifact, sign and publish',
      )
      .option('-C, --dir <dir>', 'the app folder', '.')
      .option('--offline', 'skip the check against the platform (local trial only)')
      .option('--no-publish', 'stop before the platform signs and publishes the artifact')
      .option('--spdx', 'also write the SBOM as SPDX 2.3 JSON (.microapp/sbom.spdx.json)')
      .option(
        '--sandbox',
        'run install and test under bubblewrap (no network for the tests), as the platform does; the later steps read a checked copy of the folder and write their outputs outside it',
      )
      .option(
        '--work <dir>',
        'with --sandbox: where the checked copy and the outputs go (default: a new temporary folder)',
      )
      .addOption(
        new Option('--progress <format>', 'how each step is reported on stderr')
          .choices(['text', 'jsonl'])
          .default('text'),
      )
      .action(
        action(
          async (
            flags: {
              dir: string;
              offline?: boolean;
              publish: boolean;
              spdx?: boolean;
              sandbox?: boolean;
              work?: string;
              progress: 'text' | 'jsonl';
            },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const signedIn = Boolean(process.env.MICROAPP_TOKEN ?? loadCredential(ctx.server)?.token);
            const client = flags.offline
              ? null
              : signedIn
                ? createClient({ server: ctx.server })
                : ctx.client;
            const { runCi } = await import('../pipeline/run-ci.ts');
            const result = await runCi({
              dir: flags.dir,
              client,
              evaluatePolicy,
              publish: flags.publish,
              spdx: flags.spdx,
              allowedInstallScripts: async () => {
                // Online, the organization's active policy data decides; offline, the built-in default.
                if (client) {
                  const d = await client.post<{ result?: string[] }>('/api/v1/policies/evaluate', {
                    entrypoint: 'data.microapp.config.allowed_install_scripts',
                  });
                  return Array.isArray(d.result) ? d.result : [];
                }
                const { readPolicyDir, builtinPolicyDir } = await serverCode('policy');
                const data = readPolicyDir(builtinPolicyDir).data as {
                  microapp?: { config?: { allowed_install_scripts?: string[] } };
                };
                return data.microapp?.config?.allowed_install_scripts ?? [];
              },
              sandbox: flags.sandbox ? await stepSandbox() : undefined,
              ...(flags.work ? { workDir: flags.work } : {}),
              progress: (r, i, total) => {
                // One JSON object per line and step, for a platform that shows the pipeline live.
                if (flags.progress === 'jsonl')
                  return void process.stderr.write(`${JSON.stringify({ ...r, index: i, total })}\n`);
                if (ctx.json) return;
                const mark = r.status === 'passed' ? 'ok  ' : r.status === 'skipped' ? 'skip' : 'FAIL';
                process.stderr.write(
                  `[${i}/${total}] ${mark} ${r.step.padEnd(9)} ${String(r.durationMs).padStart(6)} ms  ${r.detail.split('\n')[0]}\n`,
                );
                if (r.status === 'failed') {
                  const rest = r.detail.split('\n').slice(1);
                  if (rest.length) process.stderr.write(`${rest.map((l) => `      ${l}`).join('\n')}\n`);
                  if (r.next) process.stderr.write(`      next: ${r.next}\n`);
                }
              },
            });
            emit(ctx.json, result, () =>
              result.ok
                ? [
                    `Built ${result.app}: ${result.artifact?.digest}`,
                    ...result.steps
                      .filter((st) => st.status === 'skipped')
                      .map((st) => `Not checked: ${st.step} (${st.detail})`),
                  ].join('\n')
                : `The pipeline stopped at ${result.steps.find((s) => s.status === 'failed')?.step}.`,
            );
            if (!result.ok) process.exitCode = 1;
          },
        ),
      ),
    ['microapp ci', 'microapp ci --dir apps/recon --json', 'microapp ci --sandbox --progress jsonl'],
  );
}
