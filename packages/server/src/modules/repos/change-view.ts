import type { Database } from '../../db/schema.ts';
import type { ChangeRequestsTable, ChangeReviewsTable } from '../../db/schema-repos.ts';
import type { ReviewSlot } from '../approvals/approval-rules.ts';
import type { AppView } from '../catalog/app-view.ts';
import type { CommitInfo, DiffView } from './repo-store.ts';

/** The columns of a build a change request shows. */
export type BuildRow = Pick<Database['builds'], 'id' | 'state' | 'error' | 'version' | 'digest' | 'steps'>;

export type CheckView = {
  name: 'pipeline';
  state: 'pending' | 'passed' | 'failed';
  detail: string;
  build: string | null;
};

/** Where the person stands on merging what their agent pushed: such a change waits until they confirm. */
export type MergeConfirmation = {
  person: string;
  agent: string;
  model: string | null;
  /** The request the person answers (`microapp agents approve …`, or the console's Agents page). */
  checkpoint: string | null;
  state: 'waiting' | 'confirmed' | 'refused' | 'expired';
  note: string | null;
  url: string | null;
};

export type ChangeView = {
  app: string;
  number: number;
  title: string;
  branch: string;
  state: 'open' | 'merged' | 'closed';
  base: string;
  head: string;
  openedBy: string;
  createdAt: string;
  updatedAt: string;
  /** The pipeline on the head commit (tests, SBOM, scan, licenses, policy), without publishing. */
  checks: CheckView[];
  /** Who must approve, as the app's tier says, and who did (on the head commit). */
  rule: string;
  reviews: {
    required: ReviewSlot[];
    missing: ReviewSlot[];
    given: {
      reviewer: string;
      specialty: string | null;
      decision: string;
      comment: string | null;
      head: string;
      at: string;
    }[];
  };
  /** The pull (merge) request it stands for, when the repository lives at GitHub or GitLab. */
  hostChange: { number: number; url: string } | null;
  /** Set when an agent pushed the head commit: its person must confirm the merge, beside the tier's rule. */
  confirmation: MergeConfirmation | null;
  /** Why the change is stuck, when something other than a check or a review holds it. */
  problem: string | null;
  merged: { commit: string; by: string } | null;
  /** The build that signs, publishes and deploys the merged commit. */
  release: {
    build: string;
    state: string;
    version: string | null;
    digest: string | null;
    error: string | null;
  } | null;
  cloneUrl: string;
  commits?: CommitInfo[];
  diff?: DiffView;
  manifest?: { changed: boolean; before: string | null; after: string | null };
};

/** What the app's tier asks of a change before it merges. */
export function ruleOf(app: AppView): string {
  const slots = app.approval.required;
  if (slots.length === 0) return `${app.tier} tier: merged automatically once the checks pass`;
  return `${app.tier} tier: merged once the checks pass and ${slots
    .map((s) => (s.specialty ? `a ${s.specialty} reviewer` : 'a reviewer'))
    .join(' and ')} approve${slots.length === 1 ? 's' : ''}`;
}

/** The change's checks, from its check build (or why none could run). */
export function checksOf(cr: ChangeRequestsTable, build: BuildRow | null): CheckView[] {
  if (!build)
    return [
      {
        name: 'pipeline',
        state: cr.check_error ? 'failed' : 'pending',
        detail: cr.check_error ?? 'waiting to start',
        build: null,
      },
    ];
  const steps = JSON.parse(build.steps) as { step: string; status: string }[];
  const state = build.state === 'passed' ? 'passed' : build.state === 'failed' ? 'failed' : 'pending';
  return [
    {
      name: 'pipeline',
      state,
      detail:
        state === 'passed'
          ? `${steps
              .filter((s) => s.status === 'passed')
              .map((s) => s.step)
              .join(', ')} passed; nothing is published until the change merges`
          : state === 'failed'
            ? (build.error ?? 'the pipeline failed')
            : `${build.state}: ${steps.length} step(s) done`,
      build: build.id,
    },
  ];
}

export function changeView(
  cr: ChangeRequestsTable,
  app: AppView,
  s: {
    checks: CheckView[];
    missing: ReviewSlot[];
    reviews: ChangeReviewsTable[];
    releaseBuild: BuildRow | null;
    confirmation: MergeConfirmation | null;
  },
  cloneUrl: string,
): ChangeView {
  const r = s.releaseBuild;
  return {
    app: cr.app_name,
    number: Number(cr.number),
    title: cr.title,
    branch: cr.branch,
    state: cr.state as ChangeView['state'],
    base: cr.base_commit,
    head: cr.head_commit,
    openedBy: cr.opened_by,
    createdAt: cr.created_at,
    updatedAt: cr.updated_at,
    checks: s.checks,
    rule: ruleOf(app),
    reviews: {
      required: app.approval.required,
      missing: cr.state === 'open' ? s.missing : [],
      given: s.reviews.map((v) => ({
        reviewer: v.reviewer,
        specialty: v.specialty,
        decision: v.decision,
        comment: v.comment,
        head: v.head_commit,
        at: v.created_at,
      })),
    },
    hostChange: cr.host_number !== null ? { number: Number(cr.host_number), url: cr.host_url ?? '' } : null,
    confirmation: s.confirmation,
    problem: cr.check_build_id || cr.state === 'merged' ? cr.check_error : null,
    merged: cr.merged_commit ? { commit: cr.merged_commit, by: cr.merged_by ?? '' } : null,
    release: r ? { build: r.id, state: r.state, version: r.version, digest: r.digest, error: r.error } : null,
    cloneUrl,
  };
}
