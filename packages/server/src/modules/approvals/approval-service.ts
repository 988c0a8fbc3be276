import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError, conflict, forbidden, notFound } from '../../errors.ts';
import { newId, nowIso as wallNowIso } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { AppView } from '../catalog/app-view.ts';
import type { CatalogRepository } from '../catalog/catalog-repository.ts';
import { hasRole, type Principal, type Specialty } from '../identity/principal.ts';
import type { Tier } from '../risk/risk-rules.ts';
import { openSlots, qualifiesFor, type ReviewSlot, slotFor } from './approval-rules.ts';

/** A reviewer's decision on the current revision of an app. */
export type Decision =
  | { kind: 'approve'; comment?: string }
  | { kind: 'reject'; reason: string }
  | { kind: 'request_changes'; comment: string };

/** Reviews: who may decide, which decision counts for which required review, and the resulting state. */
export function createApprovalService(deps: {
  db: Kysely<Database>;
  repo: CatalogRepository;
  audit: Pick<AuditService, 'record'>;
  clock?: Clock;
}) {
  const { db, repo, audit } = deps;
  const nowIso = () => deps.clock?.nowIso() ?? wallNowIso();

  /** Apps waiting for review; for a reviewer, only those they can still review. */
  async function pending(principal: Principal, mine: boolean): Promise<AppView[]> {
    const rows = await repo.list({ state: 'pending_review', limit: 500 });
    const views = await repo.viewMany(db, rows);
    if (!mine) return views;
    return views.filter(
      (v) =>
        v.owner !== principal.email &&
        slotFor(v.approval.missing, principal.specialties) !== undefined &&
        !v.approval.reviews.some((r) => r.revision === v.revision && r.reviewer === principal.email),
    );
  }

  async function decide(
    principal: Principal,
    name: string,
    decision: Decision,
    ctx: AuditContext,
  ): Promise<AppView> {
    if (!hasRole(principal, 'reviewer')) throw forbidden('only reviewers can decide on apps');
    return db.transaction().execute(async (trx) => {
      const app = await repo.findApp(trx, name, true);
      if (!app) throw notFound(`app ${name}`);
      if (app.owner === principal.email || app.registered_by === principal.userId)
        throw forbidden(`you cannot review ${name}: you own or registered it; another reviewer must decide`);
      if (app.state !== 'pending_review')
        throw conflict(`${name} is ${app.state.replace('_', ' ')}, not waiting for review`);
      const tier = app.tier as Tier;
      const required = JSON.parse(app.required_reviews) as ReviewSlot[];
      if (!qualifiesFor(required, principal.specialties)) {
        const needs = required.map((s) => `${s.specialty ?? 'any'} review`).join(' and ');
        const holds = principal.specialties.length ? principal.specialties.join(', ') : 'no specialty';
        throw forbidden(`${name} is a ${tier}-tier app and needs ${needs}; you hold ${holds}`);
      }
      const revision = Number(app.revision);
      const current = await trx
        .selectFrom('review_decisions')
        .selectAll()
        .where('app_id', '=', app.id)
        .where('revision', '=', revision)
        .execute();
      if (current.some((r) => r.reviewer_id === principal.userId))
        throw conflict(`you already reviewed revision ${revision} of ${name}`);
      const approvals = current
        .filter((r) => r.decision === 'approve')
        .map((r) => ({ reviewerId: r.reviewer_id, specialty: r.specialty as Specialty | null }));

      let specialty: Specialty | null = null;
      let state = app.state;
      let comment: string | null;
      switch (decision.kind) {
        case 'approve': {
          const open = openSlots(required, approvals);
          const slot = slotFor(open, principal.specialties);
          if (!slot)
            throw conflict(
              `the review your specialty covers on ${name} is already given; it still needs ${open
                .map((s) => `${s.specialty ?? 'any'} review`)
                .join(' and ')}`,
            );
          specialty = slot.specialty;
          comment = decision.comment ?? null;
          if (open.length === 1) state = 'approved';
          break;
        }
        case 'reject':
          comment = decision.reason;
          state = 'rejected';
          break;
        case 'request_changes':
          comment = decision.comment;
          state = 'changes_requested';
          break;
        default:
          decision satisfies never;
          throw new AppError('bad_request', 'unknown decision');
      }
      const id = newId('review');
      await trx
        .insertInto('review_decisions')
        .values({
          id,
          app_id: app.id,
          revision,
          reviewer_id: principal.userId,
          reviewer_email: principal.email,
          specialty,
          decision: decision.kind,
          comment,
          created_at: nowIso(),
        })
        .execute();
      if (state !== app.state)
        await trx.updateTable('apps').set({ state, updated_at: nowIso() }).where('id', '=', app.id).execute();
      // The revision's approval is complete: what later revisions are compared with.
      if (state === 'approved')
        await trx
          .updateTable('risk_assessments')
          .set({ approved_at: nowIso() })
          .where('app_id', '=', app.id)
          .where('revision', '=', revision)
          .execute();
      await audit.record(trx, ctx, {
        action: `approval.${decision.kind === 'approve' ? 'approved' : decision.kind === 'reject' ? 'rejected' : 'changes_requested'}`,
        targetType: 'app',
        target: name,
        reason: comment,
        summary: { reviewId: id, revision, tier, specialty, state },
      });
      return repo.viewByName(trx, name);
    });
  }

  return { pending, decide };
}

export type ApprovalService = ReturnType<typeof createApprovalService>;
