import type { Command } from 'commander';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';

type PolicyModule = typeof import('@microapp/server/policy');
type Rego = typeof import('@microapp/rego');
type TestResult = ReturnType<InstanceType<Rego['PreparedPolicy']>['test']>[number];
type Flags = { builtin: boolean; run?: string; verbose?: boolean; coverage?: boolean; threshold?: string };

const rule = '-'.repeat(80);

/** A duration as `opa test` prints one: microseconds under a millisecond. */
function duration(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(1)}µs` : `${ms.toFixed(1)}ms`;
}

const label = (r: TestResult) => `data.${r.package}.${r.name}`;
const status = (r: TestResult) =>
  ({ pass: 'PASS', fail: 'FAIL', error: 'ERROR', skip: 'SKIPPED' })[r.outcome];

function line(r: TestResult): string {
  const head = `${label(r)}: ${status(r)}${r.outcome === 'skip' ? '' : ` (${duration(r.durationMs)})`}`;
  const error = r.error ? `\n  ${r.error.split('\n')[0]}` : '';
  return `${head}${error}`;
}

/** The report `opa test` prints: failures with what they printed, then (verbose: every test) a summary. */
function report(results: TestResult[], verbose: boolean): string {
  const out: string[] = [];
  const failed = results.filter((r) => r.outcome === 'fail' || r.outcome === 'error');
  const printed = (r: TestResult) => (r.output.length ? ['', ...r.output.map((o) => `  ${o}`)] : []);
  if (failed.length > 0) {
    out.push('FAILURES', rule);
    for (const r of failed) out.push(line(r), ...printed(r));
    out.push('', 'SUMMARY', rule);
  }
  const shown = verbose ? results : failed;
  const byFile = new Map<string, TestResult[]>();
  for (const r of shown) byFile.set(r.file, [...(byFile.get(r.file) ?? []), r]);
  for (const [file, rs] of byFile) {
    out.push(`${file}:`);
    for (const r of rs) out.push(line(r), ...(verbose && r.outcome === 'pass' ? printed(r) : []));
    out.push('');
  }
  if (shown.length > 0) out.push(rule);
  const count = (o: TestResult['outcome'][]) => results.filter((r) => o.includes(r.outcome)).length;
  const total = results.length;
  out.push(`PASS: ${count(['pass'])}/${total}`);
  if (count(['fail'])) out.push(`FAIL: ${count(['fail'])}/${total}`);
  if (count(['error'])) out.push(`ERROR: ${count(['error'])}/${total}`);
  if (count(['skip'])) out.push(`SKIPPED: ${count(['skip'])}/${total}`);
  return out.join('\n');
}

function coverageTable(coverage: import('@microapp/rego').CoverageReport): string {
  const rows = Object.entries(coverage.files).map(([file, f]) => [
    file,
    String(f.covered_lines ?? 0),
    String(f.not_covered_lines ?? 0),
    `${f.coverage.toFixed(2)}%`,
    (f.not_covered ?? [])
      .map((r) => (r.start.row === r.end.row ? `${r.start.row}` : `${r.start.row}-${r.end.row}`))
      .join(', '),
  ]);
  rows.push([
    'TOTAL',
    String(coverage.covered_lines),
    String(coverage.not_covered_lines),
    `${coverage.coverage.toFixed(2)}%`,
    '',
  ]);
  return `\n\nCOVERAGE\n${table(['FILE', 'COVERED', 'NOT COVERED', 'COVERAGE', 'LINES NOT COVERED'], rows)}`;
}

export function registerPolicyTest(
  policy: Command,
  load: () => Promise<[PolicyModule, Rego]>,
  readDirs: (
    mod: PolicyModule,
    dirs: string[],
    withBuiltin: boolean,
  ) => { modules: { file: string; source: string }[]; data: Record<string, unknown>; named: string[] },
) {
  examples(
    policy
      .command('test [dirs...]')
      .description(
        'run the test_ rules of the folders, as `opa test` does (no server needed); the built-in packs are loaded beside them, and tested when no folder is named',
      )
      .option('-r, --run <regex>', 'run only the tests whose full name (data.pkg.test_x) matches')
      .option('-v, --verbose', 'list every test with its time and what it printed')
      .option('--coverage', 'report the lines the tests covered, as `opa test --coverage` does')
      .option('--threshold <percent>', 'with --coverage: fail (exit 2) when coverage is below this')
      .option('--no-builtin', 'do not load the built-in packs')
      .action(
        action(async (dirs: string[], flags: Flags, command: Command) => {
          const ctx = ctxOf(command);
          let filter: RegExp | undefined;
          if (flags.run !== undefined) {
            try {
              filter = new RegExp(flags.run);
            } catch (error) {
              throw new CliError(
                `--run ${flags.run} is not a regular expression: ${(error as Error).message}`,
                {
                  exitCode: 2,
                },
              );
            }
          }
          const threshold = flags.threshold === undefined ? undefined : Number(flags.threshold);
          if (threshold !== undefined && !(threshold >= 0 && threshold <= 100))
            throw new CliError(`--threshold takes a percentage from 0 to 100, not ${flags.threshold}`, {
              exitCode: 2,
            });
          const [mod, rego] = await load();
          const set = readDirs(mod, dirs, flags.builtin);
          // The folders' own files, or the packs' when no folder is named.
          const own = new Set(dirs.length > 0 ? set.named : set.modules.map((m) => m.file));
          let compiled: InstanceType<Rego['PreparedPolicy']>;
          try {
            compiled = rego.compile(set.modules);
          } catch (error) {
            throw new CliError((error as Error).message);
          }
          const covered = flags.coverage ? new Set<string>() : undefined;
          const results = compiled
            .test({ data: set.data, filter, coverage: covered })
            .filter((r) => own.has(r.file));
          const v0 = compiled.modules
            .filter((m) => own.has(m.file) && m.regoVersion === 'v0')
            .map((m) => m.file);
          if (v0.length > 0 && !ctx.json)
            process.stderr.write(
              `note: ${v0.join(', ')} ${v0.length === 1 ? 'is' : 'are'} Rego v0 (rules without \`if\` or \`contains\`), read as \`opa test --v0-compatible\` reads ${v0.length === 1 ? 'it' : 'them'}. OPA 1.0 refuses v0 without that flag; \`opa fmt --write --v0-v1 FILE\` updates a file.\n`,
            );
          const coverage = covered
            ? rego.coverageReport(
                compiled.modules.filter((m) => own.has(m.file)),
                covered,
              )
            : undefined;
          const failed = results.filter((r) => r.outcome === 'fail' || r.outcome === 'error');
          const passed = results.filter((r) => r.outcome === 'pass').length;
          const skipped = results.filter((r) => r.outcome === 'skip').length;
          emit(
            ctx.json,
            {
              results,
              passed,
              failed: failed.length,
              skipped,
              v0Files: v0,
              ...(coverage ? { coverage } : {}),
            },
            () =>
              results.length === 0
                ? `no tests${filter ? ` match ${flags.run}` : ''} in ${dirs.join(', ') || 'the built-in packs'}`
                : `${report(results, Boolean(flags.verbose))}${coverage ? coverageTable(coverage) : ''}`,
          );
          if (failed.length > 0) process.exitCode = 1;
          else if (coverage && threshold !== undefined && coverage.coverage < threshold) {
            process.stderr.write(`coverage ${coverage.coverage}% is below the threshold of ${threshold}%\n`);
            process.exitCode = 2;
          }
        }),
      ),
    [
      'microapp policy test ./org-policies',
      'microapp policy test ./org-policies -r egress --verbose',
      'microapp policy test ./org-policies --coverage --threshold 80',
    ],
  );
}
