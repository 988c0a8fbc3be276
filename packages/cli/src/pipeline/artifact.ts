import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { create } from 'tar';

const excluded = new Set(['node_modules', '.git', '.microapp', 'data', 'coverage']);

/**
 * The app's files, sorted: no data, no version control, no outputs of earlier runs, and no `node_modules`
 * unless `dependencies` says so (the package step's folder, where npm installed the production ones).
 * Nothing is followed: a link is archived as a link, and a linked folder is not walked into.
 */
export function artifactFiles(dir: string, options: { dependencies?: boolean } = {}): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (d === dir && excluded.has(name) && !(name === 'node_modules' && options.dependencies)) continue;
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() || st.isSymbolicLink()) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * A deterministic tar.gz: sorted entries, fixed times, modes and owners, so the same sources give
 * the same bytes and the same digest on any machine.
 */
export async function buildArtifact(
  dir: string,
  out: string,
  options: { dependencies?: boolean } = {},
): Promise<{ digest: string; files: number; bytes: number }> {
  const files = artifactFiles(dir, options);
  // Modes come from the files (git normalizes them to 644/755); owners, times and order are fixed here.
  await create(
    {
      gzip: { level: 9 },
      file: out,
      cwd: dir,
      portable: true,
      mtime: new Date(0),
      noDirRecurse: true,
      noPax: true,
    },
    files,
  );
  const bytes = readFileSync(out);
  return {
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    files: files.length,
    bytes: bytes.length,
  };
}
