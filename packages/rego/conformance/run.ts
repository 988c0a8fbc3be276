// Runs OPA's compliance cases (the JSON format under ../shared/conformance) against this engine.
//   npm run conformance [-- DIR] [--ratchet] [--verbose] [--filter TEXT] [--write-baseline] [--libraries DIR]
// Prints pass counts per folder and a last line "N passed, M failed, K skipped".
// --libraries DIR also runs a second corpus: policy libraries written by others, each folder of .rego
// files tested as `opa test FOLDER` tests it (see libraries.ts), its count printed beside the first.
// --ratchet fails when fewer cases pass than baseline.json records: the count may only go up.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { compile, RegoError } from '../src/index.ts';
import { printLibraries, runLibraries } from './libraries.ts';

type Case = {
  note: string;
  query: string;
  modules?: string[];
  data?: unknown;
  input?: unknown;
  input_term?: string;
  want_result?: Record<string, unknown>[];
  want_error?: string;
  want_error_code?: string;
  strict_error?: boolean;
  sort_bindings?: boolean;
};

const here = import.meta.dirname;
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const positional = args.filter(
  (a, i) => !a.startsWith('--') && !['--filter', '--libraries'].includes(args[i - 1] ?? ''),
);
const root = resolve(positional[0] ?? join(here, '../../../../shared/conformance/opa-v1'));
if (!existsSync(root)) {
  console.error(`no conformance cases at ${root}; pass a directory`);
  process.exit(2);
}
const skips: Record<string, string> = JSON.parse(readFileSync(join(here, 'skips.json'), 'utf8'));
const filter = option('--filter');

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.json')) out.push(p);
  }
  return out;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

function skipReason(folder: string, note: string): string | undefined {
  return skips[note] ?? skips[folder];
}

type Outcome = 'pass' | 'fail' | 'skip';

function runCase(c: Case): { outcome: 'pass' | 'fail'; detail?: string } {
  const expectError = c.want_error_code !== undefined || c.want_error !== undefined;
  try {
    const policy = compile((c.modules ?? []).map((source, i) => ({ file: `test-${i}.rego`, source })));
    let input = c.input;
    if (c.input_term !== undefined) {
      const bindings = compile([]).query(`term := ${c.input_term}`);
      input = bindings[0]?.term;
    }
    const results = policy.query(c.query, {
      input,
      data: c.data ?? {},
      strictBuiltinErrors: c.strict_error === true,
      budget: { maxMillis: 5000 },
      nowNs: BigInt(Date.now()) * 1_000_000n,
    });
    if (expectError)
      return {
        outcome: 'fail',
        detail: `expected error ${c.want_error_code ?? c.want_error}, got ${JSON.stringify(results).slice(0, 300)}`,
      };
    const want = (c.want_result ?? []).map(canonical).sort();
    const got = results.map(canonical).sort();
    if (want.length === got.length && want.every((w, i) => w === got[i])) return { outcome: 'pass' };
    return {
      outcome: 'fail',
      detail: `want ${want.join(' ').slice(0, 400)}\n      got  ${got.join(' ').slice(0, 400)}`,
    };
  } catch (error) {
    if (!(error instanceof RegoError))
      return {
        outcome: 'fail',
        detail: `crash: ${(error as Error).stack?.split('\n').slice(0, 3).join(' | ')}`,
      };
    if (!expectError) return { outcome: 'fail', detail: `unexpected error: ${error.message.split('\n')[0]}` };
    if (c.want_error_code && error.code !== c.want_error_code)
      return {
        outcome: 'fail',
        detail: `want error ${c.want_error_code}, got ${error.code}: ${error.message.split('\n')[0]}`,
      };
    return { outcome: 'pass' };
  }
}

const perFolder = new Map<string, Record<Outcome, number>>();
const failures: string[] = [];
const total = { pass: 0, fail: 0, skip: 0 };
for (const file of files(root)) {
  const folder = relative(root, dirname(file)) || '.';
  const cases = (JSON.parse(readFileSync(file, 'utf8')) as { cases: Case[] }).cases;
  for (const c of cases) {
    if (filter && !c.note.includes(filter) && !folder.includes(filter)) continue;
    const counts = perFolder.get(folder) ?? { pass: 0, fail: 0, skip: 0 };
    perFolder.set(folder, counts);
    if (skipReason(folder, c.note)) {
      counts.skip++;
      total.skip++;
      continue;
    }
    const r = runCase(c);
    counts[r.outcome]++;
    total[r.outcome]++;
    if (r.outcome === 'fail') failures.push(`${c.note}\n      ${r.detail}`);
  }
}

for (const [folder, c] of [...perFolder.entries()].sort()) {
  const n = c.pass + c.fail;
  console.log(
    `${folder.padEnd(40)} ${String(c.pass).padStart(4)}/${String(n).padEnd(4)} ${c.skip ? `(${c.skip} skipped)` : ''}`,
  );
}
if (flag('--verbose')) for (const f of failures) console.log(`FAIL ${f}`);
const all = total.pass + total.fail + total.skip;
console.log(`\n${((100 * total.pass) / Math.max(1, all)).toFixed(1)}% of ${all} cases pass`);
const baselineFile = join(here, 'baseline.json');
if (flag('--write-baseline'))
  writeFileSync(baselineFile, `${JSON.stringify({ passed: total.pass, total: all }, null, 2)}\n`);
let code = 0;
if (flag('--ratchet') && existsSync(baselineFile)) {
  const baseline = JSON.parse(readFileSync(baselineFile, 'utf8')) as { passed: number };
  if (total.pass < baseline.passed) {
    console.log(
      `conformance fell below the committed count: ${total.pass} < ${baseline.passed} (packages/rego/conformance/baseline.json)`,
    );
    code = 1;
  }
}
console.log(`conformance: ${total.pass} passed, ${total.fail} failed, ${total.skip} skipped`);
const libraries = option('--libraries');
if (libraries) {
  console.log(`\npolicy libraries (${libraries}), tested as opa test tests them:`);
  const [passed, run] = printLibraries(runLibraries(resolve(libraries)), flag('--verbose'));
  console.log(`libraries: ${passed} of ${run} tests pass`);
}
process.exit(code);
