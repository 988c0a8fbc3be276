import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, gitText } from './git.ts';
import { commitFilesIn } from './repo-commits.ts';

/** Who a commit the platform writes is by: the person, committed by the platform. */
export type CommitIdentity = { name: string; email: string };

export type CommitInfo = { commit: string; author: string; email: string; date: string; subject: string };

export type DiffView = {
  files: { path: string; added: number; removed: number }[];
  /** The unified diff, cut at `maxPatchBytes`. */
  patch: string;
  truncated: boolean;
};

/** A branch's move: from `before` to `after` (null: created, or deleted). */
export type RefMove = { ref: string; before: string | null; after: string | null };

/** What a push works on (`exclusive`): the copy's branches, and how its moves are published. */
export type PushCopy = {
  refs: () => Promise<Map<string, string>>;
  publish: (moves: RefMove[]) => Promise<void>;
};

export const mainBranch = 'main';
/** The platform's own GitOps repository (not an app's: no app id looks like this). */
export const gitopsRepository = 'platform-gitops';
const sha = /^[0-9a-f]{40}$/;

/** An app's repository id (no app id looks like the GitOps repository's), or the GitOps repository's. */
export const isRepositoryId = (id: string) => /^[a-z]{3}_[0-9a-z]{20}$/.test(id) || id === gitopsRepository;

/**
 * The pre-receive hook of every repository: main changes only when the platform merges a change request
 * (it moves the ref itself, which runs no hook), and only branches may be pushed.
 */
const preReceive = `#!/bin/sh
# microapp: main changes only through a change request; only branches may be pushed.
status=0
while read old new ref; do
  case "$ref" in
    refs/heads/${mainBranch})
      echo "microapp: ${mainBranch} is protected: push your change to a branch (git push origin HEAD:my-change) and the platform opens a change request for it"
      status=1 ;;
    refs/heads/*) ;;
    *)
      echo "microapp: only branches may be pushed; $ref was refused"
      status=1 ;;
  esac
done
exit $status
`;

/**
 * The platform's git repositories on disk: one bare repository per app (`DIR/APP_ID.git`), named by the
 * app's id so a name reused after a decommission never inherits another app's history. Every command runs
 * without the machine's git configuration (see git.ts).
 */
export function createRepoStore(deps: { dir: string; hooksDir: string; maxPushBytes: number }) {
  mkdirSync(deps.dir, { recursive: true, mode: 0o700 });
  mkdirSync(deps.hooksDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(deps.hooksDir, 'pre-receive'), preReceive, { mode: 0o700 });

  const pathOf = (id: string) => {
    if (!isRepositoryId(id)) throw new Error(`not a repository id: ${id}`);
    return join(deps.dir, `${id}.git`);
  };

  const exists = (id: string) => existsSync(join(pathOf(id), 'HEAD'));

  /** A new bare repository whose main holds `files`, in one commit; returns that commit. */
  async function create(id: string, files: Record<string, string>, message: string, author: CommitIdentity) {
    const dir = await init(id);
    // The first commit and main in one process: a fast-import stream of the files and the commit.
    const when = `${Math.floor(Date.now() / 1000)} +0000`;
    const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`;
    const safe = (v: string) => v.replace(/[<>\n]/g, '');
    const stream = [
      `commit refs/heads/${mainBranch}\n`,
      `author ${safe(author.name)} <${safe(author.email)}> ${when}\n`,
      `committer microapp <platform@microapp.invalid> ${when}\n`,
      data(message),
      ...Object.entries(files).map(([path, content]) => `M 100644 inline ${path}\n${data(content)}`),
      'done\n',
    ].join('');
    await git(dir, ['fast-import', '--quiet', '--done'], { input: stream });
    return gitText(dir, ['rev-parse', `refs/heads/${mainBranch}`]);
  }

  /** An empty bare repository for `id`, configured as every platform repository is. */
  async function init(id: string) {
    const dir = pathOf(id);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // No template: git's sample hooks are not wanted, and copying them is most of what init costs.
    await git(dir, ['init', '--bare', '--quiet', '--template=', `--initial-branch=${mainBranch}`]);
    // Written in one go rather than a `git config` per key: a repository is made at every registration.
    appendFileSync(
      join(dir, 'config'),
      [
        '[core]',
        `\thooksPath = "${deps.hooksDir.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`,
        // Pushes go through the platform's own authentication (git-http.ts) before git sees them.
        '[http]',
        '\treceivepack = true',
        '[receive]',
        '\tfsckObjects = true',
        `\tmaxInputSize = ${deps.maxPushBytes}`,
        '[uploadpack]',
        '\tallowFilter = true',
        '',
      ].join('\n'),
    );
    return dir;
  }

  /**
   * Talks git to a repository elsewhere (the company's GitHub or GitLab) with the platform's credentials:
   * only over https (or plain http when `plainHttp`, for a host on loopback), never file:// or ssh, and the
   * token goes as a header, never in the URL or a process's arguments.
   */
  const remoteEnv = (authorization: string, plainHttp: boolean): Record<string, string> => ({
    GIT_CONFIG_COUNT: '5',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `Authorization: ${authorization}`,
    GIT_CONFIG_KEY_1: 'protocol.allow',
    GIT_CONFIG_VALUE_1: 'never',
    GIT_CONFIG_KEY_2: 'protocol.https.allow',
    GIT_CONFIG_VALUE_2: 'always',
    GIT_CONFIG_KEY_3: 'protocol.http.allow',
    GIT_CONFIG_VALUE_3: plainHttp ? 'always' : 'never',
    // The token goes to the host asked, never to one a redirect names.
    GIT_CONFIG_KEY_4: 'http.followRedirects',
    GIT_CONFIG_VALUE_4: 'false',
  });

  /**
   * Copies every branch of the repository at `url` into the local copy (made first if there is none), so
   * the platform reads, diffs and builds the company's repository as its own. Branches gone there go here.
   */
  async function fetchFrom(
    id: string,
    url: string,
    remote: { authorization: string; plainHttp: boolean },
  ): Promise<void> {
    if (!exists(id)) await init(id);
    await git(pathOf(id), ['fetch', '--quiet', '--no-tags', '--prune', url, '+refs/heads/*:refs/heads/*'], {
      env: remoteEnv(remote.authorization, remote.plainHttp),
    });
  }

  /** Pushes a local commit to a branch of the repository at `url`. */
  async function pushTo(
    id: string,
    url: string,
    remote: { authorization: string; plainHttp: boolean },
    commit: string,
    branch: string,
  ): Promise<void> {
    await git(pathOf(id), ['push', '--quiet', url, `${commit}:refs/heads/${branch}`], {
      env: remoteEnv(remote.authorization, remote.plainHttp),
    });
  }

  /**
   * A commit on top of `parent` (or a first commit) that writes `files` into the parent's tree; no ref moves
   * (repo-commits.ts).
   */
  const commitFiles = (
    id: string,
    parent: string | null,
    files: Record<string, string>,
    message: string,
    author: CommitIdentity,
    options: { removeUnder?: string } = {},
  ) => commitFilesIn(pathOf(id), parent, files, message, author, options);

  /** Every branch and its commit. */
  async function refs(id: string): Promise<Map<string, string>> {
    const out = await gitText(pathOf(id), [
      'for-each-ref',
      '--format=%(refname) %(objectname)',
      'refs/heads',
    ]);
    return new Map(
      out
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(' ') as [string, string]),
    );
  }

  async function head(id: string, branch = mainBranch): Promise<string | null> {
    return (await refs(id)).get(`refs/heads/${branch}`) ?? null;
  }

  /** Moves a branch from `expected` to `commit`, or fails if it moved meanwhile (compare and swap). */
  async function setBranch(id: string, branch: string, commit: string, expected: string | null) {
    await git(pathOf(id), [
      'update-ref',
      '-m',
      'microapp',
      `refs/heads/${branch}`,
      commit,
      ...(expected ? [expected] : ['0000000000000000000000000000000000000000']),
    ]);
  }

  async function log(id: string, rev: string, limit = 20): Promise<CommitInfo[]> {
    const out = await git(
      pathOf(id),
      ['log', `--max-count=${limit}`, '--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1e', rev, '--'],
      {
        allowFail: true,
      },
    );
    if (out.code !== 0) return [];
    return out.stdout
      .toString('utf8')
      .split('\x1e')
      .map((r) => r.trim())
      .filter(Boolean)
      .map((r) => {
        const [commit = '', author = '', email = '', date = '', subject = ''] = r.split('\x1f');
        return { commit, author, email, date, subject };
      });
  }

  /** A commit's files as a tar.gz, what a build unpacks. */
  async function archive(id: string, commit: string): Promise<Buffer> {
    if (!sha.test(commit)) throw new Error(`not a commit: ${commit}`);
    return (await git(pathOf(id), ['archive', '--format=tar.gz', commit])).stdout;
  }

  async function isAncestor(id: string, ancestor: string, commit: string) {
    const r = await git(pathOf(id), ['merge-base', '--is-ancestor', ancestor, commit], { allowFail: true });
    return r.code === 0;
  }

  async function mergeBase(id: string, a: string, b: string) {
    return gitText(pathOf(id), ['merge-base', a, b]);
  }

  /** What `head` changes against `base`: a file list and the patch, without any external diff driver. */
  async function diff(id: string, base: string, head: string, maxPatchBytes = 256 * 1024): Promise<DiffView> {
    const dir = pathOf(id);
    const common = ['--no-ext-diff', '--no-textconv', '--no-color', base, head];
    const numstat = await gitText(dir, ['diff', '--numstat', ...common]);
    const files = numstat
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [added = '-', removed = '-', ...path] = line.split('\t');
        return { path: path.join('\t'), added: Number(added) || 0, removed: Number(removed) || 0 };
      });
    const patch = await git(dir, ['diff', ...common], { maxBytes: maxPatchBytes });
    return { files, patch: patch.stdout.toString('utf8'), truncated: patch.truncated };
  }

  /** Whether the repository holds the commit (a copy of a hosted repository may not have fetched it yet). */
  const hasCommit = async (id: string, commit: string) =>
    exists(id) &&
    (await git(pathOf(id), ['cat-file', '-e', `${commit}^{commit}`], { allowFail: true })).code === 0;

  /** A file at a commit, or null when the commit has none. */
  async function readFile(id: string, commit: string, path: string): Promise<string | null> {
    const r = await git(pathOf(id), ['show', `${commit}:${path}`], {
      allowFail: true,
      maxBytes: 1024 * 1024,
    });
    return r.code === 0 ? r.stdout.toString('utf8') : null;
  }

  /**
   * Merges `head` into main: a fast-forward when main has not moved since the branch left it, otherwise a
   * merge commit (refused, naming the files, when they conflict). Returns the new main.
   */
  async function merge(id: string, headCommit: string, message: string, by: CommitIdentity) {
    const dir = pathOf(id);
    const main = await head(id);
    if (!main) throw new Error('the repository has no main branch');
    if (await isAncestor(id, main, headCommit)) {
      await setBranch(id, mainBranch, headCommit, main);
      return { commit: headCommit, fastForward: true };
    }
    const merged = await git(dir, ['merge-tree', '--write-tree', '--name-only', main, headCommit], {
      allowFail: true,
    });
    const [tree = '', ...rest] = merged.stdout.toString('utf8').trim().split('\n');
    if (merged.code !== 0) {
      const conflicts = rest.filter((l) => l && !l.startsWith('Auto-merging') && !l.startsWith('CONFLICT'));
      throw new MergeConflict(conflicts.filter(Boolean));
    }
    const env = {
      GIT_AUTHOR_NAME: by.name,
      GIT_AUTHOR_EMAIL: by.email,
      GIT_COMMITTER_NAME: 'microapp',
      GIT_COMMITTER_EMAIL: 'platform@microapp.invalid',
    };
    const commit = await gitText(
      dir,
      ['commit-tree', tree, '-p', main, '-p', headCommit, '-m', message],
      env,
    );
    await setBranch(id, mainBranch, commit, main);
    return { commit, fastForward: false };
  }

  /** Every branch with its history as a git bundle (what an engineering team clones at graduation). */
  async function bundle(id: string): Promise<Buffer | null> {
    if (!exists(id)) return null;
    return (await git(pathOf(id), ['bundle', 'create', '--quiet', '-', '--all'])).stdout;
  }

  return {
    dir: deps.dir,
    init,
    /** Whether the repository is shared through the database and the blob store (shared-repos.ts). */
    shares: (_id: string) => false,
    /** Whether the repository exists (shared-repos.ts asks the database too). */
    present: async (id: string) => exists(id),
    /** Brings the copy up to date with the shared state: nothing to do for a folder of repositories. */
    sync: async (_id: string) => false,
    /**
     * Runs a push on the repository with no other write in between; shared repositories publish its moves
     * (shared-repos.ts), a folder of repositories has nothing to publish.
     */
    exclusive: <R>(id: string, work: (copy: PushCopy) => Promise<R>) =>
      work({ refs: () => refs(id), publish: async () => {} }),
    bundle,
    pathOf,
    exists,
    create,
    fetchFrom,
    pushTo,
    hasCommit,
    commitFiles,
    refs,
    head,
    setBranch,
    log,
    archive,
    isAncestor,
    mergeBase,
    diff,
    readFile,
    merge,
  };
}

export class MergeConflict extends Error {
  readonly files: string[];
  constructor(files: string[]) {
    super(`the change conflicts with main in ${files.join(', ') || 'some files'}`);
    this.files = files;
  }
}

export type RepoStore = ReturnType<typeof createRepoStore>;
