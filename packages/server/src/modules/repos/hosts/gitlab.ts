import { type GitHost, GitHostError, type HostChange, type HostRepository, hostRequest } from './git-host.ts';

/** Where the platform reaches GitLab (gitlab.com or self-managed, `https://HOST/api/v4`). */
export type GitLabSettings = {
  apiUrl: string;
  /** The group (namespace id) that holds the apps' projects. */
  namespaceId: number;
  /** The project each app template is made from: `template name` → project id. */
  templates: Record<string, number>;
  token: string;
};

type MergeRequest = { iid: number; web_url: string; state: string; sha: string };

/**
 * GitLab's REST API v4: projects from a custom template project, merge requests, commit statuses
 * (`microapp/pipeline`), merges that name the head they expect, and archives.
 */
export function gitLabHost(settings: GitLabSettings): GitHost {
  const api = settings.apiUrl.replace(/\/+$/, '');
  const headers = { 'private-token': settings.token, accept: 'application/json' };
  const call = (method: string, path: string, body?: unknown, binary = false) =>
    hostRequest({ name: 'GitLab', tokenHint: 'the GitLab token the platform was given' }, `${api}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      binary,
    });
  const project = (repo: HostRepository) => `/projects/${encodeURIComponent(repo.id)}`;
  const change = (m: MergeRequest): HostChange => ({
    number: m.iid,
    url: m.web_url,
    head: m.sha,
    state: m.state === 'merged' ? 'merged' : m.state === 'opened' ? 'open' : 'closed',
  });

  return {
    kind: 'gitlab',
    gitAuthorization: () => `Basic ${Buffer.from(`oauth2:${settings.token}`).toString('base64')}`,
    async createRepository(input) {
      const template = settings.templates[input.template];
      if (template === undefined)
        throw new GitHostError(
          'not_found',
          404,
          `no GitLab template project is set for the ${input.template} template`,
        );
      const r = await call('POST', '/projects', {
        name: input.name,
        path: input.name,
        namespace_id: settings.namespaceId,
        description: input.description.slice(0, 2000),
        visibility: 'private',
        use_custom_template: true,
        template_project_id: template,
      });
      const p = r.json as { id: number; http_url_to_repo: string; web_url: string; default_branch?: string };
      return {
        id: String(p.id),
        cloneUrl: p.http_url_to_repo,
        webUrl: p.web_url,
        defaultBranch: p.default_branch ?? 'main',
      };
    },
    async openChange(repo, input) {
      const r = await call('POST', `${project(repo)}/merge_requests`, {
        source_branch: input.branch,
        target_branch: repo.defaultBranch,
        title: input.title,
        description: input.body,
      });
      return change(r.json as MergeRequest);
    },
    async getChange(repo, number) {
      return change((await call('GET', `${project(repo)}/merge_requests/${number}`)).json as MergeRequest);
    },
    async reportCheck(repo, check) {
      await call('POST', `${project(repo)}/statuses/${check.commit}`, {
        state: check.state === 'passed' ? 'success' : check.state === 'failed' ? 'failed' : 'pending',
        name: 'microapp/pipeline',
        description: check.description.slice(0, 255),
        target_url: check.url,
      });
    },
    async merge(repo, c, message) {
      try {
        const r = await call('PUT', `${project(repo)}/merge_requests/${c.number}/merge`, {
          sha: c.head,
          merge_commit_message: message,
        });
        const merged = r.json as { merge_commit_sha?: string | null; sha: string };
        return { commit: merged.merge_commit_sha ?? merged.sha };
      } catch (e) {
        if (e instanceof GitHostError && (e.status === 405 || e.status === 406 || e.status === 422))
          throw new GitHostError(
            'not_mergeable',
            e.status,
            `GitLab cannot merge merge request !${c.number}: ${e.message}`,
          );
        if (e instanceof GitHostError && e.status === 409)
          throw new GitHostError(
            'head_moved',
            409,
            `merge request !${c.number} moved since it was checked: check it again`,
          );
        throw e;
      }
    },
    async archive(repo, commit) {
      return (
        await call(
          'GET',
          `${project(repo)}/repository/archive.tar.gz?sha=${encodeURIComponent(commit)}`,
          undefined,
          true,
        )
      ).bytes;
    },
  };
}
