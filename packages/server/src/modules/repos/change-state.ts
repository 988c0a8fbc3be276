import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import type { ChangeRequestsTable } from '../../db/schema-repos.ts';
import { AppError, forbidden } from '../../errors.ts';
import type { AgentGit } from '../agents/agent-git.ts';
import { openSlots } from '../approvals/approval-rules.ts';
import type { AuditContext } from '../audit/audit-service.ts';
import type { BuildService } from '../builds/build-service.ts';
import type { AppView } from '../catalog/app-view.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { Principal } from '../identity/principal.ts';
import { findUserById, principalFor } from '../identity/users.ts';
import { type BuildRow, type CheckView, checksOf, type MergeConfirmation } from './change-view.ts';
import type { RepoService } from './repo-service.ts';
import { mainBranch, type RepoStore } from './repo-store.ts';

/** The next change request number of a repository (1, 2, …), read in the transaction that inserts it. */
export async function nextChangeNumber(trx: Kysely<Database>, repositoryId: string): Promise<number> {
  const last = await trx
    .selectFrom('change_requests')
    .select((eb) => eb.fn.max('number').as('n'))
    .where('app_id', '=', repositoryId)
    .executeTakeFirst();
  return Number(last?.n ?? 0) + 1;
}

/**
 * Where a change request stands, read from the database and its repository: its builds, its reviews on the
 * head commit, the slots still open, and whether its version can still be published. Shared by the change
 * service (people's actions) and the merger (the rule's).
 */
export function createChangeState(deps: {
  db: Kysely<Database>;
  store: RepoStore;
  catalog: Pick<CatalogService, 'get'>;
  builds: Pick<BuildService, 'request'>;
  repos: Pick<RepoService, 'sourceUrl' | 'holdCommit'>;
  /** Agents at the git server, once the platform runs them (null: agents' tokens are refused there). */
  agents: () => Pick<AgentGit, 'confirmation'> | null;
}) {
  const { db, store } = deps;

  /** The person's confirmation a change pushed by an agent waits for; null when a person pushed it. */
  async function confirmationOf(cr: ChangeRequestsTable): Promise<MergeConfirmation | null> {
    if (!cr.agent_delegation_id) return null;
    const agents = deps.agents();
    if (agents) return agents.confirmation(cr);
    // Pushed by an agent while agents ran; without them nobody can confirm, so it keeps waiting.
    return {
      person: cr.opened_by,
      agent: 'an agent',
      model: null,
      checkpoint: null,
      state: 'waiting',
      note: 'agents are not enabled on this platform now',
      url: null,
    };
  }

  const find = (appId: string, number: number) =>
    db
      .selectFrom('change_requests')
      .selectAll()
      .where('app_id', '=', appId)
      .where('number', '=', number)
      .executeTakeFirst();

  const buildOf = async (id: string | null): Promise<BuildRow | null> =>
    id
      ? ((await db
          .selectFrom('builds')
          .select(['id', 'state', 'error', 'version', 'digest', 'steps'])
          .where('id', '=', id)
          .executeTakeFirst()) ?? null)
      : null;

  const reviewsOf = (cr: ChangeRequestsTable) =>
    db
      .selectFrom('change_reviews')
      .selectAll()
      .where('change_id', '=', cr.id)
      .orderBy('created_at', 'asc')
      .execute();

  async function versionProblem(app: AppView, commit: string): Promise<string | null> {
    const text = await store.readFile(app.id, commit, 'package.json');
    if (text === null) return 'the commit has no package.json: an app needs one, with its name and version';
    let version: unknown;
    try {
      version = (JSON.parse(text) as { version?: unknown }).version;
    } catch {
      return 'package.json is not valid JSON';
    }
    if (typeof version !== 'string' || !version) return 'package.json names no version';
    const taken = await db
      .selectFrom('app_versions')
      .select('version')
      .where('app_id', '=', app.id)
      .where('version', '=', version)
      .executeTakeFirst();
    return taken
      ? `version ${version} of ${app.name} is already published: raise "version" in package.json (and package-lock.json) and push again`
      : null;
  }

  /** The person who opened a change, as the platform acts for them (its check and release builds). */
  async function authorOf(cr: ChangeRequestsTable): Promise<Principal> {
    const user = await findUserById(db, cr.opened_by_id);
    if (!user || user.disabled)
      throw forbidden(
        `${cr.opened_by}, who opened the change, can no longer sign in; push it again as the owner`,
      );
    return principalFor(user, ['apps:read', 'apps:write'], { kind: 'token', tokenId: `change:${cr.id}` });
  }

  async function appFor(principal: Principal, name: string) {
    return deps.catalog.get(principal, name, { scorecard: false });
  }

  async function state(cr: ChangeRequestsTable, app: AppView) {
    const [checkBuild, releaseBuild, reviews, confirmation] = await Promise.all([
      buildOf(cr.check_build_id),
      buildOf(cr.release_build_id),
      reviewsOf(cr),
      confirmationOf(cr),
    ]);
    const current = reviews.filter((r) => r.head_commit === cr.head_commit);
    const given = current
      .filter((r) => r.decision === 'approved')
      .map((r) => ({
        reviewerId: r.reviewer_id,
        specialty: (r.specialty ?? null) as 'security' | 'compliance' | null,
      }));
    const missing = openSlots(app.approval.required, given);
    const checks: CheckView[] = checksOf(cr, checkBuild);
    return { checkBuild, releaseBuild, reviews, current, missing, checks, confirmation };
  }

  /** Whether a build of the app is queued or running (an app builds one thing at a time). */
  const busy = async (appId: string) =>
    (await db
      .selectFrom('builds')
      .select('id')
      .where('app_id', '=', appId)
      .where('state', 'in', ['queued', 'running'])
      .executeTakeFirst()) !== undefined;

  /**
   * Starts the build of a change's commit: its check (no publishing), or the release of its merge (signed,
   * published, deployed). While the app's builder is busy nothing starts and nothing fails: the change
   * waits, and starts when that build ends (`resume` in change-service.ts).
   */
  async function buildCommit(
    principal: Principal,
    app: AppView,
    cr: ChangeRequestsTable,
    commit: string,
    release: boolean,
    ctx: AuditContext,
  ): Promise<{ build: string | null; problem: string | null }> {
    await deps.repos.holdCommit(app, commit).catch(() => {});
    const problem = await versionProblem(app, commit);
    if (problem) return { build: null, problem };
    if (await busy(app.id)) return { build: null, problem: null };
    try {
      const build = await deps.builds.request(
        principal,
        app.name,
        {
          kind: 'commit',
          archive: await store.archive(app.id, commit),
          commit,
          ref: `refs/heads/${release ? mainBranch : cr.branch}`,
          repository: await deps.repos.sourceUrl(app),
          change: cr.number,
          publish: release,
          deploy: release,
        },
        ctx,
      );
      return { build: build.id, problem: null };
    } catch (e) {
      if (e instanceof AppError && e.code === 'conflict' && (await busy(app.id)))
        return { build: null, problem: null };
      return { build: null, problem: (e as Error).message };
    }
  }

  return { find, buildOf, reviewsOf, versionProblem, authorOf, appFor, state, buildCommit };
}

export type ChangeState = ReturnType<typeof createChangeState>;
