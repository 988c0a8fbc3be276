// The second corpus: policy libraries written by others, with their own test_ rules, run the way
// `opa test FOLDER` runs them. Each folder that holds .rego files directly is one policy set: its
// modules are compiled together (with data.json beside them as base data, at the root as `opa test`
// loads a data.json given beside the policies), and every test_ rule runs.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { compile } from '../src/index.ts';

export type SetResult = {
  set: string;
  passed: number;
  failed: number;
  errors: number;
  /** Why the set could not run at all (it did not compile), if so. */
  compileError?: string;
  failures: string[];
};

function policyFolders(dir: string): string[] {
  const out: string[] = [];
  const names = readdirSync(dir).sort();
  if (names.some((n) => n.endsWith('.rego'))) out.push(dir);
  for (const n of names) {
    const p = join(dir, n);
    if (!n.startsWith('.') && statSync(p).isDirectory()) out.push(...policyFolders(p));
  }
  return out;
}

export function runLibraries(root: string): SetResult[] {
  if (!existsSync(root)) return [];
  return policyFolders(root).map((folder) => {
    const set = relative(root, folder) || '.';
    const sources = readdirSync(folder)
      .filter((n) => n.endsWith('.rego'))
      .sort()
      .map((n) => ({ file: `${set}/${n}`, source: readFileSync(join(folder, n), 'utf8') }));
    const dataFile = join(folder, 'data.json');
    const data = existsSync(dataFile) ? JSON.parse(readFileSync(dataFile, 'utf8')) : {};
    const result: SetResult = { set, passed: 0, failed: 0, errors: 0, failures: [] };
    let policy: ReturnType<typeof compile>;
    try {
      policy = compile(sources);
    } catch (error) {
      result.compileError = (error as Error).message.split('\n')[0];
      return result;
    }
    for (const t of policy.test({ data, budget: { maxMillis: 10_000 } })) {
      if (t.outcome === 'pass') result.passed++;
      else if (t.outcome === 'fail') {
        result.failed++;
        result.failures.push(`data.${t.package}.${t.name}: FAIL`);
      } else if (t.outcome === 'error') {
        result.errors++;
        result.failures.push(`data.${t.package}.${t.name}: ERROR ${t.error?.split('\n')[0]}`);
      }
    }
    return result;
  });
}

/** Prints the per-set counts; returns [tests passed, tests run] (a set that does not compile counts as one failure). */
export function printLibraries(results: SetResult[], verbose: boolean): [number, number] {
  let passed = 0;
  let total = 0;
  for (const r of results) {
    const n = r.passed + r.failed + r.errors;
    passed += r.passed;
    total += r.compileError ? Math.max(n, 1) : n;
    console.log(
      `  ${r.set.padEnd(60)} ${r.compileError ? `does not compile: ${r.compileError}` : `${r.passed}/${n}`}`,
    );
    if (verbose) for (const f of r.failures) console.log(`    ${f}`);
  }
  return [passed, total];
}
