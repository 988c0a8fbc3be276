import type { AppsTable, ReviewDecisionsTable, RiskAssessmentsTable } from '../../db/schema.ts';
import { openSlots, type ReviewSlot } from '../approvals/approval-rules.ts';
import type { Specialty } from '../identity/principal.ts';
import type { Scorecard } from '../lifecycle/scorecard.ts';
import type { RiskFactor } from '../risk/risk-evaluator.ts';
import type { Tier } from '../risk/risk-rules.ts';
import type { LifecycleFacts } from './catalog-lifecycle.ts';
import type { Manifest } from './manifest-schema.ts';

export const appStates = ['pending_review', 'approved', 'rejected', 'changes_requested'] as const;
export type AppState = (typeof appStates)[number];

export type ReviewView = {
  id: string;
  reviewer: string;
  specialty: Specialty | null;
  decision: 'approve' | 'reject' | 'request_changes' | 'auto_approve';
  comment: string | null;
  revision: number;
  at: string;
};

/** An app as the API returns it: the record, its current risk assessment and where its approval stands. */
export type AppView = {
  id: string;
  name: string;
  owner: string;
  department: string | null;
  state: AppState;
  tier: Tier;
  revision: number;
  manifest: Manifest;
  createdAt: string;
  updatedAt: string;
  assessment: {
    id: string;
    score: number;
    tier: Tier;
    factors: RiskFactor[];
    rulesVersion: string;
    at: string;
  };
  approval: { required: ReviewSlot[]; missing: ReviewSlot[]; reviews: ReviewView[] };
  /** Governance health (SBOM, findings, owner, pipeline, expiry, access policy), when the platform computes it. */
  scorecard?: Scorecard;
};

/**
 * An app as a catalog row shows it (`GET /api/v1/apps?view=summary`): no manifest, assessment or reviews,
 * so that a page of a large catalog is quick to read, send and draw.
 */
export type AppSummary = {
  id: string;
  name: string;
  owner: string;
  department: string | null;
  state: AppState;
  tier: Tier;
  revision: number;
  purpose: string;
  dataClasses: string[];
  updatedAt: string;
  scorecard?: Scorecard;
} & Partial<LifecycleFacts>;

export function toAppSummary(app: AppsTable, scorecard?: Scorecard): AppSummary {
  const manifest = JSON.parse(app.manifest) as Manifest;
  return {
    id: app.id,
    name: app.name,
    owner: app.owner,
    department: app.department,
    state: app.state as AppState,
    tier: app.tier as Tier,
    revision: app.revision,
    purpose: manifest.purpose,
    dataClasses: manifest.dataClasses,
    updatedAt: app.updated_at,
    ...(scorecard ? { scorecard } : {}),
  };
}

export function toReviewView(r: ReviewDecisionsTable): ReviewView {
  return {
    id: r.id,
    reviewer: r.reviewer_email,
    specialty: r.specialty as Specialty | null,
    decision: r.decision as ReviewView['decision'],
    comment: r.comment,
    revision: r.revision,
    at: r.created_at,
  };
}

export function toAppView(
  app: AppsTable,
  assessment: RiskAssessmentsTable,
  reviews: ReviewDecisionsTable[],
): AppView {
  const tier = app.tier as Tier;
  const current = reviews.filter((r) => r.revision === app.revision);
  const approvals = current
    .filter((r) => r.decision === 'approve')
    .map((r) => ({ reviewerId: r.reviewer_id, specialty: r.specialty as Specialty | null }));
  const required = JSON.parse(app.required_reviews) as ReviewSlot[];
  return {
    id: app.id,
    name: app.name,
    owner: app.owner,
    department: app.department,
    state: app.state as AppState,
    tier,
    revision: Number(app.revision),
    manifest: JSON.parse(app.manifest) as Manifest,
    createdAt: app.created_at,
    updatedAt: app.updated_at,
    assessment: {
      id: assessment.id,
      score: Number(assessment.score),
      tier: assessment.tier as Tier,
      factors: JSON.parse(assessment.factors) as RiskFactor[],
      rulesVersion: assessment.rules_version,
      at: assessment.created_at,
    },
    approval: {
      required,
      missing: app.state === 'pending_review' ? openSlots(required, approvals) : [],
      reviews: reviews.map(toReviewView),
    },
  };
}
