import type { Kysely } from 'kysely';
import { stringify } from 'yaml';
import type { Database } from '../../db/schema.ts';
import { AppError, conflict } from '../../errors.ts';
import type { AuditContext } from '../audit/audit-service.ts';
import { nextVersion } from '../builds/build-process.ts';
import { formJson, withVersion } from '../builds/build-source.ts';
import { type FormField, formFieldProblems, readsTypes, usesTypes } from '../builds/form-fields.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { Principal } from '../identity/principal.ts';
import type { ChangeService, ChangeView } from './change-service.ts';
import type { HostedRepos } from './hosted-repos.ts';
import type { RepoService } from './repo-service.ts';
import type { RepoStore } from './repo-store.ts';

/**
 * The console's Deploy as a change: the platform writes the builder's answers (a form's questions), the
 * registered manifest and the next version into a commit on a new branch of the app's repository, which
 * opens a change request like any push. The tier's rule then decides: a low-tier app goes live once the
 * checks pass; a medium- or high-tier one waits for its reviewers.
 */
export function createBuilderChanges(deps: {
  db: Kysely<Database>;
  catalog: Pick<CatalogService, 'get'>;
  store: RepoStore;
  repos: Pick<RepoService, 'ensure' | 'pushRefusal'>;
  changes: Pick<ChangeService, 'pushed' | 'list'>;
  /** The company's GitHub or GitLab: the branch goes there as a pull request. */
  hosted: Pick<HostedRepos, 'opened'> | null;
  publicUrl: () => string;
}) {
  const { store } = deps;

  async function open(
    principal: Principal,
    name: string,
    input: { fields?: FormField[] },
    ctx: AuditContext,
  ): Promise<ChangeView> {
    const app = await deps.catalog.get(principal, name, { scorecard: false });
    const refusal = await deps.repos.pushRefusal(principal, app);
    if (refusal) throw refusal;
    if (app.state !== 'approved')
      throw conflict(`${name} is ${app.state.replace('_', ' ')}; deploying starts once it is approved`);
    if (input.fields) {
      if (app.manifest.template?.name !== 'form')
        throw new AppError('bad_request', `form questions are for apps made from the form template`);
      const problems = formFieldProblems(input.fields);
      if (problems.length)
        throw new AppError(
          'validation_failed',
          problems.join('; '),
          problems.map((message) => ({ path: '/fields', message })),
        );
    }
    await deps.repos.ensure(app, ctx);
    const main = await store.head(app.id);
    if (!main) throw conflict(`${name}'s repository has no main branch`);
    if (
      input.fields &&
      usesTypes(input.fields) &&
      !readsTypes(await store.readFile(app.id, main, 'src/app.js'))
    )
      throw conflict(
        `${name}'s code comes from a form template older than 1.2.0 and takes every answer as text, so dates, amounts, choices and e-mail addresses would not be checked. Keep its questions as text, or have a developer bring src/app.js and server.js up to the form template 1.2.0 (\`microapp init --template form\` writes them)`,
      );
    const version = await nextVersion(deps.db, app.id);
    // The registered answers, so the pipeline's manifest check matches the approval.
    const files: Record<string, string> = { 'microapp.yaml': stringify(app.manifest) };
    for (const file of ['package.json', 'package-lock.json']) {
      const text = await store.readFile(app.id, main, file);
      if (text !== null) files[file] = withVersion(text, version);
    }
    if (input.fields) files['form.json'] = formJson(input.fields);
    const what = input.fields ? `the form's ${input.fields.length} questions` : 'the registered answers';
    const commit = await store.commitFiles(
      app.id,
      main,
      files,
      `Deploy ${version} from the console: ${what}`,
      { name: principal.name, email: principal.email },
    );
    const branch = `console/${version}-${commit.slice(0, 8)}`;
    await store.setBranch(app.id, branch, commit, null);
    const [cr] = await deps.changes.pushed(
      principal,
      app,
      [{ ref: `refs/heads/${branch}`, before: null, after: commit }],
      ctx,
    );
    // At the company's host the change is a pull request too, where its developers see it.
    if (cr && deps.hosted)
      await deps.hosted.opened(
        app,
        cr,
        `Opened by ${principal.email} with the Deploy button of microapp: ${deps.publicUrl()}/apps/${name}/changes/${cr.number}`,
      );
    const opened = (await deps.changes.list(principal, name, { state: 'open' })).find(
      (c) => c.branch === branch,
    );
    return opened ?? (await deps.changes.list(principal, name)).find((c) => c.branch === branch)!;
  }

  return { open };
}

export type BuilderChanges = ReturnType<typeof createBuilderChanges>;
