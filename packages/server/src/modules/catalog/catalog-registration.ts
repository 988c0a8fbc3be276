import type { Kysely, Transaction } from 'kysely';
import { canonicalJson } from '../../canonical-json.ts';
import type { Clock } from '../../clock.ts';
import type { ReadCache } from '../../db/read-cache.ts';
import type { AppsTable, Database } from '../../db/schema.ts';
import { conflict, forbidden } from '../../errors.ts';
import { newId, nowIso } from '../../ids.ts';
import type { ApprovalRouting } from '../approvals/approval-rules.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { findUserByEmail } from '../identity/users.ts';
import type { Scorecard } from '../lifecycle/scorecard.ts';
import {
  type DecisionRecord,
  type RiskEvaluator,
  type RiskInput,
  riskInputOf,
} from '../risk/risk-evaluator.ts';
import type { Tier } from '../risk/risk-rules.ts';
import type { AppState, AppView } from './app-view.ts';
import { type Admission, type BlockNote, checkPolicies, type PolicyDenial } from './catalog-policy.ts';
import type { CatalogRepository } from './catalog-repository.ts';
import { nextState } from './catalog-rules.ts';
import type { Manifest } from './manifest-schema.ts';

import {
  checkAppMaximums,
  checkRegistrationQuota,
  checkRuntimeCommand,
  checkRuntimeEnv,
  type RegistrationLimits,
} from './registration-limits.ts';

/** What a registration did, for the caller to report. A policy denial is an outcome, not an exception. */
export type RegistrationOutcome =
  | { kind: 'denied'; denials: PolicyDenial[]; revision: string }
  | { kind: 'created'; app: AppView }
  | { kind: 'updated'; app: AppView; reReview: boolean }
  | { kind: 'unchanged'; app: AppView };

/** What the catalog needs: the database, the risk and approval rules, and the policy engine's checks. */
export type CatalogDeps = {
  db: Kysely<Database>;
  /** The platform clock: registration times feed expiry and inactivity, which follow it. */
  clock?: Clock;
  /** The longest each tier runs before a renewal (the lifecycle settings), for assessments to say. */
  maxLifetimeDays?: Record<Tier, number>;
  /** Governance scorecards for a page of apps (shown in the catalog, filterable). */
  scorecards?: (apps: AppsTable[], cache?: ReadCache) => Promise<Map<string, Scorecard>>;
  repo: CatalogRepository;
  audit: Pick<AuditService, 'record'>;
  risk: RiskEvaluator;
  routing: ApprovalRouting;
  /** Deny rules of the policy packs and org bundles, checked before anything is written. */
  admission?: Admission;
  /** The domains the organization blocked and why, for a refusal to give the admin's reason. */
  blockNotes?: () => Promise<BlockNote[]>;
  decisionLog?: (
    trx: Transaction<Database>,
    decisions: DecisionRecord[],
    subject: string,
    requestId?: string,
  ) => Promise<void>;
} & RegistrationLimits;

/** Registering and re-registering apps: checked, scored, routed to reviewers, recorded and audited. */
export function createRegistration(deps: CatalogDeps) {
  const { db, repo, audit, risk, routing } = deps;

  /** Told of every new app once its registration committed (its repository is made from it). */
  const registered: ((app: AppView, ctx: AuditContext) => Promise<void>)[] = [];
  const onRegistered = (listener: (app: AppView, ctx: AuditContext) => Promise<void>) =>
    registered.push(listener);

  async function register(principal: Principal, manifest: Manifest, ctx: AuditContext) {
    const outcome = await registerOrUpdate(principal, manifest, ctx);
    if (outcome.kind === 'created') for (const listener of registered) await listener(outcome.app, ctx);
    return outcome;
  }

  async function registerOrUpdate(
    principal: Principal,
    manifest: Manifest,
    ctx: AuditContext,
  ): Promise<RegistrationOutcome> {
    const owner = manifest.owner.toLowerCase();
    const isAdmin = hasRole(principal, 'admin');
    if (!hasRole(principal, 'creator', 'admin'))
      throw forbidden('only creators and admins can register apps');
    if (owner !== principal.email && !isAdmin)
      throw forbidden(
        `you can register apps you own (owner: ${principal.email}); ask an admin to register one for ${owner}`,
      );
    checkAppMaximums(manifest, deps.appMaximums);
    checkRuntimeEnv(manifest);
    checkRuntimeCommand(manifest);
    if (deps.registrationsPerDay && !isAdmin && !(await repo.findApp(db, manifest.name, true)))
      await checkRegistrationQuota(
        db,
        principal.userId,
        deps.registrationsPerDay,
        deps.clock?.nowIso() ?? new Date().toISOString(),
      );
    const department =
      owner === principal.email
        ? principal.department
        : ((await findUserByEmail(db, owner))?.department ?? manifest.audience?.department ?? null);
    const stored: Manifest = { ...manifest, owner };
    const decisions: DecisionRecord[] = [];
    const assessment = await risk.assess(riskInputOf(manifest));
    if (deps.admission) {
      // What a deploy would be refused for refuses the registration now, before two reviewers spend time on
      // an app that could never run.
      const checked = await checkPolicies(deps.admission, {
        manifest: stored,
        user: { email: principal.email, department },
        tier: assessment.tier,
        ...(deps.blockNotes ? { blockNotes: deps.blockNotes } : {}),
      });
      decisions.push(...checked.decisions);
      if (checked.denials.length > 0) {
        if (deps.decisionLog) {
          const log = deps.decisionLog;
          await db.transaction().execute((trx) => log(trx, decisions, manifest.name, ctx.requestId));
        }
        return { kind: 'denied', denials: checked.denials, revision: checked.revision };
      }
    }
    if (assessment.decision) decisions.push(assessment.decision);
    const routed = await routing.requiredReviews(assessment.tier);
    if (routed.decision) decisions.push(routed.decision);
    const manifestJson = canonicalJson(stored);

    return db.transaction().execute(async (trx) => {
      const existing = await repo.findApp(trx, manifest.name, true);
      if (existing) {
        const mayChange =
          existing.owner === principal.email || existing.registered_by === principal.userId || isAdmin;
        if (!mayChange)
          throw conflict(`the name ${manifest.name} is taken by another app; choose another name`);
        if (existing.owner !== owner && !isAdmin)
          throw forbidden('only an admin can transfer an app to another owner');
        if (existing.manifest === manifestJson && !['rejected', 'changes_requested'].includes(existing.state))
          return { kind: 'unchanged' as const, app: await repo.view(trx, existing) };
      }
      const now = deps.clock?.nowIso() ?? nowIso();
      const appId = existing?.id ?? newId('app');
      const revision = existing ? Number(existing.revision) + 1 : 1;
      const previous = existing
        ? {
            state: existing.state as AppState,
            tier: existing.tier as Tier,
            risk: JSON.parse(
              (
                await trx
                  .selectFrom('risk_assessments')
                  .select('inputs')
                  .where('id', '=', existing.assessment_id)
                  .executeTakeFirstOrThrow()
              ).inputs,
            ) as RiskInput,
          }
        : null;
      const { state, carried } = nextState(
        routed.slots.length === 0,
        assessment.tier,
        previous,
        assessment.inputs,
      );
      const assessmentId = newId('assessment');
      const row = {
        owner,
        department,
        state,
        tier: assessment.tier,
        revision,
        manifest: manifestJson,
        assessment_id: assessmentId,
        required_reviews: JSON.stringify(routed.slots),
        updated_at: now,
      };
      if (existing) {
        await trx.updateTable('apps').set(row).where('id', '=', appId).execute();
      } else {
        await trx
          .insertInto('apps')
          .values({
            id: appId,
            name: manifest.name,
            registered_by: principal.userId,
            created_at: now,
            ...row,
          })
          .execute();
      }
      await trx
        .insertInto('risk_assessments')
        .values({
          id: assessmentId,
          app_id: appId,
          revision,
          score: assessment.score,
          tier: assessment.tier,
          factors: JSON.stringify(assessment.factors),
          inputs: JSON.stringify(assessment.inputs),
          rules_version: assessment.rulesVersion,
          created_at: now,
          manifest: manifestJson,
          approved_at: state === 'approved' ? now : null,
        })
        .execute();
      await repo.setDataClasses(trx, appId, manifest.dataClasses);
      await audit.record(trx, ctx, {
        action: existing ? 'app.reregistered' : 'app.registered',
        targetType: 'app',
        target: manifest.name,
        summary: {
          revision,
          owner,
          department,
          dataClasses: assessment.inputs.dataClasses,
          egress: assessment.inputs.egress,
          connectors: assessment.inputs.connectors,
          state,
          ...(previous ? { previousState: previous.state, previousTier: previous.tier } : {}),
          ...(carried ? { approvalCarried: 'no risk-relevant change and no higher tier' } : {}),
        },
      });
      await audit.record(trx, ctx, {
        action: 'risk.assessed',
        targetType: 'app',
        target: manifest.name,
        summary: {
          assessmentId,
          revision,
          score: assessment.score,
          tier: assessment.tier,
          factors: assessment.factors.map((f) => `${f.id} +${f.points}`),
          rulesVersion: assessment.rulesVersion,
        },
      });
      if (deps.decisionLog) await deps.decisionLog(trx, decisions, manifest.name, ctx.requestId);
      if (routed.slots.length === 0) {
        const reviewId = newId('review');
        await trx
          .insertInto('review_decisions')
          .values({
            id: reviewId,
            app_id: appId,
            revision,
            reviewer_id: 'policy',
            reviewer_email: `policy:${assessment.rulesVersion}`,
            specialty: null,
            decision: 'auto_approve',
            comment: 'low risk: approved automatically by policy',
            created_at: now,
          })
          .execute();
        await audit.record(
          trx,
          { ...ctx, actor: `policy:${assessment.rulesVersion}` },
          {
            action: 'approval.auto_approved',
            targetType: 'app',
            target: manifest.name,
            reason: `tier ${assessment.tier} needs no human review (${routed.rulesVersion})`,
            summary: { revision, reviewId, requestedBy: ctx.actor },
          },
        );
      }
      const app = await repo.viewByName(trx, manifest.name);
      return existing
        ? {
            kind: 'updated' as const,
            app,
            reReview: state === 'pending_review' && previous?.state === 'approved',
          }
        : { kind: 'created' as const, app };
    });
  }

  return { register, onRegistered };
}
