import { canonicalJson } from '../../canonical-json.ts';
import type { AppsTable } from '../../db/schema.ts';
import type { ReviewSlot } from '../approvals/approval-rules.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { type RiskFactor, type RiskInput, tierRank } from '../risk/risk-evaluator.ts';
import type { Tier } from '../risk/risk-rules.ts';
import type { AppState, ReviewView } from './app-view.ts';
import type { PolicyDenial } from './catalog-policy.ts';
import type { Manifest } from './manifest-schema.ts';

// The catalog's rules that need no database: who sees an app, when a new revision keeps an approval, and
// what a tier means to the person registering.

/** Whether a principal may see an app: reviewers, admins and auditors see all; creators their department's and their own. */
export function canView(
  principal: Principal,
  app: Pick<AppsTable, 'department' | 'owner' | 'registered_by'> & { manifest?: string },
): boolean {
  if (hasRole(principal, 'reviewer', 'admin', 'auditor')) return true;
  return (
    (app.department !== null && app.department === principal.department) ||
    app.owner === principal.email ||
    app.registered_by === principal.userId ||
    // Someone the owner let in from elsewhere (audience.people), after a reviewed change.
    (app.manifest !== undefined && peopleOf(app.manifest).includes(principal.email))
  );
}

/** The people outside the department an app's manifest lets in. */
export function peopleOf(manifestJson: string): string[] {
  if (!manifestJson.includes('"people"')) return [];
  return (JSON.parse(manifestJson) as { audience?: { people?: string[] } }).audience?.people ?? [];
}

// What decides whether a new revision changes the risk: lifetimes and resources by their bands, so a
// re-registration with an unchanged manifest (or one from before resources counted) is not re-reviewed.
const canonicalRisk = (i: RiskInput) => {
  const { resources, ...rest } = i;
  const large = resources && (resources.memoryMb > 512 || resources.cpu > 1);
  return canonicalJson({
    ...rest,
    lifetimeDays: i.lifetimeDays > 90 ? 'long' : 'short',
    ...(large ? { resources: 'large' } : {}),
  });
};

/** The state a (re-)registration leaves the app in. */
export function nextState(
  automatic: boolean,
  tier: Tier,
  previous: { state: AppState; tier: Tier; risk: RiskInput } | null,
  risk: RiskInput,
): { state: AppState; carried: boolean } {
  if (automatic) return { state: 'approved', carried: false };
  if (
    previous?.state === 'approved' &&
    tierRank(tier) <= tierRank(previous.tier) &&
    canonicalRisk(previous.risk) === canonicalRisk(risk)
  )
    return { state: 'approved', carried: true };
  return { state: 'pending_review', carried: false };
}

/** A manifest's risk, scored but not recorded. */
export type Assessment = {
  tier: Tier;
  score: number;
  factors: RiskFactor[];
  rulesVersion: string;
  requiredReviews: ReviewSlot[];
  /** One sentence on what the tier means for the person registering the app. */
  meaning: string;
  /**
   * The longest the app runs before its owner renews it, in days: its tier's limit (MICROAPP_MAX_LIFETIME_DAYS),
   * or fewer when the manifest's `lifetime.expires` comes first. Null where the platform did not say.
   */
  lifetimeDays: number | null;
  /**
   * The policy's answer, as registering and then deploying would get it: allowed, or each deny rule's
   * message with the host it is about and, for a domain the organization blocked, the admin's reason.
   */
  policy: { revision: string | null; allowed: boolean; denials: PolicyDenial[] };
};

/** One registration of an app: the risk inputs it was scored on and the reviews given to it. */
export type RevisionView = {
  revision: number;
  tier: Tier;
  score: number;
  inputs: RiskInput;
  /** The answers registered (the whole manifest); null for revisions registered before they were kept. */
  manifest: Manifest | null;
  /** Its approval was complete (by policy, carried over, or the last review it needed). */
  approved: boolean;
  at: string;
  reviews: ReviewView[];
};

export function tierMeaning(tier: Tier, slots: ReviewSlot[]): string {
  if (slots.length === 0)
    return `A ${tier}-risk app is approved automatically: you can build and deploy it as soon as it is registered.`;
  const who = slots.map((s) => (s.specialty ? `a ${s.specialty} reviewer` : 'a reviewer')).join(' and ');
  return `A ${tier}-risk app needs ${who} to approve it before it can run; you will be told when they decide. Nobody reviews their own app.`;
}
