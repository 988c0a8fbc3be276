import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { AgentGit } from '../agents/agent-git.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { BuildService } from '../builds/build-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { defaultTemplatesDir } from '../catalog/templates.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { TokenService } from '../tokens/token-service.ts';
import { createBuilderChanges } from './builder-change.ts';
import { type ChangeService, createChangeService } from './change-service.ts';
import { registerGitRoutes } from './git-http.ts';
import { createGitOps } from './gitops.ts';
import { registerHostWebhookRoutes } from './host-webhook-routes.ts';
import { createHostedRepos, type HostedRepos } from './hosted-repos.ts';
import type { GitHost } from './hosts/git-host.ts';
import type { GitHubSettings } from './hosts/github.ts';
import { gitHubHost } from './hosts/github.ts';
import type { GitLabSettings } from './hosts/gitlab.ts';
import { gitLabHost } from './hosts/gitlab.ts';
import type { PackBlobs } from './repo-packs.ts';
import { registerRepoRoutes } from './repo-routes.ts';
import { createRepoService } from './repo-service.ts';
import { createRepoStore, gitopsRepository, type RepoStore } from './repo-store.ts';
import { createSharedRepoStore, type SharedRepoStore } from './shared-repos.ts';

/** The most a push may send (and `receive.maxInputSize` of every repository). */
export const maxPushBytes = 50 * 1024 * 1024;

type RepoDeps = {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get' | 'onRegistered'>;
  dataDir: string;
  publicUrl: () => string;
  templatesDir?: string;
  /** The company's GitHub or GitLab (MICROAPP_GIT_HOST); absent: every repository is the platform's own. */
  gitHost?: HostSettings | null;
  /**
   * The platform's own repositories shared through the database and this blob store (MICROAPP_GIT_STORE=
   * shared); absent: the data folder's `repos/` alone. With a git host, the GitOps repository alone.
   */
  shared?: PackBlobs | null;
};

/** The git host's settings as configuration reads them (config-git-host.ts). */
export type HostSettings =
  | { kind: 'github'; settings: GitHubSettings; webhookSecret: string; allowPlainHttp: boolean }
  | { kind: 'gitlab'; settings: GitLabSettings; webhookSecret: string; allowPlainHttp: boolean };

/** The repositories on disk, the app repositories' service and the GitOps repository (before the builds exist). */
export function prepareRepos(deps: RepoDeps) {
  const folder = createRepoStore({
    dir: join(deps.dataDir, 'repos'),
    hooksDir: join(deps.dataDir, 'git-hooks'),
    maxPushBytes,
  });
  // With a git host the apps' repositories are copies of the host's: only the GitOps repository is shared.
  const store = deps.shared
    ? createSharedRepoStore({
        db: deps.db,
        clock: deps.clock,
        blobs: deps.shared,
        local: folder,
        ...(deps.gitHost ? { shares: (id: string) => id === gitopsRepository } : {}),
      })
    : folder;
  // Pull requests at the host become change requests, through the change service made later.
  let changes: ChangeService | null = null;
  const h = deps.gitHost;
  const host: GitHost | null = !h
    ? null
    : h.kind === 'github'
      ? gitHubHost(h.settings)
      : gitLabHost(h.settings);
  const hosted: HostedRepos | null =
    h && host
      ? createHostedRepos({
          ...deps,
          store,
          host,
          apiUrl: h.settings.apiUrl,
          plainHttp: h.allowPlainHttp,
          changes: () => {
            if (!changes) throw new Error('the change service is not ready');
            return changes;
          },
        })
      : null;
  const repos = createRepoService({
    ...deps,
    templatesDir: deps.templatesDir ?? defaultTemplatesDir,
    store,
    ...(hosted ? { hosted } : {}),
  });
  const gitops = createGitOps({ ...deps, store });
  const setChanges = (c: ChangeService) => {
    changes = c;
  };
  return { deps, store, repos, gitops, hosted, setChanges };
}

/**
 * App repositories: the git server at /git/APP.git (and the GitOps repository at /git/_gitops.git), one
 * repository per app made at registration, change requests with their checks and reviews, merges by the
 * tier's rule, and the build that ships the merge. Built once, by the composition root.
 */
export function installRepos(
  app: FastifyInstance,
  prepared: ReturnType<typeof prepareRepos>,
  more: {
    builds: Pick<BuildService, 'request' | 'onFinished'>;
    tokens: Pick<TokenService, 'authenticate'>;
    notifications: Pick<NotificationService, 'notify'>;
    logger: { error: (details: object, message: string) => void };
  },
) {
  const { deps, store, repos, gitops, hosted } = prepared;
  // Agents are composed after the repositories (they need the policy engine); until then, and on a
  // platform without them, an agent's token is refused at /git.
  let agentGit: AgentGit | null = null;
  const agents = () => agentGit;
  const changes = createChangeService({ ...deps, ...more, store, repos, agents, hosted: () => hosted });
  prepared.setChanges(changes);
  // Made before the registration answers, so the app and its repository arrive together; a failure here
  // leaves the app registered, and its repository is made at its first use.
  deps.catalog.onRegistered((created, ctx) =>
    repos
      .ensure(created, ctx)
      .catch((error: Error) =>
        more.logger.error(
          { err: error, app: created.name },
          'the app’s repository was not created; it will be at first use',
        ),
      ),
  );
  more.builds.onFinished(async (id) => {
    // The host hears the check's result first: the merge that may follow names the commit it passed.
    await hosted
      ?.checked(id)
      .catch((error: Error) =>
        more.logger.error({ err: error, build: id }, 'the check was not reported to the git host'),
      );
    await changes.buildFinished(id);
  });
  if (hosted && deps.gitHost) registerHostWebhookRoutes(app, { hosted, secret: deps.gitHost.webhookSecret });
  registerGitRoutes(app, {
    catalog: deps.catalog,
    repos,
    gitops,
    store,
    tokens: more.tokens,
    onPush: async (principal, app, updates, ctx, agent) => {
      const touched = await changes.pushed(principal, app, updates, ctx);
      if (!agent || !agentGit) return;
      await agentGit.pushed(agent, app, updates);
      for (const cr of touched) await agentGit.askMerge(agent, app, cr);
    },
    maxPushBytes,
    agents,
  });
  const builder = createBuilderChanges({
    db: deps.db,
    catalog: deps.catalog,
    store,
    repos,
    changes,
    hosted,
    publicUrl: deps.publicUrl,
  });
  registerRepoRoutes(app, { repos, changes, gitops, builder });
  /** Lets agents clone and push (as their delegations allow), and merges their changes once confirmed. */
  const allowAgents = (git: AgentGit) => {
    agentGit = git;
  };
  return { store, repos, changes, gitops, allowAgents };
}

/**
 * On a server whose repositories are shared (MICROAPP_GIT_STORE=shared): shares the repositories the data
 * folder holds and the database does not know yet, the folder's repositories before the upgrade, and
 * schedules the packs' upkeep (compaction and sweep, repo-packs.ts). Returns how many it shared; run before
 * the server serves.
 */
export async function startSharedRepositories(
  store: RepoStore,
  jobs: Pick<JobRunner, 'register'>,
  logger: { info: (o: object, m: string) => void },
): Promise<number> {
  if (!('importLocal' in store)) return 0;
  const shared = store as SharedRepoStore;
  await jobs.register({ name: 'repository-packs', everySeconds: 600, run: () => shared.maintain() });
  if (!existsSync(store.dir)) return 0;
  const ids = readdirSync(store.dir)
    .filter((f) => f.endsWith('.git'))
    .map((f) => f.slice(0, -'.git'.length));
  const count = await shared.importLocal(ids);
  if (count) logger.info({ repositories: count }, 'repositories of the data folder are now shared');
  return count;
}
