/**
 * Where a company keeps its code when it is not the platform's own git server: GitHub or GitLab (cloud or
 * self-managed), behind one interface, so the change-request flow asks the same things of either: a
 * repository made from a template, a pull or merge request for a branch, a commit status for the
 * platform's checks, a merge once the rule holds, and the files of a commit for the build.
 */
export interface GitHost {
  readonly kind: 'github' | 'gitlab';
  /** The HTTP Authorization header git sends to clone, fetch and push over HTTPS with the platform's token. */
  gitAuthorization(): string;
  /** A new private repository from the company's template repository for the app's template. */
  createRepository(input: { name: string; description: string; template: string }): Promise<HostRepository>;
  /** Opens a pull (merge) request from `branch` into the default branch. */
  openChange(
    repo: HostRepository,
    input: { branch: string; title: string; body: string },
  ): Promise<HostChange>;
  getChange(repo: HostRepository, number: number): Promise<HostChange>;
  /** The platform's checks on a commit, as the host shows them beside the change. */
  reportCheck(repo: HostRepository, input: HostCheck): Promise<void>;
  /** Merges the change if its head is still `head`; refuses when the host says it cannot be merged. */
  merge(
    repo: HostRepository,
    change: { number: number; head: string },
    message: string,
  ): Promise<{ commit: string }>;
  /** A commit's files as a tar.gz, under one top-level folder as both hosts pack them (a build strips it). */
  archive(repo: HostRepository, commit: string): Promise<Buffer>;
}

export type HostRepository = {
  /** The host's id for it: `owner/name` on GitHub, the numeric project id on GitLab. */
  id: string;
  cloneUrl: string;
  webUrl: string;
  defaultBranch: string;
};

export type HostChange = {
  number: number;
  url: string;
  head: string;
  state: 'open' | 'merged' | 'closed';
};

export type HostCheck = {
  commit: string;
  state: 'pending' | 'passed' | 'failed';
  /** One line; hosts cut it (GitHub at 140 characters). */
  description: string;
  /** The change request's page on the platform. */
  url: string;
};

/** A refusal by the host, with what to do about it. */
export class GitHostError extends Error {
  readonly status: number;
  readonly kind: 'auth' | 'not_found' | 'not_mergeable' | 'head_moved' | 'rate_limited' | 'failed';
  constructor(kind: GitHostError['kind'], status: number, message: string) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** The one HTTP client both hosts use: JSON in and out, the host's errors as GitHostErrors. */
export async function hostRequest(
  host: { name: string; tokenHint: string },
  url: string,
  init: { method: string; headers: Record<string, string>; body?: unknown; binary?: boolean },
): Promise<{ status: number; json: unknown; bytes: Buffer }> {
  const res = await fetch(url, {
    method: init.method,
    headers: {
      ...init.headers,
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      'user-agent': 'microapp',
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    redirect: 'follow',
    signal: AbortSignal.timeout(30_000),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: unknown = null;
  if (!init.binary && bytes.length) {
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      json = null;
    }
  }
  if (res.ok) return { status: res.status, json, bytes };
  const said = (json as { message?: unknown } | null)?.message;
  const detail = typeof said === 'string' ? said.slice(0, 200) : `HTTP ${res.status}`;
  if (res.status === 401)
    throw new GitHostError(
      'auth',
      401,
      `${host.name} refused the platform's token (${detail}): check ${host.tokenHint}`,
    );
  if (res.status === 429 || (res.status === 403 && res.headers.get('x-ratelimit-remaining') === '0'))
    throw new GitHostError(
      'rate_limited',
      res.status,
      `${host.name} is rate-limiting the platform; it tries again later`,
    );
  if (res.status === 403)
    throw new GitHostError(
      'auth',
      403,
      `${host.name} does not let the platform's token do this (${detail}): check its permissions`,
    );
  if (res.status === 404)
    throw new GitHostError('not_found', 404, `${host.name} has no such repository or change (${detail})`);
  throw new GitHostError('failed', res.status, `${host.name} answered ${res.status}: ${detail}`);
}
