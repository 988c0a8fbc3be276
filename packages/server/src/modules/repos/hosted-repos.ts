import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { ChangeRequestsTable } from '../../db/schema-repos.ts';
import { AppError } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { AppView } from '../catalog/app-view.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { findUserByEmail, principalFor } from '../identity/users.ts';
import type { ChangeService } from './change-service.ts';
import type { HostEvent } from './host-webhooks.ts';
import { type GitHost, GitHostError, type HostRepository } from './hosts/git-host.ts';
import { type CommitIdentity, mainBranch, type RepoStore } from './repo-store.ts';

/** What a webhook delivery did, as its answer says (hosts show it in their delivery log). */
export type WebhookOutcome = { handled: boolean; detail: string; change?: number };

/**
 * Apps whose repositories live at the company's GitHub or GitLab (MICROAPP_GIT_HOST). The platform makes
 * each from the company's template repository and fills in the registered answers; it keeps a copy it
 * fetches at every webhook, so it reads, diffs and builds the company's commits with the same code as its
 * own repositories. A pull (merge) request into main is a change request: the platform runs its checks and
 * reports them as the `microapp/pipeline` commit status, the tier's rule decides, and the platform merges
 * it through the host's API (naming the head it checked), then builds, signs and deploys the merge commit.
 */
export function createHostedRepos(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  store: RepoStore;
  host: GitHost;
  /** The host's API address: its repositories must be cloned from the same host, which gets the token. */
  apiUrl: string;
  /** Plain http to the host (a stand-in on loopback); https otherwise. */
  plainHttp: boolean;
  publicUrl: () => string;
  changes: () => Pick<ChangeService, 'pushed'>;
}) {
  const { db, store, host } = deps;
  const remote = { authorization: host.gitAuthorization(), plainHttp: deps.plainHttp };
  // One fetch at a time per app: two at once (a webhook and a merge) would race for the same refs.
  const fetching = new Map<string, Promise<unknown>>();
  const fetchCopy = (appId: string, cloneUrl: string) => {
    const run = (fetching.get(appId) ?? Promise.resolve())
      .catch(() => {})
      .then(() => store.fetchFrom(appId, cloneUrl, remote));
    fetching.set(appId, run);
    return run.finally(() => {
      if (fetching.get(appId) === run) fetching.delete(appId);
    });
  };
  const hostName = host.kind === 'github' ? 'GitHub' : 'GitLab';

  async function repoOf(appId: string): Promise<HostRepository | null> {
    const row = await db
      .selectFrom('app_repos')
      .select(['host', 'host_repo'])
      .where('app_id', '=', appId)
      .executeTakeFirst();
    return row?.host && row.host_repo ? (JSON.parse(row.host_repo) as HostRepository) : null;
  }

  /**
   * Makes the app's repository at the host from its template's repository, then commits the registered
   * answers and the template's files filled in for the app on top of main, as the platform's own
   * repositories start. Returns the repository and main's commit; the local copy follows it.
   */
  async function create(
    app: AppView,
    files: Record<string, string>,
    message: string,
    author: CommitIdentity,
  ): Promise<{ repo: HostRepository; commit: string }> {
    try {
      return await make(app, files, message, author);
    } catch (e) {
      if (e instanceof AppError) throw e;
      throw new AppError(
        'unavailable',
        `${hostName} did not make ${app.name}'s repository (${(e as Error).message}); it is tried again at its next use`,
      );
    }
  }

  async function make(
    app: AppView,
    files: Record<string, string>,
    message: string,
    author: CommitIdentity,
  ): Promise<{ repo: HostRepository; commit: string }> {
    const repo = await host.createRepository({
      name: app.name,
      description: app.manifest.purpose,
      template: app.manifest.template?.name ?? 'empty',
    });
    if (!sameHost(repo.cloneUrl))
      throw new AppError(
        'unavailable',
        `${hostName} named ${repo.cloneUrl.slice(0, 100)} as the repository's address, which is not ${hostName}'s own: the platform's token goes nowhere else`,
      );
    if (repo.defaultBranch !== mainBranch)
      throw new AppError(
        'conflict',
        `${hostName} made ${repo.id} with the default branch ${repo.defaultBranch}; the template repository's default branch must be ${mainBranch}`,
      );
    // A repository made from a template fills in a moment after the host answers.
    for (let attempt = 0; ; attempt++) {
      await fetchCopy(app.id, repo.cloneUrl);
      if (await store.head(app.id)) break;
      if (attempt >= 20) throw new Error(`${hostName} made ${repo.id}, but its main branch never appeared`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const main = (await store.head(app.id))!;
    const commit = await store.commitFiles(app.id, main, files, message, author);
    await store.pushTo(app.id, repo.cloneUrl, remote, commit, mainBranch);
    await store.setBranch(app.id, mainBranch, commit, main);
    return { repo, commit };
  }

  /** The app's owner, for whom the platform acts on a pull request: its checks and release run as theirs. */
  const ownerOf = async (email: string, app: string) => {
    const user = await findUserByEmail(db, email);
    if (!user) throw new Error(`${email}, the owner of ${app}, is not a user of the platform`);
    return principalFor(user, ['apps:read', 'apps:write'], {
      kind: 'token',
      tokenId: `${host.kind}:webhook`,
    });
  };

  const openChangeFor = (appId: string, branch: string) =>
    db
      .selectFrom('change_requests')
      .selectAll()
      .where('app_id', '=', appId)
      .where('branch', '=', branch)
      .where('state', '=', 'open')
      .executeTakeFirst();

  const link = (cr: { id: string }, number: number, url: string) =>
    db
      .updateTable('change_requests')
      .set({ host_number: number, host_url: url })
      .where('id', '=', cr.id)
      .execute();

  /** Reports a change's checks to the host, beside the pull request; a failure to report is logged by the caller. */
  async function report(
    app: { id: string; name: string },
    cr: ChangeRequestsTable,
    state: 'pending' | 'passed' | 'failed',
    description: string,
  ) {
    const repo = await repoOf(app.id);
    if (!repo) return;
    await host.reportCheck(repo, {
      commit: cr.head_commit,
      state,
      description,
      url: `${deps.publicUrl()}/apps/${app.name}/changes/${cr.number}`,
    });
  }

  /**
   * Whether a clone URL is on the host the API is (github.com for api.github.com): git sends the platform's
   * token with every request, so it goes to that host only.
   */
  function sameHost(cloneUrl: string) {
    try {
      const clone = new URL(cloneUrl);
      const api = new URL(deps.apiUrl);
      const expected = api.hostname === 'api.github.com' ? 'github.com' : api.hostname;
      return (
        clone.hostname === expected &&
        (clone.protocol === 'https:' || (deps.plainHttp && clone.protocol === 'http:')) &&
        !clone.username &&
        !clone.password
      );
    } catch {
      return false;
    }
  }

  /** Fetches the host's branches into the local copy (made when this replica has none). */
  async function sync(appId: string) {
    const repo = await repoOf(appId);
    if (repo) await fetchCopy(appId, repo.cloneUrl);
  }

  /** One verified webhook delivery: a pull (merge) request into main opened, moved, closed or merged. */
  async function delivered(event: HostEvent): Promise<WebhookOutcome> {
    const row = await db
      .selectFrom('app_repos')
      .select(['app_id', 'app_name', 'host_repo'])
      .where('host', '=', host.kind)
      .where('host_repo_id', '=', event.repoId)
      .executeTakeFirst();
    if (!row?.host_repo) return { handled: false, detail: `no app's repository is ${event.repoId}` };
    const repo = JSON.parse(row.host_repo) as HostRepository;
    if (event.base !== repo.defaultBranch)
      return { handled: false, detail: `only requests into ${repo.defaultBranch} are change requests` };
    const owner = await db
      .selectFrom('apps')
      .select('owner')
      .where('id', '=', row.app_id)
      .executeTakeFirstOrThrow();
    const principal = await ownerOf(owner.owner, row.app_name);
    const app = await deps.catalog.get(principal, row.app_name, { scorecard: false });
    const ctx: AuditContext = { actor: `${event.sender}@${host.kind}` };
    const open = await openChangeFor(app.id, event.branch);
    // Closed at the host (merged there or not): the change request closes, as when its branch is deleted.
    const close = (cr: ChangeRequestsTable) =>
      deps
        .changes()
        .pushed(
          principal,
          app,
          [{ ref: `refs/heads/${event.branch}`, before: cr.head_commit, after: null }],
          ctx,
        );
    if (event.action === 'merged') {
      if (!open) return { handled: true, detail: 'merged by the platform' };
      // Merged at the host by a person, outside the tier's rule: the platform ships nothing of it.
      await close(open);
      await deps.db.transaction().execute((trx) =>
        deps.audit.record(trx, ctx, {
          action: 'change.merged_at_host',
          targetType: 'app',
          target: app.name,
          reason: `${event.sender} merged it at ${hostName}, outside the platform's rule; nothing of it ships`,
          summary: { change: open.number, hostNumber: event.number, head: event.head },
        }),
      );
      return {
        handled: true,
        detail: 'merged at the host outside the rule: closed, nothing ships',
        change: Number(open.number),
      };
    }
    if (event.action === 'closed') {
      if (open) await close(open);
      return { handled: true, detail: 'closed' };
    }
    await fetchCopy(app.id, repo.cloneUrl);
    const head = await store.head(app.id, event.branch);
    if (!head) return { handled: false, detail: `${event.branch} is not at ${hostName} any more` };
    if (open && open.head_commit === head) {
      // The platform opened it (the console's Deploy), or the host said it twice: it is checked already.
      await link(open, event.number, event.url);
      return { handled: true, detail: 'already checking this commit', change: Number(open.number) };
    }
    const [cr] = await deps
      .changes()
      .pushed(
        principal,
        app,
        [{ ref: `refs/heads/${event.branch}`, before: open?.head_commit ?? null, after: head }],
        ctx,
      );
    if (!cr) return { handled: false, detail: 'no change request was opened' };
    await link(cr, event.number, event.url);
    await report(app, cr, 'pending', 'microapp is checking this commit').catch(() => {});
    return { handled: true, detail: `checking ${head.slice(0, 12)}`, change: Number(cr.number) };
  }

  /** A change's check build finished: its result goes to the host beside the pull request. */
  async function checked(buildId: string) {
    const cr = await db
      .selectFrom('change_requests')
      .selectAll()
      .where('check_build_id', '=', buildId)
      .where('host_number', 'is not', null)
      .executeTakeFirst();
    if (!cr) return;
    const build = await db
      .selectFrom('builds')
      .select(['state', 'error'])
      .where('id', '=', buildId)
      .executeTakeFirstOrThrow();
    const passed = build.state === 'passed';
    await report(
      { id: cr.app_id, name: cr.app_name },
      cr,
      passed ? 'passed' : 'failed',
      passed ? 'tests, SBOM, scan, licenses and policy passed' : (build.error ?? 'the pipeline failed'),
    );
  }

  /** Merges the change at the host, naming the head the platform checked; the local copy follows. */
  async function merge(appId: string, cr: ChangeRequestsTable, message: string) {
    const repo = await repoOf(appId);
    if (!repo || cr.host_number === null)
      throw new Error(`change #${cr.number} has no pull request at ${hostName} to merge`);
    try {
      const { commit } = await host.merge(repo, { number: cr.host_number, head: cr.head_commit }, message);
      // Merged at the host: the copy must hold the merge commit before it is built.
      for (let attempt = 0; ; attempt++) {
        await fetchCopy(appId, repo.cloneUrl).catch(() => {});
        if (await store.isAncestor(appId, commit, 'refs/heads/main').catch(() => false)) break;
        if (attempt >= 10)
          throw new Error(`${hostName} merged it as ${commit}, but the platform could not fetch that commit`);
        await new Promise((r) => setTimeout(r, 500));
      }
      return { commit, fastForward: false };
    } catch (e) {
      if (e instanceof GitHostError && (e.kind === 'not_mergeable' || e.kind === 'head_moved'))
        throw new Error(`${e.message}: bring the branch up to date with main at ${hostName} and push again`);
      throw e;
    }
  }

  /** The console's Deploy on a hosted app: its branch goes to the host as a pull request. */
  async function opened(app: AppView, cr: ChangeRequestsTable, body: string) {
    const repo = await repoOf(app.id);
    if (!repo) return;
    await store.pushTo(app.id, repo.cloneUrl, remote, cr.head_commit, cr.branch);
    const change = await host.openChange(repo, { branch: cr.branch, title: cr.title, body });
    await link(cr, change.number, change.url);
  }

  return { kind: host.kind, hostName, repoOf, sync, create, delivered, checked, merge, opened };
}

export type HostedRepos = ReturnType<typeof createHostedRepos>;
