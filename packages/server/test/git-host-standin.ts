import { createHmac, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGit as run, serveGit } from './git-standin-http.ts';

type Pull = { number: number; branch: string; head: string; title: string; merged: boolean; open: boolean };

/**
 * A stand-in for GitHub or GitLab on loopback, for the platform's hosted-repository flow: the REST requests
 * of the recorded contract (test/contracts/KIND.json: the same paths, and the same required headers,
 * checked on every request) answered with real git behind them, a smart-HTTP git server for the
 * repositories, and pull (merge) request webhooks as each host sends them: GitHub's signed with the shared
 * secret, GitLab's carrying it. A person's pull request is `openPull`; the platform opens, reports on and
 * merges the rest itself.
 */
export async function startGitHostStandIn(options: {
  kind: 'github' | 'gitlab';
  token: string;
  webhook: { url: () => string; secret: string };
  /** Template repositories (GitHub: `owner/name`; GitLab: a project id) and the files each holds. */
  templates: Record<string, Record<string, string>>;
  /** A compromised host: the clone URLs it answers name this host instead of its own. */
  cloneHost?: string;
}) {
  const gitlab = options.kind === 'gitlab';
  const root = mkdtempSync(join(tmpdir(), 'github-standin-'));
  const spec = JSON.parse(
    readFileSync(join(import.meta.dirname, 'contracts', `${options.kind}.json`), 'utf8'),
  ) as {
    headers: Record<string, string>;
  };
  const violations: string[] = [];
  const statuses: {
    repo: string;
    sha: string;
    state: string;
    context: string;
    description: string;
    url: string;
  }[] = [];
  const deliveries: { event: string; action: string; status: number; answer: unknown }[] = [];
  /** Requests to the git server, with whether they carried credentials. */
  const gitRequests: { path: string; authorized: boolean }[] = [];
  const pulls = new Map<string, Pull[]>();
  const dirOf = (full: string) => join(root, `${full}.git`);
  // GitLab names a project by its id in the API: id → path, and back.
  const projects = new Map<string, string>();
  const fullOf = (id: string) => (gitlab ? (projects.get(id) ?? id) : id);
  const idOf = (full: string) => (gitlab ? ([...projects].find(([, f]) => f === full)?.[0] ?? full) : full);
  let url = '';
  const cloneBase = () => (options.cloneHost ? url.replace('127.0.0.1', options.cloneHost) : url);

  for (const [template, files] of Object.entries(options.templates)) {
    const full = gitlab ? `templates/project-${template}` : template;
    if (gitlab) projects.set(template, full);
    const work = join(root, 'work', full);
    mkdirSync(work, { recursive: true });
    await run(work, ['init', '--quiet', '--initial-branch=main']);
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(work, path, '..'), { recursive: true });
      writeFileSync(join(work, path), content);
    }
    await run(work, ['add', '-A']);
    await run(work, ['commit', '--quiet', '-m', 'The template']);
    await run(root, ['clone', '--quiet', '--bare', work, dirOf(full)]);
  }

  const pullUrl = (full: string, n: number) =>
    gitlab ? `${url}/${full}/-/merge_requests/${n}` : `${url}/${full}/pull/${n}`;
  const mergeRequestJson = (full: string, p: Pull, mergeCommit?: string) => ({
    iid: p.number,
    project_id: Number(idOf(full)),
    state: p.merged ? 'merged' : p.open ? 'opened' : 'closed',
    web_url: pullUrl(full, p.number),
    sha: p.head,
    source_branch: p.branch,
    target_branch: 'main',
    title: p.title,
    ...(mergeCommit ? { merge_commit_sha: mergeCommit } : {}),
  });
  const pullJson = (full: string, p: Pull) => ({
    number: p.number,
    html_url: pullUrl(full, p.number),
    state: p.open ? 'open' : 'closed',
    merged: p.merged,
    merged_at: p.merged ? new Date().toISOString() : null,
    title: p.title,
    head: { ref: p.branch, sha: p.head },
    base: { ref: 'main' },
  });

  /** A pull request event as the host sends it: `opened`, `synchronize`, `closed` (GitHub's words). */
  async function deliver(full: string, action: string, p: Pull) {
    const labAction: Record<string, string> = {
      opened: 'open',
      synchronize: 'update',
      closed: p.merged ? 'merge' : 'close',
    };
    const body = JSON.stringify(
      gitlab
        ? {
            object_kind: 'merge_request',
            user: { username: 'jdoe' },
            project: { id: Number(idOf(full)), path_with_namespace: full },
            object_attributes: {
              iid: p.number,
              action: labAction[action],
              source_branch: p.branch,
              target_branch: 'main',
              last_commit: { id: p.head },
              title: p.title,
              url: pullUrl(full, p.number),
            },
          }
        : {
            action,
            number: p.number,
            pull_request: pullJson(full, p),
            repository: { full_name: full },
            sender: { login: 'octocat' },
          },
    );
    const res = await fetch(options.webhook.url(), {
      method: 'POST',
      headers: gitlab
        ? {
            'content-type': 'application/json',
            'x-gitlab-event': 'Merge Request Hook',
            'x-gitlab-token': options.webhook.secret,
          }
        : {
            'content-type': 'application/json',
            'x-github-event': 'pull_request',
            'x-github-delivery': randomUUID(),
            'x-hub-signature-256': `sha256=${createHmac('sha256', options.webhook.secret).update(body).digest('hex')}`,
          },
      body,
    });
    const answer = await res.json().catch(() => null);
    deliveries.push({ event: 'pull_request', action, status: res.status, answer });
    return { status: res.status, answer };
  }

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  /** A new open pull (merge) request from `branch`, at its tip. */
  async function newPull(full: string, branch: string, title: string): Promise<Pull> {
    const head = (await run(dirOf(full), ['rev-parse', `refs/heads/${branch}`])).stdout.toString().trim();
    const p: Pull = {
      number: (pulls.get(full)?.length ?? 0) + 1,
      branch,
      head,
      title,
      merged: false,
      open: true,
    };
    pulls.get(full)?.push(p);
    return p;
  }

  /** Merges the pull request's head into main as the host does (a merge commit); null when it conflicts. */
  async function mergeInto(full: string, p: Pull, title: string) {
    const dir = dirOf(full);
    const main = (await run(dir, ['rev-parse', 'refs/heads/main'])).stdout.toString().trim();
    const tree = await run(dir, ['merge-tree', '--write-tree', main, p.head]);
    if (tree.code !== 0) return null;
    const treeId = tree.stdout.toString().trim().split('\n')[0]!;
    const commit = (await run(dir, ['commit-tree', treeId, '-p', main, '-p', p.head, '-m', title])).stdout
      .toString()
      .trim();
    await run(dir, ['update-ref', 'refs/heads/main', commit, main]);
    p.merged = true;
    p.open = false;
    setImmediate(() => void deliver(full, 'closed', p));
    return commit;
  }

  /** GitLab's REST API v4, as much of it as the contract records. */
  async function gitLabApi(
    req: IncomingMessage,
    res: ServerResponse,
    json: Record<string, any>,
    path: string,
  ) {
    if (path === '/projects' && req.method === 'POST') {
      const template = projects.get(String(json.template_project_id));
      if (!template || !json.use_custom_template) return send(res, 400, { message: 'template_project_id' });
      const full = `group-${json.namespace_id}/${json.path}`;
      const id = String(100 + projects.size);
      await run(root, ['clone', '--quiet', '--bare', dirOf(template), dirOf(full)]);
      await run(dirOf(full), ['config', 'http.receivepack', 'true']);
      projects.set(id, full);
      pulls.set(full, []);
      return send(res, 201, {
        id: Number(id),
        path_with_namespace: full,
        http_url_to_repo: `${cloneBase()}/git/${full}.git`,
        web_url: `${url}/${full}`,
        default_branch: 'main',
      });
    }
    let m = /^\/projects\/(\d+)\/statuses\/([0-9a-f]{40})$/.exec(path);
    if (m && req.method === 'POST') {
      statuses.push({
        repo: fullOf(m[1]!),
        sha: m[2]!,
        state: json.state,
        context: json.name,
        description: json.description,
        url: json.target_url,
      });
      return send(res, 201, { sha: m[2], status: json.state, name: json.name });
    }
    m = /^\/projects\/(\d+)\/merge_requests$/.exec(path);
    if (m && req.method === 'POST') {
      const full = fullOf(m[1]!);
      const p = await newPull(full, json.source_branch, json.title);
      setImmediate(() => void deliver(full, 'opened', p));
      return send(res, 201, mergeRequestJson(full, p));
    }
    m = /^\/projects\/(\d+)\/merge_requests\/(\d+)(\/merge)?$/.exec(path);
    if (m) {
      const full = fullOf(m[1]!);
      const p = pulls.get(full)?.find((x) => x.number === Number(m![2]));
      if (!p) return send(res, 404, { message: '404 Not found' });
      if (!m[3] && req.method === 'GET') return send(res, 200, mergeRequestJson(full, p));
      if (m[3] && req.method === 'PUT') {
        if (json.sha !== p.head)
          return send(res, 409, { message: `SHA does not match HEAD of source branch: ${p.head}` });
        const commit = await mergeInto(full, p, json.merge_commit_message ?? 'Merge');
        if (!commit) return send(res, 405, { message: '405 Method Not Allowed' });
        return send(res, 200, mergeRequestJson(full, p, commit));
      }
    }
    violations.push(`no contract for ${req.method} ${path}`);
    return send(res, 501, { message: `no contract for ${req.method} ${path}` });
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? '/';
      handle(req, res, body, path).catch((e: Error) => send(res, 500, { message: e.message }));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, body: Buffer, path: string) {
    if (path.startsWith('/git/')) gitRequests.push({ path, authorized: Boolean(req.headers.authorization) });
    if (path.startsWith('/git/')) return serveGit(root, options.token, req, res, body, path.slice(4));
    // The contract's headers, with this stand-in's token in place of the recorded one.
    for (const [name, recorded] of Object.entries(spec.headers)) {
      const value =
        name === 'authorization'
          ? `Bearer ${options.token}`
          : name === 'private-token'
            ? options.token
            : recorded;
      if (req.headers[name] !== value) {
        violations.push(`${req.method} ${path}: header ${name} is ${req.headers[name] ?? 'missing'}`);
        return send(res, 501, { message: `header ${name}` });
      }
    }
    const json = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, any>) : {};
    if (gitlab) return gitLabApi(req, res, json, path);
    let m = /^\/repos\/([^/]+\/[^/]+)\/generate$/.exec(path);
    if (m && req.method === 'POST') {
      const full = `${json.owner}/${json.name}`;
      await run(root, ['clone', '--quiet', '--bare', dirOf(m[1]!), dirOf(full)]);
      await run(dirOf(full), ['config', 'http.receivepack', 'true']);
      pulls.set(full, []);
      return send(res, 201, {
        full_name: full,
        clone_url: `${cloneBase()}/git/${full}.git`,
        html_url: `${url}/${full}`,
        default_branch: 'main',
        private: json.private,
      });
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/statuses\/([0-9a-f]{40})$/.exec(path);
    if (m && req.method === 'POST') {
      statuses.push({
        repo: m[1]!,
        sha: m[2]!,
        state: json.state,
        context: json.context,
        description: json.description,
        url: json.target_url,
      });
      return send(res, 201, { state: json.state, context: json.context });
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/pulls$/.exec(path);
    if (m && req.method === 'POST') {
      const full = m[1]!;
      const p = await newPull(full, json.head, json.title);
      setImmediate(() => void deliver(full, 'opened', p));
      return send(res, 201, pullJson(full, p));
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/pulls\/(\d+)(\/merge)?$/.exec(path);
    if (m) {
      const full = m[1]!;
      const p = pulls.get(full)?.find((x) => x.number === Number(m![2]));
      if (!p) return send(res, 404, { message: 'Not Found' });
      if (!m[3] && req.method === 'GET') return send(res, 200, pullJson(full, p));
      if (m[3] && req.method === 'PUT') {
        if (json.sha !== p.head) return send(res, 409, { message: 'Head branch was modified' });
        const commit = await mergeInto(full, p, json.commit_title ?? 'Merge');
        if (!commit) return send(res, 405, { message: 'Pull Request is not mergeable' });
        return send(res, 200, { sha: commit, merged: true, message: 'Pull Request successfully merged' });
      }
    }
    violations.push(`no contract for ${req.method} ${path}`);
    return send(res, 501, { message: `no contract for ${req.method} ${path}` });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    get url() {
      return url;
    },
    violations,
    statuses,
    gitRequests,
    deliveries,
    /** Where the host keeps the app's repository (GitLab: in the platform's group). */
    fullName: (owner: string, name: string) => (gitlab ? `group-${owner}/${name}` : `${owner}/${name}`),
    /** The host's id for it, as the platform stores it. */
    idOf,
    pullUrl: (full: string, n: number) => pullUrl(full, n),
    /** A developer's pull request into main from a branch they pushed; the host then tells the platform. */
    async openPull(full: string, branch: string, title: string) {
      const p = await newPull(full, branch, title);
      return { number: p.number, ...(await deliver(full, 'opened', p)) };
    },
    /** A person with rights at the host merges a pull request there, around the platform. */
    async mergeAtHost(full: string, n: number) {
      const p = pulls.get(full)?.find((x) => x.number === n);
      if (!p) throw new Error(`no pull request ${n} of ${full}`);
      return mergeInto(full, p, `Merge #${n} (at the host)`);
    },
    /** Sends a delivery as it is, signed or not, as an attacker would. */
    async rawDelivery(body: string, headers: Record<string, string>) {
      const res = await fetch(options.webhook.url(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      return { status: res.status, text: await res.text() };
    },
    head: async (full: string, branch = 'main') =>
      (await run(dirOf(full), ['rev-parse', `refs/heads/${branch}`])).stdout.toString().trim(),
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
