import { posix } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { AppError } from '../../errors.ts';

/** How far an artifact may expand: refused before anything is written when it would go further. */
export type UnpackLimits = {
  /** Total bytes of its files once unpacked. */
  bytes: number;
  /** Entries (files, folders, links). */
  entries: number;
  /** Unpacked bytes per packed byte, counted once the artifact unpacks to more than 64 MiB. */
  ratio: number;
};

export const defaultUnpackLimits: UnpackLimits = { bytes: 1024 ** 3, entries: 200_000, ratio: 100 };

/** A package the artifact ships, from its lockfile or from a `package.json` under `node_modules/`. */
export type ShippedPackage = { name: string; version: string; from: string };

export type ArtifactContents = {
  files: number;
  bytes: number;
  /** Packages the artifact holds or will install: what an honest SBOM of it lists. */
  packages: ShippedPackage[];
};

const packageRoot = /^(?:.*\/)?node_modules\/((?:@[^/]+\/)?[^/]+)\/package\.json$/;
const smallJson = 1024 * 1024;

/**
 * Reads an artifact (tar.gz) without writing anything: counts what it would unpack to, refuses entries that
 * are not files, folders or links inside it (hard links, devices, absolute or escaping paths and link
 * targets) and anything past `limits`, and lists the packages it ships: the lockfile's packages that are
 * not development-only, and every `node_modules/**\/package.json` it holds. The platform derives what it
 * signs from this, never from what the client says the artifact holds.
 */
export async function readArtifact(
  bytes: Buffer,
  limits: UnpackLimits = defaultUnpackLimits,
): Promise<ArtifactContents> {
  let files = 0;
  let total = 0;
  let problem: string | null = null;
  const packages: ShippedPackage[] = [];
  let lockfile: string | null = null;
  const refuse = (why: string) => {
    problem ??= why;
  };
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      const path = entry.path.replace(/^\.\//, '');
      if (++files > limits.entries) refuse(`it holds more than ${limits.entries} entries`);
      const normal = posix.normalize(path);
      if (path.startsWith('/') || normal === '..' || normal.startsWith('../'))
        refuse(`${path} lies outside the app folder`);
      if (entry.type === 'SymbolicLink') {
        const target = posix.normalize(posix.join(posix.dirname(normal), entry.linkpath ?? ''));
        if ((entry.linkpath ?? '').startsWith('/') || target === '..' || target.startsWith('../'))
          refuse(`${path} is a link to ${entry.linkpath}, outside the app folder`);
      } else if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'Directory')
        refuse(`${path} is a ${entry.type}, which an artifact may not hold`);
      total += entry.size ?? 0;
      if (total > limits.bytes) refuse(`it unpacks to more than ${Math.round(limits.bytes / 1024 ** 2)} MiB`);
      if (total > 64 * 1024 ** 2 && total > bytes.length * limits.ratio)
        refuse(`it expands more than ${limits.ratio} times (a compression bomb)`);
      const wanted = normal === 'package-lock.json' || packageRoot.test(normal);
      if (!wanted || problem || (entry.size ?? 0) > smallJson) return entry.resume();
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (normal === 'package-lock.json') lockfile = text;
        else {
          try {
            const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
            const name = normal.match(packageRoot)![1]!;
            packages.push({
              name: typeof pkg.name === 'string' ? pkg.name : name,
              version: typeof pkg.version === 'string' ? pkg.version : '0.0.0',
              from: normal,
            });
          } catch {
            refuse(`${normal} is not JSON`);
          }
        }
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('error', reject);
    parser.on('warn', (_code: string, message: string) => refuse(message));
    parser.on('end', () => resolve());
    parser.end(bytes);
  }).catch((e: Error) => refuse(`it is not a readable tar.gz (${e.message})`));
  if (problem) throw new AppError('validation_failed', `the artifact is refused: ${problem}`);
  if (lockfile) {
    try {
      const lock = JSON.parse(lockfile) as {
        packages?: Record<string, { name?: string; version?: string; dev?: boolean; link?: boolean }>;
      };
      for (const [path, e] of Object.entries(lock.packages ?? {})) {
        if (path === '' || e.dev || e.link || !e.version) continue;
        const name = e.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
        packages.push({ name, version: e.version, from: 'package-lock.json' });
      }
    } catch {
      throw new AppError('validation_failed', 'the artifact is refused: its package-lock.json is not JSON');
    }
  }
  return { files, bytes: total, packages };
}
