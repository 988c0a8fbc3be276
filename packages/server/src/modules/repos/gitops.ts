import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { forbidden } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { nextChangeNumber } from './change-state.ts';
import { gitopsRepository, mainBranch, type RepoStore } from './repo-store.ts';

/** Where a rendered version landed in the GitOps repository. */
export type GitOpsCommit = {
  repository: string;
  branch: string;
  commit: string;
  change: number;
  path: string;
};

/** What the Kubernetes driver hands over: an app version's objects, already through the deploy checks. */
export type RenderedVersion = {
  app: string;
  env: string;
  version: string;
  digest: string;
  files: { path: string; content: string }[];
};

/**
 * The platform's GitOps repository, which Argo CD or Flux follows: the Kubernetes driver commits each
 * rendered version there (one folder per app and environment, `apps/SITE/`), on a branch, as a change
 * request the platform's rule merges at once: the checks it needs (signature, provenance, admission,
 * policy) already passed before anything was rendered. Its history is the cluster's intended state.
 */
export function createGitOps(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  store: RepoStore;
  publicUrl: () => string;
}) {
  const { db, store } = deps;
  const id = gitopsRepository;
  const cloneUrl = () => `${deps.publicUrl()}/git/_gitops.git`;
  let ready: Promise<void> | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  function ensure() {
    ready ??= (async () => {
      if (await store.present(id)) return;
      await store.create(
        id,
        {
          'README.md':
            '# microapp GitOps\n\nThe Kubernetes objects of every app version the platform deployed, the namespace apps run in (`namespace/`) and one folder per app and environment (`apps/APP/`, `apps/APP--preview/`). The platform commits here after its deploy checks; point Argo CD or Flux at `main`.\n',
        },
        'Start the GitOps repository',
        { name: 'microapp', email: 'platform@microapp.invalid' },
      );
    })().catch((error: unknown) => {
      ready = null;
      throw error;
    });
    return ready;
  }

  /** Commits a version's objects on a branch, opens its change request and merges it by the rule. */
  function publish(rendered: RenderedVersion, by: Principal, ctx: AuditContext): Promise<GitOpsCommit> {
    // One commit at a time: main moves by compare-and-swap, and each change is based on the last.
    const work = queue.then(async () => {
      await ensure();
      // The app's own folder (`apps/SITE/`); the namespace apps run in (`namespace/`) comes along unchanged.
      const site = rendered.files.find((f) => f.path.startsWith('apps/'))?.path.split('/')[1] ?? rendered.app;
      const folder = `apps/${site}`;
      const main = (await store.head(id))!;
      const files = Object.fromEntries(rendered.files.map((f) => [f.path, f.content]));
      const message = `Deploy ${rendered.app}@${rendered.version} (${rendered.env}) ${rendered.digest}`;
      const commit = await store.commitFiles(
        id,
        main,
        files,
        message,
        { name: by.name, email: by.email },
        {
          removeUnder: folder,
        },
      );
      const branch = `deploy/${site}-${rendered.version}-${commit.slice(0, 8)}`;
      await store.setBranch(id, branch, commit, null);
      const now = deps.clock.nowIso();
      const number = await db.transaction().execute(async (trx) => {
        const n = await nextChangeNumber(trx, id);
        await trx
          .insertInto('change_requests')
          .values({
            id: newId('change'),
            app_id: id,
            app_name: rendered.app,
            number: n,
            branch,
            title: message,
            state: 'merged',
            base_commit: main,
            head_commit: commit,
            opened_by: by.email,
            opened_by_id: by.userId,
            check_build_id: null,
            check_error: null,
            merged_commit: commit,
            merged_by: 'microapp (deploy checks passed: signature, provenance, admission, policy)',
            release_build_id: null,
            created_at: now,
            updated_at: now,
            closed_at: now,
          })
          .execute();
        await deps.audit.record(trx, ctx, {
          action: 'gitops.committed',
          targetType: 'app',
          target: rendered.app,
          summary: {
            change: n,
            commit,
            path: folder,
            version: rendered.version,
            env: rendered.env,
            digest: rendered.digest,
          },
        });
        return n;
      });
      await store.setBranch(id, mainBranch, commit, main);
      return { repository: cloneUrl(), branch, commit, change: number, path: folder };
    });
    queue = work.catch(() => {});
    return work;
  }

  /** Who may read the repository: those who oversee what runs (it holds no secret, but every app's setup). */
  const mayRead = (principal: Principal) => hasRole(principal, 'admin', 'auditor', 'reviewer');

  async function view(principal: Principal) {
    if (!mayRead(principal))
      throw forbidden(
        'the GitOps repository is for admins, auditors and reviewers; your apps’ own objects are in each deploy’s answer',
      );
    await ensure();
    const changes = await db
      .selectFrom('change_requests')
      .select(['number', 'app_name', 'title', 'head_commit', 'opened_by', 'created_at'])
      .where('app_id', '=', id)
      .orderBy('number', 'desc')
      .limit(20)
      .execute();
    return {
      cloneUrl: cloneUrl(),
      branch: mainBranch,
      head: await store.head(id),
      commits: await store.log(id, `refs/heads/${mainBranch}`, 20),
      changes: changes.map((c) => ({
        number: Number(c.number),
        app: c.app_name,
        title: c.title,
        commit: c.head_commit,
        by: c.opened_by,
        at: c.created_at,
      })),
    };
  }

  return { id, cloneUrl, ensure, publish, view, mayRead };
}

export type GitOps = ReturnType<typeof createGitOps>;
