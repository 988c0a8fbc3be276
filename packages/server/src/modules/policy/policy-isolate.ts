import { Worker } from 'node:worker_threads';
import type { TestResult } from '@microapp/rego';
import { AppError } from '../../errors.ts';
import type { PolicyProblem } from './policy-check.ts';
import type { PolicySet } from './policy-sources.ts';

/** Work on policy that a caller controls: checking a pushed bundle, or evaluating with the caller's input. */
export type PolicyJob =
  | { kind: 'check'; set: PolicySet }
  | {
      kind: 'evaluate';
      /** Names the compiled policy in the worker's cache (a revision). */
      key: string;
      set: PolicySet;
      entrypoint: string;
      input: unknown;
      budget: { maxMillis: number; maxSteps: number; maxCollection: number };
    };

export type PolicyJobResult = { ok: true; value: unknown } | { ok: false; code: string; message: string };

export type CheckOutcome = {
  kind: 'ok' | 'invalid';
  problems: PolicyProblem[];
  tests: Pick<TestResult, 'package' | 'name' | 'outcome' | 'error' | 'durationMs'>[];
};

export type IsolateSettings = {
  /** Heap a worker may use before it is stopped (V8's old generation). */
  memoryMb: number;
  /** Longest one job may run, on top of its own time budget. */
  graceMs: number;
  /** Jobs that may wait for the worker; more are refused with 429. */
  queue: number;
};

export const defaultIsolateSettings: IsolateSettings = { memoryMb: 256, graceMs: 2000, queue: 32 };

type Pending = {
  id: number;
  job: PolicyJob;
  timeoutMs: number;
  resolve: (r: PolicyJobResult) => void;
  reject: (e: Error) => void;
};

/**
 * Evaluates untrusted policy work in a worker thread with a memory cap, one job at a time: a creator's
 * large input to `/api/v1/policies/evaluate`, or an admin's bundle whose tests build huge strings, costs
 * that worker's time and heap, never the event loop that serves the gateway and the API. A job that runs
 * past its time, or a worker that runs out of memory, is stopped; the worker is replaced for the next job.
 */
export function createPolicyIsolate(settings: IsolateSettings = defaultIsolateSettings) {
  let worker: Worker | null = null;
  let busy: Pending | null = null;
  let timer: NodeJS.Timeout | null = null;
  const queue: Pending[] = [];
  let nextId = 1;
  let closed = false;
  // Whether the current worker has loaded the engine and takes jobs.
  let ready = false;
  const startupMs = 60_000;

  function spawn(): Worker {
    const w = new Worker(new URL('./policy-worker.js', import.meta.url), {
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: settings.memoryMb, maxYoungGenerationSizeMb: 32 },
    });
    w.unref();
    w.on('message', (message: { id: number; result: PolicyJobResult } | { ready: true }) => {
      if ('ready' in message) {
        if (worker !== w) return;
        ready = true;
        // The job waiting for this worker starts now (its startup timer is replaced by the job's own).
        if (busy) start(busy);
        return;
      }
      if (busy?.id !== message.id) return;
      const done = busy;
      finish();
      done.resolve(message.result);
    });
    // Only the current worker speaks for the job in hand: a replaced one's last events are ignored.
    w.on('error', (error: Error & { code?: string }) => {
      if (worker === w) fail(error);
    });
    w.on('exit', () => {
      if (worker === w) fail(new Error('the policy worker stopped'));
    });
    return w;
  }

  function finish() {
    if (timer) clearTimeout(timer);
    timer = null;
    busy = null;
    pump();
  }

  function fail(error: Error & { code?: string }) {
    const failed = busy;
    const w = worker;
    worker = null;
    void w?.terminate();
    if (!failed) return;
    finish();
    failed.reject(
      error.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? new AppError(
            'policy_budget_exceeded',
            `the policy used more than ${settings.memoryMb} MB of memory and was stopped`,
          )
        : error instanceof AppError
          ? error
          : new AppError('internal', `the policy could not be evaluated: ${error.message}`),
    );
  }

  function pump() {
    if (busy || closed) return;
    const next = queue.shift();
    if (!next) return;
    busy = next;
    if (!worker) {
      ready = false;
      worker = spawn();
      // Starting a worker (loading the engine) is the platform's time, not the policy's: the job's clock
      // starts when the worker says it is ready. A worker that never does is given up after a while.
      timer = setTimeout(
        () => fail(new AppError('unavailable', 'the policy worker did not start; try again')),
        startupMs,
      );
      return;
    }
    if (ready) start(next);
  }

  function start(job: Pending) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(
      () =>
        fail(
          new AppError(
            'policy_budget_exceeded',
            `the policy ran longer than ${Math.round(job.timeoutMs / 1000)} s and was stopped`,
          ),
        ),
      job.timeoutMs,
    );
    worker!.postMessage({ id: job.id, job: job.job });
  }

  function run(job: PolicyJob): Promise<PolicyJobResult> {
    if (closed) return Promise.reject(new AppError('unavailable', 'the server is shutting down'));
    if (queue.length >= settings.queue)
      return Promise.reject(
        new AppError(
          'rate_limited',
          'the policy engine is busy with other requests; try again in a few seconds',
        ),
      );
    const budgetMs = job.kind === 'evaluate' ? job.budget.maxMillis : 60_000;
    return new Promise((resolve, reject) => {
      queue.push({ id: nextId++, job, timeoutMs: budgetMs + settings.graceMs, resolve, reject });
      pump();
    });
  }

  /** Compiles a set and runs its tests, in the worker. */
  async function check(set: PolicySet): Promise<CheckOutcome> {
    const r = await run({ kind: 'check', set });
    if (!r.ok) throw new AppError('policy_invalid', r.message);
    return r.value as CheckOutcome;
  }

  /** Evaluates one entrypoint, in the worker: the result, or undefined when the rule is undefined. */
  async function evaluate(job: Omit<Extract<PolicyJob, { kind: 'evaluate' }>, 'kind'>): Promise<unknown> {
    const r = await run({ kind: 'evaluate', ...job });
    if (!r.ok) {
      if (r.code === 'eval_budget_error')
        throw new AppError(
          'policy_budget_exceeded',
          `policy ${job.entrypoint} exceeded its budget: ${r.message}`,
        );
      throw new AppError('policy_invalid', `policy ${job.entrypoint} failed: ${r.message.split('\n')[0]}`);
    }
    const v = r.value as { undefined?: true; result?: unknown };
    return v.undefined ? undefined : v.result;
  }

  async function close() {
    closed = true;
    for (const p of queue.splice(0)) p.reject(new AppError('unavailable', 'the server is shutting down'));
    await worker?.terminate();
    worker = null;
  }

  return { check, evaluate, close };
}

export type PolicyIsolate = ReturnType<typeof createPolicyIsolate>;
