import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../errors.ts';

/** A commit's name as the platform's repositories (SHA-1) write it. */
export const sha = /^[0-9a-f]{40}$/;
// A branch name as git allows it, and nothing a line of `git update-ref --stdin` could be split on.
export const branch = {
  test: (ref: string) =>
    /^refs\/heads\/[^\s~^:?*[\\]+$/.test(ref) &&
    ![...ref].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f),
};

/**
 * The branches of a copy as git's files backend keeps them (`packed-refs`, overridden by loose files under
 * `refs/heads/`), read without starting git: every read of a shared repository compares them.
 */
export function branchesIn(gitDir: string): Map<string, string> {
  const out = new Map<string, string>();
  let packed = '';
  try {
    packed = readFileSync(join(gitDir, 'packed-refs'), 'utf8');
  } catch {}
  for (const line of packed.split('\n')) {
    const [commit, ref] = line.split(' ');
    if (commit && ref?.startsWith('refs/heads/') && sha.test(commit)) out.set(ref, commit);
  }
  const walk = (folder: string, prefix: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (entry.name.endsWith('.lock')) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path, `${prefix}${entry.name}/`);
      else {
        const commit = readFileSync(path, 'utf8').trim();
        if (sha.test(commit)) out.set(`${prefix}${entry.name}`, commit);
      }
    }
  };
  if (existsSync(join(gitDir, 'refs', 'heads'))) walk(join(gitDir, 'refs', 'heads'), 'refs/heads/');
  return out;
}

/** Why a shared repository's branch could not move: another replica (or request) moved it first. */
export class RefMoved extends AppError {
  constructor(ref: string) {
    super(
      'conflict',
      `${ref.replace('refs/heads/', '')} moved while this change was written (another push or merge came first): fetch and try again`,
    );
  }
}
