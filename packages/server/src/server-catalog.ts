import type { Kysely } from 'kysely';
import type { Clock } from './clock.ts';
import type { ServerConfig } from './config.ts';
import type { Dialect } from './db/database.ts';
import type { AppsTable, Database } from './db/schema.ts';
import { interimRouting } from './modules/approvals/approval-rules.ts';
import { createApprovalService } from './modules/approvals/approval-service.ts';
import type { AuditService } from './modules/audit/audit-service.ts';
import { createCatalogRepository } from './modules/catalog/catalog-repository.ts';
import { canView } from './modules/catalog/catalog-rules.ts';
import { createCatalogService } from './modules/catalog/catalog-service.ts';
import type { Manifest } from './modules/catalog/manifest-schema.ts';
import type { Principal } from './modules/identity/principal.ts';
import { createScorecards } from './modules/lifecycle/scorecard.ts';
import { accessInput } from './modules/policy/access-input.ts';
import { blockNotesOf } from './modules/policy/blocked-domains.ts';
import { createRegoRiskEvaluator, createRegoRouting } from './modules/policy/policy-decisions.ts';
import { createPolicyEngine, type Decision, type PolicyEngine } from './modules/policy/policy-engine.ts';
import { createPolicyIsolate } from './modules/policy/policy-isolate.ts';
import { builtinPolicyDir, readPolicyDir } from './modules/policy/policy-sources.ts';
import { createRuleEvaluator, type RiskEvaluator } from './modules/risk/risk-evaluator.ts';

/**
 * The catalog and what decides on it: the policy engine (the built-in packs and the organization's bundles),
 * the risk rules, approval routing, and the reviews. `policyDir: null` runs without a policy engine.
 */
export function composeCatalog(deps: {
  config: ServerConfig;
  db: Kysely<Database>;
  dialect: Dialect;
  clock: Clock;
  audit: AuditService;
  policyDir?: string | null;
  risk?: RiskEvaluator;
}) {
  const { config, db, clock, audit } = deps;
  const repo = createCatalogRepository(db, deps.dialect);
  const builtin = deps.policyDir === null ? null : readPolicyDir(deps.policyDir ?? builtinPolicyDir);
  // Policy work a caller controls (pushes, tests, evaluations with their input) runs in a worker thread.
  const policyIsolate = createPolicyIsolate();
  const engine = builtin ? createPolicyEngine({ db, builtin, isolate: policyIsolate }) : null;
  const catalog = createCatalogService({
    db,
    clock,
    scorecards: createScorecards({ db, clock, settings: config.lifecycle }),
    maxLifetimeDays: config.lifecycle.maxLifetimeDays,
    repo,
    audit,
    risk: deps.risk ?? (engine ? createRegoRiskEvaluator(engine) : createRuleEvaluator()),
    appMaximums: config.appMaximums,
    registrationsPerDay: config.quotas.registrationsPerDay,
    routing: engine ? createRegoRouting(engine) : interimRouting,
    ...(engine
      ? {
          admission: async (input: unknown) => ({
            ...(await engine.admission(input)),
            revision: await engine.revision(),
          }),
          decisionLog: (trx, decisions, subject, requestId) =>
            engine.log(trx, decisions as Decision[], subject, requestId),
          blockNotes: () => blockNotesOf(db),
        }
      : {}),
  });
  const approvals = createApprovalService({ db, repo, audit, clock });
  return { repo, builtin, policyIsolate, engine, catalog, approvals };
}

/**
 * May this person use the app now? The access policy decides, as at the gateway (owners, admins and
 * reviewers always; otherwise the audience); without a policy engine, whoever may see the app.
 */
export async function mayUse(
  engine: PolicyEngine | null,
  principal: Principal,
  app: AppsTable,
): Promise<boolean> {
  if (!engine) return canView(principal, app);
  const d = await engine.decide<boolean>(
    'data.microapp.access.allow',
    accessInput(principal, { ...app, manifest: JSON.parse(app.manifest) as Manifest }),
  );
  return d.result === true;
}
