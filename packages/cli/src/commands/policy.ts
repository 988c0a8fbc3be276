import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';
import { serverCode } from '../server-code.ts';
import { registerPolicyTest } from './policy-test.ts';

type PolicyModule = typeof import('@microapp/server/policy');
type Rego = typeof import('@microapp/rego');

const load = async (): Promise<[PolicyModule, Rego]> =>
  Promise.all([serverCode('policy'), serverCode('rego')]);

/** The built-in packs (if asked) and the folders' modules and data; `named` lists the folders' files. */
function readDirs(mod: PolicyModule, dirs: string[], withBuiltin: boolean) {
  let set = withBuiltin ? mod.readPolicyDir(mod.builtinPolicyDir) : { modules: [], data: {} };
  const named: string[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new CliError(`${dir} is not a folder of .rego files`, { exitCode: 2 });
    const extra = mod.readPolicyDir(dir);
    const label = basename(resolve(dir));
    const files = extra.modules.map((m) => ({ ...m, file: `${label}/${m.file}` }));
    named.push(...files.map((m) => m.file));
    set = { modules: [...set.modules, ...files], data: mod.deepMerge(set.data, extra.data) };
  }
  return { ...set, named };
}

function readJsonFile(path: string, what: string): unknown {
  const text =
    path === '-'
      ? readFileSync(0, 'utf8')
      : (() => {
          try {
            return readFileSync(path, 'utf8');
          } catch {
            throw new CliError(`cannot read ${what} file ${path}`, { exitCode: 2 });
          }
        })();
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${path} is not valid JSON: ${(error as Error).message}`, { exitCode: 2 });
  }
}

export function registerPolicyCommands(program: Command) {
  const policy = program
    .command('policy')
    .description('policy as code: test, evaluate, push and bundle Rego policies');

  registerPolicyTest(policy, load, readDirs);

  examples(
    policy
      .command('eval [dirs...]')
      .description(
        'evaluate one entrypoint with an input, locally with the built-in packs (or --remote on the server)',
      )
      .requiredOption('-e, --entrypoint <path>', 'e.g. microapp/deploy/deny or data.microapp.risk.assessment')
      .option('-i, --input <file>', 'input JSON file (- for stdin)')
      .option('-d, --data <file>', 'extra base data JSON file')
      .option('--remote', 'evaluate on the server with the active policy revision')
      .action(
        action(
          async (
            dirs: string[],
            flags: { entrypoint: string; input?: string; data?: string; remote?: boolean },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const input = flags.input ? readJsonFile(flags.input, 'input') : undefined;
            let result: unknown;
            if (flags.remote) {
              const d = await ctx.client.post<{ result: unknown; revision: string }>(
                '/api/v1/policies/evaluate',
                { entrypoint: flags.entrypoint, input },
              );
              result = d.result;
            } else {
              const [mod, rego] = await load();
              const set = readDirs(mod, dirs, true);
              const data = flags.data
                ? mod.deepMerge(set.data, readJsonFile(flags.data, 'data') as Record<string, unknown>)
                : set.data;
              try {
                result = rego
                  .compile(set.modules)
                  .evaluate(flags.entrypoint, { input, data, print: (m) => process.stderr.write(`${m}\n`) });
              } catch (error) {
                throw new CliError((error as Error).message);
              }
            }
            emit(
              ctx.json,
              { entrypoint: flags.entrypoint, result: result ?? null, defined: result !== undefined },
              () => (result === undefined ? 'undefined' : JSON.stringify(result, null, 2)),
            );
          },
        ),
      ),
    [
      'microapp policy eval --entrypoint microapp/network/deny --input deploy.json',
      'echo \'{"tier":"high"}\' | microapp policy eval -e microapp/approval/reviews -i -',
    ],
  );

  examples(
    policy
      .command('push <dir>')
      .description(
        'push a folder of .rego files (and data.json) as the organization policy; refused unless every test passes (admins)',
      )
      .option('-m, --message <text>', 'why this revision')
      .action(
        action(async (dir: string, flags: { message?: string }, command: Command) => {
          const ctx = ctxOf(command);
          const [mod] = await load();
          const set = readDirs(mod, [dir], false);
          if (set.modules.length === 0 && Object.keys(set.data).length === 0)
            throw new CliError(`${dir} has no .rego files and no data.json`, { exitCode: 2 });
          const prefix = `${basename(resolve(dir))}/`;
          const modules = Object.fromEntries(set.modules.map((m) => [m.file.slice(prefix.length), m.source]));
          const res = await ctx.client.post<{ revision: number; tests: { passed: number } }>(
            '/api/v1/policies',
            {
              modules,
              data: set.data,
              ...(flags.message ? { message: flags.message } : {}),
            },
          );
          emit(
            ctx.json,
            res,
            () => `Pushed organization policy revision ${res.revision} (${res.tests.passed} tests passed).`,
          );
        }),
      ),
    ['microapp policy push ./org-policies -m "block file-sharing sites"'],
  );

  examples(
    policy
      .command('bundle <dir>')
      .description(
        'write an OPA bundle (tar.gz) of the built-in packs and the folder, for an OPA server or Gatekeeper',
      )
      .requiredOption('-o, --out <file>', 'bundle file to write')
      .option('--revision <rev>', 'bundle revision', 'dev')
      .option('--no-builtin', 'only the given folder')
      .action(
        action(
          async (
            dir: string,
            flags: { out: string; revision: string; builtin: boolean },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const [mod] = await load();
            const set = readDirs(mod, [dir], flags.builtin);
            const written = await mod.writeOpaBundle(set, flags.out, flags.revision);
            emit(
              ctx.json,
              { out: flags.out, files: written.files },
              () => `Wrote ${flags.out} (${written.files.length} files, revision ${flags.revision}).`,
            );
          },
        ),
      ),
    ['microapp policy bundle ./org-policies -o bundle.tar.gz --revision 2026-11-28'],
  );

  examples(
    policy
      .command('show')
      .description('the active policy revision on the server')
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const cur = await ctx.client.get<{
            revision: string;
            builtin: string[];
            org: {
              revision: number;
              files: string[];
              pushedBy: string;
              pushedAt: string;
              message: string | null;
            } | null;
          }>('/api/v1/policies');
          emit(ctx.json, cur, () =>
            [
              `active revision: ${cur.revision}`,
              `built-in packs:  ${cur.builtin.length} modules`,
              cur.org
                ? `organization:    revision ${cur.org.revision} by ${cur.org.pushedBy} at ${cur.org.pushedAt}${cur.org.message ? ` (${cur.org.message})` : ''}\n${table(
                    ['FILE'],
                    cur.org.files.map((f) => [f]),
                  )}`
                : 'organization:    none pushed',
            ].join('\n'),
          );
        }),
      ),
    ['microapp policy show --json'],
  );
}
