// Where apps' code lives when it is not the platform's own git server: the company's GitHub or GitLab.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { GitHubSettings } from './modules/repos/hosts/github.ts';
import type { GitLabSettings } from './modules/repos/hosts/gitlab.ts';
import { keyFileProblem } from './private-file.ts';

/** The company's git host, with what the platform needs to use it; read once at start. */
export type GitHostConfig =
  | { kind: 'github'; settings: GitHubSettings; webhookSecret: string; allowPlainHttp: boolean }
  | { kind: 'gitlab'; settings: GitLabSettings; webhookSecret: string; allowPlainHttp: boolean };

const loopback = (host: string) =>
  host === 'localhost' || host === '[::1]' || (isIP(host) === 4 && host.startsWith('127.'));

/**
 * MICROAPP_GIT_HOST (`platform`, the default: the platform's own git server; `github`; `gitlab`) and the
 * settings that go with it. Every problem is named, so a wrong setting stops the start rather than the
 * first registration.
 */
export function gitHostFrom(env: NodeJS.ProcessEnv, problems: string[]): GitHostConfig | null {
  const kind = (env.MICROAPP_GIT_HOST ?? 'platform').toLowerCase();
  if (kind === 'platform') return null;
  if (kind !== 'github' && kind !== 'gitlab') {
    problems.push(`MICROAPP_GIT_HOST must be platform, github or gitlab, got "${env.MICROAPP_GIT_HOST}"`);
    return null;
  }
  const before = problems.length;
  const rawApi = env.MICROAPP_GIT_HOST_API_URL || (kind === 'github' ? 'https://api.github.com' : '');
  let api: URL | null = null;
  try {
    api = new URL(rawApi);
  } catch {}
  if (!api || !['http:', 'https:'].includes(api.protocol) || api.username || api.search)
    problems.push(
      `MICROAPP_GIT_HOST_API_URL must be the ${kind === 'github' ? 'GitHub API (https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server)' : 'GitLab API, such as https://gitlab.example.com/api/v4'}; got "${rawApi.slice(0, 80)}"`,
    );
  else if (api.protocol === 'http:' && !loopback(api.hostname))
    problems.push(
      `MICROAPP_GIT_HOST_API_URL must use https for a host on another machine (${api.host}): the platform's token goes with every request`,
    );
  const owner = env.MICROAPP_GIT_HOST_OWNER ?? '';
  if (kind === 'github' && !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(owner))
    problems.push(
      `MICROAPP_GIT_HOST_OWNER must name the GitHub organization that holds the apps' repositories, got "${owner}"`,
    );
  if (kind === 'gitlab' && !/^[1-9][0-9]{0,12}$/.test(owner))
    problems.push(
      `MICROAPP_GIT_HOST_OWNER must be the id (a number) of the GitLab group that holds the apps' projects, got "${owner}"`,
    );
  // `form=acme/microapp-template-form,dashboard=acme/microapp-template-dashboard` (GitLab: project ids).
  const templates: Record<string, string> = {};
  for (const pair of (env.MICROAPP_GIT_HOST_TEMPLATES ?? '').split(',').filter((p) => p.trim())) {
    const [name, repo] = pair.split('=').map((s) => s.trim());
    const ok =
      name &&
      /^[a-z0-9-]{1,63}$/.test(name) &&
      repo &&
      (kind === 'github'
        ? /^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/.test(repo)
        : /^[1-9][0-9]{0,12}$/.test(repo));
    if (!ok) {
      problems.push(
        `MICROAPP_GIT_HOST_TEMPLATES: "${pair.slice(0, 80)}" is not TEMPLATE=${kind === 'github' ? 'OWNER/REPOSITORY' : 'PROJECT_ID'}`,
      );
      continue;
    }
    templates[name] = repo;
  }
  if (!Object.keys(templates).length)
    problems.push(
      `MICROAPP_GIT_HOST_TEMPLATES must name the ${kind === 'github' ? 'template repository' : 'template project'} of each app template, such as form=${kind === 'github' ? 'acme/microapp-template-form' : '7'}`,
    );
  const secretOf = (variable: string, what: string) => {
    const file = env[variable];
    if (!file) {
      problems.push(`${variable} must name the file that holds ${what}`);
      return '';
    }
    const open = keyFileProblem(variable, file);
    if (open) problems.push(open);
    try {
      const value = readFileSync(file, 'utf8').trim();
      if (!value || /\s/.test(value)) problems.push(`${variable}: ${file} must hold ${what} on one line`);
      return value;
    } catch (error) {
      problems.push(`${variable}: ${file} cannot be read (${(error as NodeJS.ErrnoException).code})`);
      return '';
    }
  };
  const token = secretOf(
    'MICROAPP_GIT_HOST_TOKEN_FILE',
    `the platform's ${kind === 'github' ? 'GitHub' : 'GitLab'} token`,
  );
  const webhookSecret = secretOf('MICROAPP_GIT_HOST_WEBHOOK_SECRET_FILE', 'the webhooks’ shared secret');
  if (webhookSecret && webhookSecret.length < 20)
    problems.push('MICROAPP_GIT_HOST_WEBHOOK_SECRET_FILE: the secret must be at least 20 characters');
  if (problems.length > before || !api) return null;
  const apiUrl = api.href.replace(/\/+$/, '');
  const allowPlainHttp = api.protocol === 'http:';
  return kind === 'github'
    ? { kind, settings: { apiUrl, owner, templates, token }, webhookSecret, allowPlainHttp }
    : {
        kind,
        settings: {
          apiUrl,
          namespaceId: Number(owner),
          templates: Object.fromEntries(Object.entries(templates).map(([k, v]) => [k, Number(v)])),
          token,
        },
        webhookSecret,
        allowPlainHttp,
      };
}
