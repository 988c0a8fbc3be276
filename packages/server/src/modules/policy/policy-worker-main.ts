import { parentPort } from 'node:worker_threads';
import { compile, type PreparedPolicy, RegoError } from '@microapp/rego';
import { checkPolicy } from './policy-check.ts';
import type { PolicyJob, PolicyJobResult } from './policy-isolate.ts';
import type { PolicySet } from './policy-sources.ts';

// Compiled policies by the caller's key (a revision): an evaluate does not compile again.
const compiled = new Map<string, PreparedPolicy>();

function compiledFor(key: string, set: PolicySet): PreparedPolicy {
  let policy = compiled.get(key);
  if (!policy) {
    policy = compile(set.modules);
    if (compiled.size > 8) compiled.clear();
    compiled.set(key, policy);
  }
  return policy;
}

function run(job: PolicyJob): PolicyJobResult {
  try {
    if (job.kind === 'check') {
      const checked = checkPolicy(job.set);
      return {
        ok: true,
        value: {
          kind: checked.kind,
          problems: checked.kind === 'invalid' ? checked.problems : [],
          tests: checked.tests.map((t) => ({
            package: t.package,
            name: t.name,
            outcome: t.outcome,
            ...(t.error ? { error: t.error } : {}),
            durationMs: t.durationMs,
          })),
        },
      };
    }
    const policy = compiledFor(job.key, job.set);
    const value = policy.evaluate(job.entrypoint, {
      input: job.input,
      data: job.set.data,
      budget: job.budget,
    });
    return { ok: true, value: value === undefined ? { undefined: true } : { result: value } };
  } catch (error) {
    if (error instanceof RegoError) return { ok: false, code: error.code, message: error.message };
    return { ok: false, code: 'internal', message: (error as Error).message };
  }
}

parentPort!.on('message', (message: { id: number; job: PolicyJob }) => {
  parentPort!.postMessage({ id: message.id, result: run(message.job) });
});

// Loaded: the isolate starts a job's clock from here.
parentPort!.postMessage({ ready: true });
