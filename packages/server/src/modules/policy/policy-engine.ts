import { createHash } from 'node:crypto';
import { compile, type PreparedPolicy, RegoError, toValue, type Value } from '@microapp/rego';
import type { Kysely, Transaction } from 'kysely';
import { canonicalJson } from '../../canonical-json.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { newTimedId, nowIso } from '../../ids.ts';
import type { PolicyIsolate } from './policy-isolate.ts';
import { deepMerge, type PolicySet } from './policy-sources.ts';

/** One decision: what was asked, under which policy revision, what came out and how long it took. */
export type Decision<T = unknown> = {
  entrypoint: string;
  revision: string;
  inputDigest: string;
  result: T;
  durationMs: number;
};

/** Evaluation limits for decisions taken while serving requests. */
const serverBudget = { maxMillis: 1000, maxSteps: 2_000_000, maxCollection: 200_000 };

type Active = {
  revision: string;
  policy: PreparedPolicy;
  data: Value;
  denyEntrypoints: string[];
  /** The sources, for evaluations that run in the isolate. */
  set: PolicySet;
};

/**
 * Builtins whose answer depends on when or by chance, not on the input and data alone: a policy that calls
 * any of them is asked again each time, never answered from kept decisions.
 */
const volatileBuiltins = [
  'time.now_ns',
  'rand.intn',
  'uuid.rfc4122',
  'io.jwt.decode_verify',
  'crypto.x509.parse_and_verify_certificates',
  'crypto.x509.parse_and_verify_certificates_with_options',
];

// Past this many kept decisions, all are forgotten at once (the same rule as the read cache's).
const maxKept = 20_000;

/**
 * The platform's policy decision point: built-in packs plus the active organization bundle,
 * compiled once per revision. Every decision can be written to the decision log.
 */
export function createPolicyEngine(deps: {
  db: Kysely<Database>;
  builtin: PolicySet;
  /** Where evaluations with a caller's own input run (see `decideIsolated`). */
  isolate?: Pick<PolicyIsolate, 'evaluate'>;
}) {
  const { db, builtin } = deps;
  let active: Active | null = null;
  let checkedAt = 0;

  function build(revision: string, org: PolicySet | null): Active {
    const set: PolicySet = {
      modules: [...builtin.modules, ...(org?.modules ?? []).map((m) => ({ ...m, file: `org/${m.file}` }))],
      data: org ? deepMerge(builtin.data, org.data) : builtin.data,
    };
    // Its tests passed when it was pushed (in the isolate); here it is only compiled.
    let policy: PreparedPolicy;
    try {
      policy = compile(set.modules);
    } catch (error) {
      throw new Error(`policy revision ${revision} is invalid: ${(error as Error).message}`);
    }
    return { revision, policy, data: toValue(set.data), denyEntrypoints: denyRules(policy), set };
  }

  /** Every `deny` rule in a package under data.microapp: the built-in packs and any the organization adds. */
  function denyRules(policy: PreparedPolicy): string[] {
    const out: string[] = [];
    const walk = (node: PreparedPolicy['compiled']['root'], path: string[]) => {
      for (const [name, child] of node.children) {
        const p = [...path, name];
        if (
          name === 'deny' &&
          (child.rules.length > 0 || child.defaultRule) &&
          p[0] === 'microapp' &&
          !p.some((s) => s.endsWith('_test'))
        )
          out.push(`data.${p.join('.')}`);
        else walk(child, p);
      }
    };
    walk(policy.compiled.root, []);
    return out.sort();
  }

  /** The active policy, reloaded when another replica pushed a newer revision. */
  async function current(): Promise<Active> {
    const now = Date.now();
    if (active && now - checkedAt < 1000) return active;
    const row = await db
      .selectFrom('policy_bundles')
      .selectAll()
      .orderBy('revision', 'desc')
      .limit(1)
      .executeTakeFirst();
    const revision = row ? `org-${row.revision}` : 'builtin';
    if (!active || active.revision !== revision)
      active = build(revision, row ? { modules: JSON.parse(row.modules), data: JSON.parse(row.data) } : null);
    checkedAt = now;
    return active;
  }

  function digest(input: unknown): string {
    return `sha256:${createHash('sha256')
      .update(canonicalJson(input ?? null))
      .digest('hex')}`;
  }

  /** Evaluates one entrypoint; a budget overrun becomes a clear 422, never a hang. */
  async function decide<T>(entrypoint: string, input: unknown): Promise<Decision<T | undefined>> {
    const a = await current();
    const started = performance.now();
    try {
      const result = a.policy.evaluate(entrypoint, { input, data: a.data, budget: serverBudget }) as
        | T
        | undefined;
      // The input's digest is for the decision log: worked out when something reads it (a denial the
      // gateway logs), not on each of the gateway's many allowed requests.
      let inputDigest: string | undefined;
      return {
        entrypoint,
        revision: a.revision,
        get inputDigest() {
          inputDigest ??= digest(input);
          return inputDigest;
        },
        result,
        durationMs: performance.now() - started,
      };
    } catch (error) {
      if (error instanceof RegoError && error.code === 'eval_budget_error')
        throw new AppError(
          'policy_budget_exceeded',
          `policy ${entrypoint} (revision ${a.revision}) exceeded its budget: ${error.message}`,
        );
      if (error instanceof RegoError)
        throw new AppError(
          'policy_invalid',
          `policy ${entrypoint} (revision ${a.revision}) failed: ${error.message.split('\n')[0]}`,
        );
      throw error;
    }
  }

  let kept = { revision: '', volatile: true, decisions: new Map<string, Decision>() };

  /**
   * `decide`, for a question asked many times over (the gateway's access decision on every request): the
   * decision is kept by revision, entrypoint and input, and given again while the revision is active. A
   * policy that reads the clock or a random source (`volatileBuiltins`) is evaluated every time.
   */
  async function decideKept<T>(entrypoint: string, input: unknown): Promise<Decision<T | undefined>> {
    const a = await current();
    if (kept.revision !== a.revision)
      kept = {
        revision: a.revision,
        volatile: volatileBuiltins.some((name) => a.policy.calls.has(name)),
        decisions: new Map(),
      };
    if (kept.volatile) return decide<T>(entrypoint, input);
    const key = `${entrypoint}\u0000${JSON.stringify(input)}`;
    const found = kept.decisions.get(key);
    if (found) return found as Decision<T | undefined>;
    const decisions = kept.decisions;
    const d = await decide<T>(entrypoint, input);
    if (d.revision === kept.revision) {
      if (decisions.size >= maxKept) decisions.clear();
      decisions.set(key, d);
    }
    return d;
  }

  /**
   * One decision on input a caller chose (`/api/v1/policies/evaluate`): in the isolate, with its memory cap
   * and a time limit, so a large or hostile input costs a worker thread, not the event loop.
   */
  async function decideIsolated<T>(entrypoint: string, input: unknown): Promise<Decision<T | undefined>> {
    if (!deps.isolate) return decide<T>(entrypoint, input);
    const a = await current();
    const started = performance.now();
    const result = (await deps.isolate.evaluate({
      key: a.revision,
      set: a.set,
      entrypoint,
      input,
      budget: serverBudget,
    })) as T | undefined;
    return {
      entrypoint,
      revision: a.revision,
      inputDigest: digest(input),
      result,
      durationMs: performance.now() - started,
    };
  }

  /** Admission: the messages of every `deny` rule under data.microapp for this input. */
  async function admission(
    input: unknown,
  ): Promise<{ denials: { entrypoint: string; message: string }[]; decisions: Decision[] }> {
    const a = await current();
    const denials: { entrypoint: string; message: string }[] = [];
    const decisions: Decision[] = [];
    for (const entrypoint of a.denyEntrypoints) {
      const d = await decide<unknown>(entrypoint, input);
      decisions.push(d);
      const msgs = Array.isArray(d.result)
        ? d.result
        : d.result && typeof d.result === 'object'
          ? Object.keys(d.result)
          : [];
      for (const m of msgs)
        denials.push({ entrypoint, message: typeof m === 'string' ? m : JSON.stringify(m) });
    }
    return { denials, decisions };
  }

  /** Writes decisions to the decision log (in the caller's transaction when given). */
  async function log(
    q: Kysely<Database> | Transaction<Database>,
    decisions: Decision[],
    subject: string | null,
    requestId?: string,
  ) {
    if (decisions.length === 0) return;
    await q
      .insertInto('decision_log')
      .values(
        decisions.map((d) => ({
          id: newTimedId('decision'),
          at: nowIso(),
          entrypoint: d.entrypoint,
          revision: d.revision,
          input_digest: d.inputDigest,
          result: JSON.stringify(d.result ?? null),
          duration_ms: Math.round(d.durationMs * 1000) / 1000,
          subject,
          request_id: requestId ?? null,
        })),
      )
      .execute();
  }

  async function revision(): Promise<string> {
    return (await current()).revision;
  }

  function invalidate() {
    checkedAt = 0;
  }

  return { decide, decideKept, decideIsolated, admission, log, revision, invalidate, current };
}

export type PolicyEngine = ReturnType<typeof createPolicyEngine>;
