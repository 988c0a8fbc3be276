import { compile, type PreparedPolicy, RegoError, type TestResult } from '@microapp/rego';
import type { PolicySet } from './policy-sources.ts';

/** Why a policy set was refused: modules that do not compile, or tests that do not pass. */
export type PolicyProblem = { file: string; message: string };

export type CheckedPolicy =
  | { kind: 'ok'; policy: PreparedPolicy; tests: TestResult[] }
  | { kind: 'invalid'; problems: PolicyProblem[]; tests: TestResult[] };

/** Compiles a policy set and runs its `test_` rules; any compile error or failing test makes it invalid. */
export function checkPolicy(set: PolicySet): CheckedPolicy {
  let policy: PreparedPolicy;
  try {
    policy = compile(set.modules);
  } catch (error) {
    if (error instanceof RegoError)
      return {
        kind: 'invalid',
        problems: [{ file: error.location?.file ?? '?', message: error.message }],
        tests: [],
      };
    throw error;
  }
  const tests = policy.test({ data: set.data, budget: { maxMillis: 2000 } });
  const failed = tests.filter((t) => t.outcome !== 'pass');
  if (failed.length > 0)
    return {
      kind: 'invalid',
      problems: failed.map((t) => ({
        file: t.package,
        message: `${t.package}.${t.name} ${t.outcome === 'fail' ? 'failed' : `errored: ${t.error}`}`,
      })),
      tests,
    };
  return { kind: 'ok', policy, tests };
}
