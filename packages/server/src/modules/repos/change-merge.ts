import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { ChangeRequestsTable } from '../../db/schema-repos.ts';
import type { AgentGit } from '../agents/agent-git.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { BuildService } from '../builds/build-service.ts';
import { emailsWithRole } from '../identity/users.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { ChangeState } from './change-state.ts';
import { ruleOf } from './change-view.ts';
import type { HostedRepos } from './hosted-repos.ts';
import type { RepoService } from './repo-service.ts';
import { MergeConflict, type RepoStore } from './repo-store.ts';

/**
 * The tier's rule in action: merges a change whose checks passed and whose reviews are complete, then
 * starts the build that signs, publishes and deploys the merged commit.
 */
export function createChangeMerger(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  store: RepoStore;
  repos: Pick<RepoService, 'sourceUrl' | 'holdCommit'>;
  builds: Pick<BuildService, 'request'>;
  notifications?: Pick<NotificationService, 'notify'>;
  publicUrl: () => string;
  state: ChangeState;
  agents: () => Pick<AgentGit, 'spend'> | null;
  hosted: () => Pick<HostedRepos, 'merge'> | null;
}) {
  const { db, store, audit } = deps;
  const { authorOf, appFor, state, buildCommit } = deps.state;
  const system: AuditContext = { actor: 'microapp' };

  /**
   * Merges a change whose checks passed and whose reviews are complete, then starts the build that signs,
   * publishes and deploys the merged commit. Safe to call at any time: it does nothing otherwise.
   */
  async function settle(id: string, ctx: AuditContext = system, by?: string) {
    const cr = await db.selectFrom('change_requests').selectAll().where('id', '=', id).executeTakeFirst();
    if (cr?.state !== 'open') return;
    const author = await authorOf(cr).catch(() => null);
    if (!author) return;
    const app = await appFor(author, cr.app_name).catch(() => null);
    if (!app) return;
    const s = await state(cr, app);
    const checksPassed = s.checks.every((c) => c.state === 'passed');
    const changesRequested = s.current.some((r) => r.decision === 'changes_requested');
    if (!checksPassed || changesRequested) return;
    if (s.missing.length > 0) {
      // Checks are green and people must decide now: tell the reviewers who can.
      for (const reviewer of await emailsWithRole(db, 'reviewer'))
        if (reviewer !== cr.opened_by && reviewer !== app.owner)
          await deps.notifications?.notify(db, {
            recipient: reviewer,
            app: app.name,
            kind: 'change_review',
            subject: `${app.name}: change #${cr.number} waits for your review`,
            body: `"${cr.title}" by ${cr.opened_by} passed its checks and needs ${s.missing.map((m) => m.specialty ?? 'a reviewer').join(' and ')} (${app.tier} tier).`,
            action: `${deps.publicUrl()}/apps/${app.name}/changes/${cr.number}`,
            dedupeKey: `change-review-wanted:${cr.id}:${cr.head_commit}:${reviewer}`,
          });
      return;
    }
    // What an agent pushed merges only once its person confirmed that commit (tier's reviews or not).
    const confirmation = s.confirmation;
    if (confirmation && confirmation.state !== 'confirmed') return;
    // Claim the merge first, so two replicas (or a review and a finished check at once) merge it once.
    const claimed = await db
      .updateTable('change_requests')
      .set({ state: 'merged', updated_at: deps.clock.nowIso() })
      .where('id', '=', cr.id)
      .where('state', '=', 'open')
      .where('head_commit', '=', cr.head_commit)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) === 0) return;
    const mergedBy =
      by ??
      `microapp (${app.approval.required.length ? 'reviews complete' : 'low tier, checks passed'}${
        confirmation ? `; ${confirmation.person} confirmed what ${confirmation.agent} pushed` : ''
      })`;
    let merged: { commit: string; fastForward: boolean };
    try {
      const message = `Merge change #${cr.number}: ${cr.title}`;
      // A pull request at the company's host merges there, through its API; the local copy follows.
      const hosted = cr.host_number !== null ? deps.hosted() : null;
      if (cr.host_number !== null && !hosted)
        throw new Error('this change is a pull request at a git host the platform is no longer set up for');
      merged = hosted
        ? await hosted.merge(app.id, cr, message)
        : await store.merge(app.id, cr.head_commit, message, { name: author.name, email: author.email });
    } catch (e) {
      const why =
        e instanceof MergeConflict
          ? `${e.message}: merge main into ${cr.branch} and push again`
          : (e as Error).message;
      await db
        .updateTable('change_requests')
        .set({ state: 'open', check_error: why, updated_at: deps.clock.nowIso() })
        .where('id', '=', cr.id)
        .execute();
      return;
    }
    const now = deps.clock.nowIso();
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('change_requests')
        .set({ merged_commit: merged.commit, merged_by: mergedBy, closed_at: now, updated_at: now })
        .where('id', '=', cr.id)
        .execute();
      if (confirmation?.checkpoint) await deps.agents()?.spend(confirmation.checkpoint, trx);
      await audit.record(trx, ctx, {
        action: 'change.merged',
        targetType: 'app',
        target: app.name,
        summary: {
          change: cr.number,
          branch: cr.branch,
          head: cr.head_commit,
          commit: merged.commit,
          fastForward: merged.fastForward,
          rule: ruleOf(app),
          approvals: s.current.filter((r) => r.decision === 'approved').map((r) => r.reviewer),
          checkBuild: cr.check_build_id,
          ...(confirmation
            ? {
                agent: confirmation.agent,
                model: confirmation.model,
                confirmedBy: confirmation.person,
                checkpoint: confirmation.checkpoint,
              }
            : {}),
        },
      });
    });
    // The merged commit is what ships: built again (a merge commit was never checked), signed and deployed.
    await ship({ ...cr, state: 'merged', merged_commit: merged.commit }, ctx);
  }

  /** Starts the build that signs, publishes and deploys a merged change (or leaves it waiting for the builder). */
  async function ship(cr: ChangeRequestsTable, ctx: AuditContext = system) {
    const author = await authorOf(cr).catch((e: Error) => e);
    const app = author instanceof Error ? null : await appFor(author, cr.app_name).catch(() => null);
    const { build, problem } =
      author instanceof Error || !app
        ? { build: null, problem: author instanceof Error ? author.message : `${cr.app_name} cannot be read` }
        : await buildCommit(author, app, cr, cr.merged_commit!, true, ctx);
    await db
      .updateTable('change_requests')
      .set({ release_build_id: build, check_error: problem, updated_at: deps.clock.nowIso() })
      .where('id', '=', cr.id)
      .execute();
  }

  return { settle, ship };
}
