import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What the platform keeps as blobs: signed artifacts (`artifact`), sealed data archives of decommissioned
 * apps (`archive`) and the git packs of shared repositories (`pack`, shared-repos.ts). Bundles, SBOMs and
 * scan results live in the database beside them.
 */
export type BlobKind = 'artifact' | 'archive' | 'pack';

/**
 * Content-addressed storage that every replica shares: a blob is written once under its SHA-256 digest and
 * read back only when its bytes still hash to that digest.
 */
export type BlobStore = {
  /** Where blobs live, for logs and `/readyz`: a folder or a registry's address, never a credential. */
  where: string;
  /** Stores the bytes (a no-op when they are already there) and returns `sha256:HEX`. */
  put(kind: BlobKind, bytes: Buffer): Promise<string>;
  /** The bytes stored under `digest`; throws `BlobMissingError` when there are none. */
  get(kind: BlobKind, digest: string): Promise<Buffer>;
  has(kind: BlobKind, digest: string): Promise<boolean>;
  /** Forgets a blob (a purged archive); gone already is fine. */
  remove(kind: BlobKind, digest: string): Promise<void>;
  /** Throws, saying why, when the store cannot be written to or read from now. */
  check(): Promise<void>;
  /**
   * Keeps an artifact's Sigstore bundles beside it, where the store can (an OCI registry: as referrers of
   * the artifact, which cosign and oras find). The platform's database keeps them in any case.
   */
  attach?(
    artifact: { digest: string; size: number },
    bundles: { name: string; bundle: unknown }[],
  ): Promise<void>;
};

/** A blob the store does not hold, or holds with other bytes than its digest names. */
export class BlobMissingError extends Error {
  /** True when bytes are there but no longer hash to their digest (changed behind the platform's back). */
  readonly changed: boolean;
  constructor(kind: BlobKind, digest: string, changed = false) {
    super(`the ${kind} ${digest} ${changed ? 'was changed in the blob store' : 'is not in the blob store'}`);
    this.name = 'BlobMissingError';
    this.changed = changed;
  }
}

export const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** The hex of a `sha256:HEX` digest, refusing anything else (it becomes a file name or a URL path). */
export function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest.slice(0, 80)}`);
  return m[1] as string;
}

/** Checks bytes read back against the digest they were stored under. */
export function verified(kind: BlobKind, digest: string, bytes: Buffer): Buffer {
  if (digestOf(bytes) !== digest) throw new BlobMissingError(kind, digest, true);
  return bytes;
}

// The folder layout predates the store: artifacts keep their `.tar.gz` names, so data folders written by an
// earlier release are read as they are.
const folders: Record<BlobKind, { dir: string; suffix: string }> = {
  artifact: { dir: 'artifacts', suffix: '.tar.gz' },
  archive: { dir: 'archives', suffix: '.sealed' },
  pack: { dir: 'repo-packs', suffix: '.pack' },
};

/**
 * The embedded default: blobs as read-only files under the data folder (`artifacts/sha256/HEX.tar.gz`,
 * `archives/sha256/HEX.sealed`), written to a temporary name and renamed, so a crash leaves no half blob.
 * @example const blobs = createFolderBlobStore('/var/lib/microapp'); await blobs.put('artifact', bytes)
 */
export function createFolderBlobStore(dataDir: string): BlobStore {
  const fileOf = (kind: BlobKind, digest: string) =>
    join(dataDir, folders[kind].dir, 'sha256', `${hexOf(digest)}${folders[kind].suffix}`);
  return {
    where: dataDir,
    async put(kind, bytes) {
      const digest = digestOf(bytes);
      const file = fileOf(kind, digest);
      if (existsSync(file)) return digest;
      mkdirSync(join(dataDir, folders[kind].dir, 'sha256'), { recursive: true, mode: 0o700 });
      const tmp = `${file}.${randomUUID()}.tmp`;
      writeFileSync(tmp, bytes, { mode: 0o400 });
      renameSync(tmp, file);
      return digest;
    },
    async get(kind, digest) {
      const file = fileOf(kind, digest);
      if (!existsSync(file)) throw new BlobMissingError(kind, digest);
      return verified(kind, digest, readFileSync(file));
    },
    async has(kind, digest) {
      return existsSync(fileOf(kind, digest));
    },
    async remove(kind, digest) {
      rmSync(fileOf(kind, digest), { force: true });
    },
    async check() {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const probe = join(dataDir, `.blob-check-${randomUUID()}`);
      writeFileSync(probe, 'ok');
      rmSync(probe);
      if (statfsSync(dataDir).bavail === 0) throw new Error(`the blob folder ${dataDir} has no free space`);
    },
  };
}
