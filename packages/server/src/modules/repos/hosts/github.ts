import { type GitHost, GitHostError, type HostChange, type HostRepository, hostRequest } from './git-host.ts';

/** Where the platform reaches GitHub (github.com, or GitHub Enterprise Server's `/api/v3`). */
export type GitHubSettings = {
  apiUrl: string;
  /** The organization that owns the apps' repositories. */
  owner: string;
  /** The repository each app template is made from: `template name` → `owner/repository`. */
  templates: Record<string, string>;
  token: string;
};

type Pull = {
  number: number;
  html_url: string;
  state: string;
  merged?: boolean;
  merged_at?: string | null;
  head: { sha: string };
};

/**
 * GitHub's REST API (version 2022-11-28): repositories from template repositories, pull requests,
 * commit statuses (`microapp/pipeline`), merges that name the head they expect, and tarballs.
 */
export function gitHubHost(settings: GitHubSettings): GitHost {
  const api = settings.apiUrl.replace(/\/+$/, '');
  const headers = {
    accept: 'application/vnd.github+json',
    authorization: `Bearer ${settings.token}`,
    'x-github-api-version': '2022-11-28',
  };
  const call = (method: string, path: string, body?: unknown, binary = false) =>
    hostRequest({ name: 'GitHub', tokenHint: 'the GitHub token the platform was given' }, `${api}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      binary,
    });
  const repoPath = (repo: HostRepository) => `/repos/${repo.id.split('/').map(encodeURIComponent).join('/')}`;
  const change = (p: Pull): HostChange => ({
    number: p.number,
    url: p.html_url,
    head: p.head.sha,
    state: p.merged || p.merged_at ? 'merged' : p.state === 'open' ? 'open' : 'closed',
  });

  return {
    kind: 'github',
    gitAuthorization: () => `Basic ${Buffer.from(`x-access-token:${settings.token}`).toString('base64')}`,
    async createRepository(input) {
      const template = settings.templates[input.template];
      if (!template)
        throw new GitHostError(
          'not_found',
          404,
          `no GitHub template repository is set for the ${input.template} template`,
        );
      const [owner, name] = template.split('/');
      const r = await call(
        'POST',
        `/repos/${encodeURIComponent(owner!)}/${encodeURIComponent(name!)}/generate`,
        {
          owner: settings.owner,
          name: input.name,
          description: input.description.slice(0, 350),
          private: true,
          include_all_branches: false,
        },
      );
      const repo = r.json as {
        full_name: string;
        clone_url: string;
        html_url: string;
        default_branch?: string;
      };
      return {
        id: repo.full_name,
        cloneUrl: repo.clone_url,
        webUrl: repo.html_url,
        defaultBranch: repo.default_branch ?? 'main',
      };
    },
    async openChange(repo, input) {
      const r = await call('POST', `${repoPath(repo)}/pulls`, {
        title: input.title,
        head: input.branch,
        base: repo.defaultBranch,
        body: input.body,
      });
      return change(r.json as Pull);
    },
    async getChange(repo, number) {
      return change((await call('GET', `${repoPath(repo)}/pulls/${number}`)).json as Pull);
    },
    async reportCheck(repo, check) {
      await call('POST', `${repoPath(repo)}/statuses/${check.commit}`, {
        state: check.state === 'passed' ? 'success' : check.state === 'failed' ? 'failure' : 'pending',
        target_url: check.url,
        description: check.description.slice(0, 140),
        context: 'microapp/pipeline',
      });
    },
    async merge(repo, c, message) {
      try {
        const r = await call('PUT', `${repoPath(repo)}/pulls/${c.number}/merge`, {
          sha: c.head,
          merge_method: 'merge',
          commit_title: message.slice(0, 250),
        });
        return { commit: (r.json as { sha: string }).sha };
      } catch (e) {
        if (e instanceof GitHostError && e.status === 405)
          throw new GitHostError(
            'not_mergeable',
            405,
            `GitHub cannot merge pull request #${c.number}: ${e.message}`,
          );
        if (e instanceof GitHostError && e.status === 409)
          throw new GitHostError(
            'head_moved',
            409,
            `pull request #${c.number} moved since it was checked: check it again`,
          );
        throw e;
      }
    },
    async archive(repo, commit) {
      return (await call('GET', `${repoPath(repo)}/tarball/${commit}`, undefined, true)).bytes;
    },
  };
}
