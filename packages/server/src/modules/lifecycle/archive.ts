import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { c, Parser, type ReadEntry } from 'tar';
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

/** What a restore put back, and what it would not. */
export type RestoreReport = { files: number; links: number; skipped: string[] };

/**
 * Decrypts an archive (checking its digest first) and puts it back as `dataDir`, atomically: it is unpacked
 * into a new folder beside it, which replaces `dataDir` only once every entry is in. The archive holds what
 * an app wrote, so every entry is treated as hostile: links are restored as links, whatever they point at
 * (an absolute link means a path inside the app's sandbox), and never followed; nothing is written through a
 * link; setuid, setgid and sticky bits are dropped; device nodes and FIFOs are skipped and reported.
 */
export async function openArchive(
  keks: Kek[],
  archive: SealedArchive,
  dataDir: string,
  appId: string,
  /** The sealed bytes, when they come from the blob store; read from `archive.path` otherwise. */
  stored?: Buffer,
): Promise<RestoreReport> {
  if (!stored && !existsSync(archive.path)) throw new Error(`the archive file ${archive.path} is missing`);
  const body = stored ?? readFileSync(archive.path);
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  if (digest !== archive.digest)
    throw new Error(`the archive ${archive.path} was changed since it was written`);
  const plain = unsealBytes(
    keks,
    { kekId: archive.kekId, wrappedKey: archive.wrappedKey, body },
    `archive:${appId}`,
  );
  const fresh = `${dataDir}.restore-${randomBytes(6).toString('hex')}`;
  mkdirSync(fresh, { mode: 0o700 });
  try {
    const report = await unpackConfined(plain, fresh);
    const old = `${dataDir}.replaced-${randomBytes(6).toString('hex')}`;
    if (existsSync(dataDir)) renameSync(dataDir, old);
    renameSync(fresh, dataDir);
    rmSync(old, { recursive: true, force: true });
    return report;
  } catch (error) {
    rmSync(fresh, { recursive: true, force: true });
    throw error;
  }
}

/** Unpacks a tar.gz into `root` without following or writing through any link; see openArchive. */
async function unpackConfined(tgz: Buffer, root: string): Promise<RestoreReport> {
  const report: RestoreReport = { files: 0, links: 0, skipped: [] };
  let failure: Error | null = null;
  /** The host path of an entry, once no part of it on the way is a link (or anything but a folder). */
  const place = (entryPath: string): string | null => {
    const rel = posix.normalize(entryPath.replace(/^\.\//, ''));
    if (rel === '.' || rel === '') return null;
    if (rel.startsWith('/') || rel === '..' || rel.startsWith('../'))
      throw new Error(`${entryPath} lies outside the data folder`);
    const parts = rel.split('/');
    let at = root;
    for (const part of parts.slice(0, -1)) {
      at = join(at, part);
      const st = lstatSync(at, { throwIfNoEntry: false });
      if (!st) mkdirSync(at, { mode: 0o700 });
      else if (!st.isDirectory())
        throw new Error(`${entryPath} would be written through ${part}, which is not a folder`);
    }
    return join(root, rel);
  };
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      try {
        if (failure) return entry.resume();
        const target = place(entry.path);
        if (!target) return entry.resume();
        const mode = (entry.mode ?? 0o600) & 0o777;
        if (entry.type === 'Directory') {
          const st = lstatSync(target, { throwIfNoEntry: false });
          if (!st) mkdirSync(target, { mode: mode | 0o700 });
          else if (!st.isDirectory()) throw new Error(`${entry.path} is both a folder and something else`);
          return entry.resume();
        }
        if (entry.type === 'SymbolicLink') {
          symlinkSync(entry.linkpath ?? '', target);
          report.links++;
          return entry.resume();
        }
        if (entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile') {
          const fd = openSync(
            target,
            constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
            mode,
          );
          entry.on('data', (chunk: Buffer) => writeSync(fd, chunk));
          entry.on('end', () => closeSync(fd));
          report.files++;
          return;
        }
        // Hard links, devices, FIFOs: not an app's data to restore.
        report.skipped.push(`${entry.path} (${entry.type})`);
        entry.resume();
      } catch (error) {
        failure ??= error as Error;
        entry.resume();
      }
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('error', reject);
    parser.on('end', () => resolve());
    parser.end(tgz);
  });
  if (failure) throw failure;
  return report;
}
