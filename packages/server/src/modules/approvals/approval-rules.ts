import type { Specialty } from '../identity/principal.ts';
import type { DecisionRecord } from '../risk/risk-evaluator.ts';
import type { Tier } from '../risk/risk-rules.ts';

/** One review an app needs: by a reviewer with this specialty, or by any reviewer when null. */
export type ReviewSlot = { specialty: Specialty | null };

/**
 * Which reviews each tier needs, as data: the interim rules. The Rego pack `microapp.approval`
 * takes this over (see policies/approval); the result is stored on the app when it is registered.
 */
export const approvalRules = {
  version: 'microapp-approval-rules/2026-11-28.1',
  slots: {
    low: [],
    medium: [{ specialty: null }],
    high: [{ specialty: 'security' }, { specialty: 'compliance' }],
  } satisfies Record<Tier, ReviewSlot[]>,
};

/** A review already given, as the slot filler sees it. */
export type GivenApproval = { reviewerId: string; specialty: Specialty | null };

/** The slots still open after the given approvals. */
export function openSlots(required: ReviewSlot[], given: GivenApproval[]): ReviewSlot[] {
  const open: ReviewSlot[] = [...required];
  for (const g of given) {
    const i = open.findIndex((s) => s.specialty === g.specialty);
    if (i >= 0) open.splice(i, 1);
  }
  return open;
}

/** The open slot a reviewer can fill, preferring a specialty slot over a general one. */
export function slotFor(open: ReviewSlot[], reviewerSpecialties: Specialty[]): ReviewSlot | undefined {
  return (
    open.find((s) => s.specialty !== null && reviewerSpecialties.includes(s.specialty)) ??
    open.find((s) => s.specialty === null)
  );
}

/** True when a reviewer could fill some required slot at all (filled or not). */
export function qualifiesFor(required: ReviewSlot[], reviewerSpecialties: Specialty[]): boolean {
  return required.some((s) => s.specialty === null || reviewerSpecialties.includes(s.specialty));
}

/** Decides which reviews a tier needs: the interim rules, or the Rego pack. */
export type ApprovalRouting = {
  requiredReviews(
    tier: Tier,
  ): Promise<{ slots: ReviewSlot[]; rulesVersion: string; decision?: DecisionRecord }>;
};

export const interimRouting: ApprovalRouting = {
  async requiredReviews(tier) {
    return { slots: approvalRules.slots[tier], rulesVersion: approvalRules.version };
  },
};
