import { createHash } from 'node:crypto';
import type { Source } from '@microapp/rego';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden } from '../../errors.ts';
import { newId, nowIso } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { accessInput } from './access-input.ts';
import { latestOrgBundle } from './blocked-domains.ts';
import type { PolicyProblem } from './policy-check.ts';
import type { PolicyEngine } from './policy-engine.ts';
import type { PolicyIsolate } from './policy-isolate.ts';
import { deepMerge, type PolicySet } from './policy-sources.ts';

export type PushOutcome =
  | { kind: 'pushed'; revision: number; tests: { passed: number; total: number } }
  | { kind: 'invalid'; problems: PolicyProblem[] };

const safeFile = /^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}\.rego$/;

/** Organization policy bundles (versioned, tested before they are accepted) and decisions on demand. */
export function createPolicyService(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  engine: PolicyEngine;
  builtin: PolicySet;
  catalog: Pick<CatalogService, 'get'>;
  /** Where pushed bundles are compiled and tested: a worker with a memory cap, off the event loop. */
  isolate: Pick<PolicyIsolate, 'check'>;
}) {
  const { db, audit, engine, builtin } = deps;

  /** A DNS name with at least two labels, lower case: what a blocked domain may be. */
  const domainName =
    /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

  /** Accepts a bundle only when it compiles with the built-in packs and every test passes. */
  async function push(
    principal: Principal,
    bundle: { modules: Record<string, string>; data?: Record<string, unknown>; message?: string },
    ctx: AuditContext,
  ): Promise<PushOutcome> {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins can push organization policies');
    const files = Object.keys(bundle.modules).sort();
    if (files.length === 0 && Object.keys(bundle.data ?? {}).length === 0)
      throw new AppError(
        'validation_failed',
        'the bundle holds neither modules nor data: push .rego files, a data.json (such as DLP modes), or both',
      );
    for (const f of files)
      if (!safeFile.test(f))
        throw new AppError(
          'validation_failed',
          `module name ${JSON.stringify(f)} must be a relative path ending in .rego`,
        );
    const modules: Source[] = files.map((file) => ({ file, source: bundle.modules[file]! }));
    const data = { ...(bundle.data ?? {}) };
    // The blocked domains have their own API and page; a push of modules that does not mention them keeps them.
    if (!('blocked_domains' in data)) {
      const previous = await latestOrg();
      const kept = previous
        ? (JSON.parse(previous.data) as { blocked_domains?: string[] }).blocked_domains
        : undefined;
      if (kept) data.blocked_domains = kept;
    }
    const checked = await deps.isolate.check({
      modules: [...builtin.modules, ...modules.map((m) => ({ ...m, file: `org/${m.file}` }))],
      data: deepMerge(builtin.data, data),
    });
    if (checked.kind === 'invalid') return { kind: 'invalid', problems: checked.problems };
    const digest = `sha256:${createHash('sha256').update(JSON.stringify({ modules, data })).digest('hex')}`;
    const revision = await db.transaction().execute(async (trx) => {
      const last = await trx
        .selectFrom('policy_bundles')
        .select('revision')
        .orderBy('revision', 'desc')
        .limit(1)
        .executeTakeFirst();
      const next = (last ? Number(last.revision) : 0) + 1;
      await trx
        .insertInto('policy_bundles')
        .values({
          id: newId('policy'),
          revision: next,
          modules: JSON.stringify(modules),
          data: JSON.stringify(data),
          digest,
          message: bundle.message ?? null,
          created_by: principal.email,
          created_at: nowIso(),
        })
        .execute();
      await audit.record(trx, ctx, {
        action: 'policy.pushed',
        targetType: 'policy',
        target: `org-${next}`,
        reason: bundle.message ?? null,
        summary: { revision: next, files, digest, testsPassed: checked.tests.length },
      });
      return next;
    });
    engine.invalidate();
    return { kind: 'pushed', revision, tests: { passed: checked.tests.length, total: checked.tests.length } };
  }

  async function current() {
    const row = await db
      .selectFrom('policy_bundles')
      .selectAll()
      .orderBy('revision', 'desc')
      .limit(1)
      .executeTakeFirst();
    return {
      revision: await engine.revision(),
      builtin: builtin.modules.map((m) => m.file),
      org: row
        ? {
            revision: Number(row.revision),
            files: (JSON.parse(row.modules) as Source[]).map((m) => m.file),
            digest: row.digest,
            message: row.message,
            pushedBy: row.created_by,
            pushedAt: row.created_at,
          }
        : null,
    };
  }

  /** Evaluates one entrypoint for a caller, and logs the decision. */
  async function evaluate(entrypoint: string, input: unknown, ctx: AuditContext) {
    const d = await engine.decideIsolated(
      entrypoint.startsWith('data.') ? entrypoint : `data.${entrypoint.replace(/\//g, '.')}`,
      input,
    );
    await engine.log(db, [d], null, ctx.requestId);
    return d;
  }

  /** Deploy admission for an app: every deny rule, once per egress host (or for the host asked about). */
  async function admission(principal: Principal, name: string, host: string | undefined, ctx: AuditContext) {
    const app = await deps.catalog.get(principal, name);
    const hosts = host ? [host] : (app.manifest.integrations?.egress ?? []);
    const denials: { host: string | null; entrypoint: string; message: string }[] = [];
    const inputs = hosts.length > 0 ? hosts : [null];
    for (const h of inputs) {
      const input = {
        request: { method: 'deploy', ...(h ? { host: h } : {}) },
        manifest: app.manifest,
        app: {
          name: app.name,
          owner: app.owner,
          department: app.department,
          tier: app.tier,
          state: app.state,
        },
      };
      const result = await engine.admission(input);
      await engine.log(db, result.decisions, name, ctx.requestId);
      for (const d of result.denials)
        if (!denials.some((x) => x.message === d.message)) denials.push({ host: h, ...d });
    }
    return {
      app: name,
      revision: await engine.revision(),
      allowed: denials.length === 0 && app.state === 'approved',
      approved: app.state === 'approved',
      denials,
    };
  }

  /** May the caller (or, for admins and reviewers, another user) use this app? Decided by microapp.access. */
  async function access(principal: Principal, name: string, email: string | undefined, ctx: AuditContext) {
    const app = await deps.catalog.get(principal, name);
    let user = {
      email: principal.email,
      department: principal.department,
      roles: principal.roles as string[],
    };
    if (email && email !== principal.email) {
      if (!hasRole(principal, 'admin', 'reviewer', 'auditor'))
        throw forbidden('only admins, reviewers and auditors can check access for someone else');
      const other = await db
        .selectFrom('users')
        .selectAll()
        .where('email', '=', email.toLowerCase())
        .executeTakeFirst();
      if (!other) throw new AppError('not_found', `no user ${email} has signed in yet`);
      user = { email: other.email, department: other.department, roles: JSON.parse(other.roles) as string[] };
    }
    const input = accessInput(user, app);
    const allow = await engine.decide<boolean>('data.microapp.access.allow', input);
    const reason = await engine.decide<string>('data.microapp.access.reason', input);
    await engine.log(db, [allow], name, ctx.requestId);
    return {
      app: name,
      user: user.email,
      allowed: allow.result === true,
      reason: reason.result ?? null,
      revision: allow.revision,
    };
  }

  async function decisions(query: { subject?: string; limit: number }) {
    let q = db.selectFrom('decision_log').selectAll().orderBy('at', 'desc').limit(query.limit);
    if (query.subject) q = q.where('subject', '=', query.subject);
    return (await q.execute()).map((r) => ({
      id: r.id,
      at: r.at,
      entrypoint: r.entrypoint,
      revision: r.revision,
      inputDigest: r.input_digest,
      result: JSON.parse(r.result) as unknown,
      durationMs: Number(r.duration_ms),
      subject: r.subject,
      requestId: r.request_id,
    }));
  }

  const latestOrg = () => latestOrgBundle(db);

  /** Every organization bundle ever pushed, newest first. */
  async function revisions() {
    const rows = await db.selectFrom('policy_bundles').selectAll().orderBy('revision', 'desc').execute();
    return rows.map((r) => ({
      revision: Number(r.revision),
      files: (JSON.parse(r.modules) as Source[]).map((m) => m.file),
      digest: r.digest,
      message: r.message,
      pushedBy: r.created_by,
      pushedAt: r.created_at,
    }));
  }

  /** One module of the active policy: a built-in pack's file, or `org/FILE` of the current bundle. */
  async function source(file: string): Promise<{ file: string; origin: 'builtin' | 'org'; source: string }> {
    const own = builtin.modules.find((m) => m.file === file);
    if (own) return { file, origin: 'builtin', source: own.source };
    if (file.startsWith('org/')) {
      const row = await latestOrg();
      const m = row ? (JSON.parse(row.modules) as Source[]).find((x) => `org/${x.file}` === file) : undefined;
      if (m) return { file, origin: 'org', source: m.source };
    }
    throw new AppError('not_found', `no module ${file} in the active policy`);
  }

  /** Runs every test_ rule of the active policy (built-in packs and the organization's bundle). */
  async function test() {
    const row = await latestOrg();
    const org = row ? (JSON.parse(row.modules) as Source[]) : [];
    const checked = await deps.isolate.check({
      modules: [...builtin.modules, ...org.map((m) => ({ ...m, file: `org/${m.file}` }))],
      data: deepMerge(builtin.data, row ? (JSON.parse(row.data) as Record<string, unknown>) : {}),
    });
    return {
      revision: await engine.revision(),
      passed: checked.tests.filter((t) => t.outcome === 'pass').length,
      total: checked.tests.length,
      problems: checked.kind === 'invalid' ? checked.problems : [],
      tests: checked.tests.map((t) => ({
        name: `${t.package}.${t.name}`,
        outcome: t.outcome,
        ...(t.error ? { error: t.error } : {}),
        durationMs: Math.round(t.durationMs * 1000) / 1000,
      })),
    };
  }

  /** The domains the organization blocked, from the active org bundle's data. */
  async function blockedDomains() {
    const row = await latestOrg();
    const data = row ? (JSON.parse(row.data) as { blocked_domains?: string[] }) : {};
    return {
      domains: data.blocked_domains ?? [],
      revision: row ? Number(row.revision) : null,
      updatedBy: row?.created_by ?? null,
      updatedAt: row?.created_at ?? null,
    };
  }

  /**
   * Replaces the blocked domains: a new org revision with the same modules and the list in its data, so it
   * goes through the same checks, history and audit as any push; the change itself is audited too.
   */
  async function setBlockedDomains(
    principal: Principal,
    domains: string[],
    message: string,
    ctx: AuditContext,
  ) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins block domains');
    const wanted = [...new Set(domains.map((d) => d.trim().toLowerCase().replace(/\.+$/, '')))].sort();
    const bad = wanted.filter((d) => !domainName.test(d));
    if (bad.length)
      throw new AppError(
        'validation_failed',
        `${bad.map((d) => JSON.stringify(d)).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not a domain name such as files.example.net`,
      );
    const row = await latestOrg();
    const modules = row ? (JSON.parse(row.modules) as Source[]) : [];
    const data = row ? (JSON.parse(row.data) as Record<string, unknown>) : {};
    const before = (data.blocked_domains as string[] | undefined) ?? [];
    const outcome = await push(
      principal,
      {
        modules: Object.fromEntries(modules.map((m) => [m.file, m.source])),
        data: { ...data, blocked_domains: wanted },
        message,
      },
      ctx,
    );
    if (outcome.kind === 'invalid')
      throw new AppError(
        'policy_invalid',
        `the change was refused: ${outcome.problems.map((p) => p.message.split('\n')[0]).join('; ')}`,
      );
    await db.transaction().execute((trx) =>
      audit.record(trx, ctx, {
        action: 'policy.blocked_domains_changed',
        targetType: 'policy',
        target: `org-${outcome.revision}`,
        reason: message,
        summary: {
          added: wanted.filter((d) => !before.includes(d)),
          removed: before.filter((d) => !wanted.includes(d)),
          revision: outcome.revision,
        },
      }),
    );
    return { domains: wanted, revision: outcome.revision };
  }

  return {
    push,
    current,
    evaluate,
    admission,
    access,
    decisions,
    revisions,
    source,
    test,
    blockedDomains,
    setBlockedDomains,
  };
}

export type PolicyService = ReturnType<typeof createPolicyService>;
