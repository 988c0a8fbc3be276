import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git, gitText } from './git.ts';
import type { CommitIdentity } from './repo-store.ts';

/** Commits the platform writes into a repository without a work tree (repo-store.ts). */

/**
 * A commit on top of `parent` (or a first commit) that writes `files` (path → content) into the parent's
 * tree, written without a work tree; `removeUnder` first empties a folder. Returns the new commit; no
 * ref moves.
 */
export async function commitFilesIn(
  dir: string,
  parent: string | null,
  files: Record<string, string>,
  message: string,
  author: CommitIdentity,
  options: { removeUnder?: string } = {},
) {
  const index = join(tmpdir(), `microapp-index-${randomUUID()}`);
  const env = {
    GIT_INDEX_FILE: index,
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: 'microapp',
    GIT_COMMITTER_EMAIL: 'platform@microapp.invalid',
  };
  try {
    await git(dir, parent ? ['read-tree', parent] : ['read-tree', '--empty'], { env });
    if (parent && options.removeUnder) {
      // What the folder held before goes, so a file the new content no longer has does not linger.
      const listed = await gitText(
        dir,
        ['ls-tree', '-r', '--name-only', parent, '--', options.removeUnder],
        env,
      );
      const gone = listed.split('\n').filter(Boolean);
      if (gone.length)
        await git(dir, ['update-index', '--index-info'], {
          env,
          input: `${gone.map((p) => `0 ${'0'.repeat(40)}\t${p}`).join('\n')}\n`,
        });
    }
    return await writeCommit(dir, env, files, parent, message);
  } finally {
    rmSync(index, { force: true });
  }
}

async function writeCommit(
  dir: string,
  env: Record<string, string>,
  files: Record<string, string>,
  parent: string | null,
  message: string,
) {
  // The contents go through files (one hash-object for all), and the index gets them in one call.
  const paths = Object.keys(files);
  if (paths.length > 0) {
    const staging = join(tmpdir(), `microapp-blobs-${randomUUID()}`);
    mkdirSync(staging, { mode: 0o700 });
    try {
      const names = paths.map((_, i) => join(staging, String(i)));
      paths.forEach((path, i) => writeFileSync(names[i]!, files[path]!));
      const hashed = (
        await git(dir, ['hash-object', '-w', '--stdin-paths'], { env, input: `${names.join('\n')}\n` })
      ).stdout
        .toString()
        .trim()
        .split('\n');
      const info = paths.map((path, i) => `100644 ${hashed[i]}\t${path}`).join('\n');
      await git(dir, ['update-index', '--add', '--index-info'], { env, input: `${info}\n` });
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const tree = await gitText(dir, ['write-tree'], env);
  return gitText(dir, ['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', message], env);
}
