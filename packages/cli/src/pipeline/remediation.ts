import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLockfile } from './sbom.ts';

/**
 * What to do about a vulnerable package, in the app's own terms: a direct dependency is upgraded with
 * `npm install`; one that comes with another package is pinned with an `overrides` entry (or the direct
 * dependency that brings it is upgraded). `npm install pkg@version` does nothing for a transitive package.
 */
export function remedies(
  dir: string,
  findings: { package: string; version: string; fixed: string[] }[],
): string[] {
  let direct = new Set<string>();
  let lock: ReturnType<typeof readLockfile> | null = null;
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    direct = new Set(
      Object.keys({ ...pkg.dependencies, ...pkg.devDependencies, ...pkg.optionalDependencies }),
    );
    lock = readLockfile(dir);
  } catch {
    // no readable package.json or lockfile: the general advice below
  }
  const byPurl = new Map((lock?.packages ?? []).map((p) => [p.purl, p]));
  /** The direct dependencies whose tree holds this package. */
  const broughtBy = (name: string, version: string): string[] => {
    if (!lock) return [];
    const out: string[] = [];
    for (const top of lock.edges.get('root') ?? []) {
      const seen = new Set<string>();
      const stack = [top];
      while (stack.length) {
        const at = stack.pop()!;
        if (seen.has(at)) continue;
        seen.add(at);
        const p = byPurl.get(at);
        if (p && p.name === name && p.version === version && at !== top) {
          out.push(byPurl.get(top)!.name);
          break;
        }
        for (const next of lock.edges.get(at) ?? []) stack.push(next);
      }
    }
    return [...new Set(out)].sort();
  };
  const lines: string[] = [];
  for (const f of findings) {
    const to = f.fixed[0];
    if (!to) {
      lines.push(
        `${f.package}@${f.version} has no fixed version yet: replace it, or ask a security reviewer for a time-limited exception`,
      );
      continue;
    }
    if (direct.has(f.package)) {
      lines.push(`npm install ${f.package}@${to}`);
      continue;
    }
    const via = broughtBy(f.package, f.version);
    lines.push(
      `${f.package} comes with ${via.length ? via.join(', ') : 'another package'}: upgrade ${via.length === 1 ? via[0] : 'that package'} to a release that needs ${f.package} ${to} or later, or pin it: add "overrides": { "${f.package}": "${to}" } to package.json and run npm install`,
    );
  }
  return [...new Set(lines)];
}
