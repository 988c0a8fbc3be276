import type { Kysely } from 'kysely';
import { stringify } from 'yaml';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { readsTypes } from '../builds/form-fields.ts';
import type { AppView } from '../catalog/app-view.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { renderTemplate } from '../catalog/template-files.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { HostRepository } from './hosts/git-host.ts';
import type { CommitIdentity, CommitInfo, RepoStore } from './repo-store.ts';

/** What the repositories ask of the company's GitHub or GitLab (hosted-repos.ts has it). */
type Hosted = {
  kind: 'github' | 'gitlab';
  hostName: string;
  create(
    app: AppView,
    files: Record<string, string>,
    message: string,
    author: CommitIdentity,
  ): Promise<{ repo: HostRepository; commit: string }>;
  repoOf(appId: string): Promise<HostRepository | null>;
  sync(appId: string): Promise<void>;
};

/** The questions of a form.json, or null when it has none a builder can edit. */
function formOf(text: string | null): unknown[] | null {
  if (!text) return null;
  try {
    const fields = (JSON.parse(text) as { fields?: unknown }).fields;
    return Array.isArray(fields) ? fields : null;
  } catch {
    return null;
  }
}

export type RepositoryView = {
  app: string;
  /** `git clone` this, with an API token as the password (or, at GitHub or GitLab, as the host asks). */
  cloneUrl: string;
  /** Where the repository lives when it is at the company's GitHub or GitLab; null: on the platform. */
  host: { kind: 'github' | 'gitlab'; id: string; webUrl: string } | null;
  defaultBranch: 'main';
  source: string;
  createdAt: string;
  /** Read-only once the app is decommissioned: the history stays. */
  archived: boolean;
  head: string | null;
  commits: CommitInfo[];
  /** Whether the caller may push branches (the owner). */
  canPush: boolean;
  /** A form app's questions on main, where the console's builder starts. */
  form: unknown[] | null;
  /** Whether a form app's code on main reads typed questions (date, amount, choice, e-mail). */
  formTypes: boolean;
};

/**
 * Every app has a repository on the platform's git server: created from its template when it is registered
 * (the template's files, its CI file and the registered manifest), or lazily for an app registered before
 * repositories existed. Read access follows the app's visibility; pushes are its owner's.
 */
export function createRepoService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  store: RepoStore;
  templatesDir: string;
  publicUrl: () => string;
  /** Set when apps' repositories live at the company's GitHub or GitLab (MICROAPP_GIT_HOST). */
  hosted?: Hosted;
}) {
  const { db, store, hosted } = deps;
  const creating = new Map<string, Promise<void>>();

  const cloneUrl = (name: string) => `${deps.publicUrl()}/git/${name}.git`;

  /** Where the app's code is cloned from: the host's URL for a hosted repository (provenance names it). */
  const sourceUrl = async (app: { id: string; name: string }) =>
    (await hosted?.repoOf(app.id))?.cloneUrl ?? cloneUrl(app.name);

  /** The files a new repository starts with. */
  function initialFiles(app: AppView): { files: Record<string, string>; source: string } {
    const t = app.manifest.template;
    const rendered = t
      ? renderTemplate(deps.templatesDir, t.name, {
          name: app.name,
          owner: app.owner,
          department: app.department,
        })
      : undefined;
    const files: Record<string, string> = rendered
      ? { ...rendered.files }
      : {
          'README.md': `# ${app.name}\n\n${app.manifest.purpose}\n\nPush a branch to this repository and the platform opens a change request: it runs the pipeline (\`microapp ci\`) on it, asks the reviews the app's tier needs, merges, then builds, signs and deploys the merged commit.\n`,
        };
    // The registered answers, so the pipeline's manifest check matches the approval from the first commit.
    files['microapp.yaml'] = stringify(app.manifest);
    return {
      files,
      source: rendered ? `template ${rendered.template.name} ${rendered.template.version}` : 'empty',
    };
  }

  /** Creates the app's repository if it has none yet (once, however many callers ask at the same time). */
  async function ensure(app: AppView, ctx: AuditContext): Promise<void> {
    const row = await db
      .selectFrom('app_repos')
      .select(['app_id', 'host'])
      .where('app_id', '=', app.id)
      .executeTakeFirst();
    if (row && (await store.present(app.id))) return;
    // A shared repository the database and the blob store do not hold was never shared (a replica with
    // MICROAPP_GIT_STORE=shared never started on the folder that held it): making a new one would hide
    // its history.
    if (row && !row.host && store.shares(app.id))
      throw new AppError(
        'unavailable',
        `${app.name}'s repository is not in the database and the blob store yet: start one replica with MICROAPP_GIT_STORE=shared on the data folder that holds repos/${app.id}.git, which shares it`,
      );
    // At the host: this replica has no copy yet, so it fetches one.
    if (row?.host && hosted) return hosted.sync(app.id);
    const pending = creating.get(app.id);
    if (pending) return pending;
    const work = (async () => {
      const { files, source } = initialFiles(app);
      const owner = await db
        .selectFrom('users')
        .select(['name'])
        .where('email', '=', app.owner)
        .executeTakeFirst();
      const message = `Create ${app.name} from ${source === 'empty' ? 'its registration' : `the ${source}`}`;
      const author = { name: owner?.name ?? app.owner, email: app.owner };
      const made = hosted ? await hosted.create(app, files, message, author) : null;
      const commit = made?.commit ?? (await store.create(app.id, files, message, author));
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('app_repos').where('app_id', '=', app.id).execute();
        await trx
          .insertInto('app_repos')
          .values({
            app_id: app.id,
            app_name: app.name,
            source,
            initial_commit: commit,
            created_at: deps.clock.nowIso(),
            archived_at: null,
            host: made ? hosted!.kind : null,
            host_repo_id: made?.repo.id ?? null,
            host_repo: made ? JSON.stringify(made.repo) : null,
          })
          .execute();
        await deps.audit.record(trx, ctx, {
          action: 'repository.created',
          targetType: 'app',
          target: app.name,
          summary: {
            source,
            commit,
            files: Object.keys(files).length,
            ...(made ? { host: hosted!.kind, repository: made.repo.id, url: made.repo.webUrl } : {}),
          },
        });
      });
    })().finally(() => creating.delete(app.id));
    creating.set(app.id, work);
    return work;
  }

  /** The app's repository for a reader: clone URL, recent commits of main. */
  async function view(principal: Principal, name: string, ctx: AuditContext): Promise<RepositoryView> {
    const app = await deps.catalog.get(principal, name, { scorecard: false });
    await ensure(app, ctx);
    const row = await db
      .selectFrom('app_repos')
      .selectAll()
      .where('app_id', '=', app.id)
      .executeTakeFirstOrThrow();
    const archived = await isArchived(app.id);
    const head = await store.head(app.id);
    const isForm = head !== null && app.manifest.template?.name === 'form';
    const formJson = isForm ? await store.readFile(app.id, head, 'form.json') : null;
    const formCode = isForm ? await store.readFile(app.id, head, 'src/app.js') : null;
    const at = row.host_repo
      ? (JSON.parse(row.host_repo) as { id: string; cloneUrl: string; webUrl: string })
      : null;
    return {
      app: name,
      cloneUrl: at?.cloneUrl ?? cloneUrl(name),
      host: at ? { kind: row.host as 'github' | 'gitlab', id: at.id, webUrl: at.webUrl } : null,
      defaultBranch: 'main',
      source: row.source,
      createdAt: row.created_at,
      archived,
      head,
      commits: await store.log(app.id, 'refs/heads/main', 20),
      canPush: !archived && mayPush(principal, app),
      form: formOf(formJson),
      formTypes: readsTypes(formCode),
    };
  }

  /** Only the owner pushes: reviewers review, admins administer, neither writes someone's code. */
  const mayPush = (principal: Principal, app: AppView) => app.owner === principal.email;

  async function isArchived(appId: string) {
    const l = await db
      .selectFrom('app_lifecycle')
      .select('stage')
      .where('app_id', '=', appId)
      .executeTakeFirst();
    return l?.stage === 'decommissioned';
  }

  /** Why `principal` may not push to the app's repository, or null when they may. */
  /**
   * Makes sure this replica's copy of a hosted repository holds `commit`, fetching it when it does not: a
   * webhook, a merge or a review may have reached another replica.
   */
  async function holdCommit(app: { id: string }, commit: string) {
    if (hosted && !(await store.hasCommit(app.id, commit))) await hosted.sync(app.id);
  }

  /** Why a push to the platform's copy of a repository that lives at the company's host is refused. */
  async function hostedRefusal(app: AppView): Promise<AppError | null> {
    const at = await hosted?.repoOf(app.id);
    return at
      ? new AppError(
          'conflict',
          `${app.name}'s code lives at ${hosted!.hostName} (${at.webUrl}): push your branch there and open a pull request into ${at.defaultBranch}; the platform checks it and merges it by the tier's rule`,
        )
      : null;
  }

  async function pushRefusal(principal: Principal, app: AppView): Promise<AppError | null> {
    if (!principal.scopes.includes('apps:write'))
      return forbidden(
        'this API token lacks the scope apps:write, which pushing needs; create one with --scope apps:write',
      );
    if (!mayPush(principal, app))
      return forbidden(
        `only the owner of ${app.name} (${app.owner}) pushes to its repository; ask them, or clone it and send them your change`,
      );
    if (await isArchived(app.id))
      return new AppError(
        'conflict',
        `${app.name} was decommissioned: its repository keeps its history but takes no pushes; restore the app first`,
      );
    return hasRole(principal, 'creator', 'admin') ? null : forbidden('pushing needs the creator role');
  }

  return { ensure, view, cloneUrl, sourceUrl, holdCommit, pushRefusal, hostedRefusal, isArchived };
}

export type RepoService = ReturnType<typeof createRepoService>;
