import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { c, x } from 'tar';
import { type Kek, sealBytes, unsealBytes } from '../secrets/envelope.ts';

/** What is kept of an archived data directory besides the file itself. */
export type SealedArchive = {
  path: string;
  digest: string;
  bytes: number;
  kekId: string;
  wrappedKey: string;
};

async function tarGz(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = c({ gzip: true, cwd: dir, portable: true }, ['.']);
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Packs an app's data directory (a missing one archives as empty), encrypts it under the KEK bound to
 * the app, and writes it to `path` atomically. Writing the same path again replaces it, so a step
 * retried after a crash leaves one archive.
 */
export async function sealDirectory(
  kek: Kek,
  dataDir: string,
  path: string,
  appId: string,
): Promise<SealedArchive> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const plain = await tarGz(dataDir);
  const sealed = sealBytes(kek, plain, `archive:${appId}`);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, sealed.body, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return {
    path,
    digest: `sha256:${createHash('sha256').update(sealed.body).digest('hex')}`,
    bytes: sealed.body.length,
    kekId: sealed.kekId,
    wrappedKey: sealed.wrappedKey,
  };
}

/** Decrypts an archive (checking its digest first) and unpacks it into an empty `dataDir`. */
export async function openArchive(keks: Kek[], archive: SealedArchive, dataDir: string, appId: string) {
  if (!existsSync(archive.path)) throw new Error(`the archive file ${archive.path} is missing`);
  const body = readFileSync(archive.path);
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  if (digest !== archive.digest)
    throw new Error(`the archive ${archive.path} was changed since it was written`);
  const plain = unsealBytes(
    keks,
    { kekId: archive.kekId, wrappedKey: archive.wrappedKey, body },
    `archive:${appId}`,
  );
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = `${dataDir}.restore.tar.gz`;
  writeFileSync(file, plain, { mode: 0o600 });
  try {
    await x({ file, cwd: dataDir, strict: true, preservePaths: false });
  } finally {
    rmSync(file, { force: true });
  }
}
