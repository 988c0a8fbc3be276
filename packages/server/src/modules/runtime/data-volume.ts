import { execFile } from 'node:child_process';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { type SealedArchive, sealDirectory } from '../lifecycle/archive.ts';
import type { Kek } from '../secrets/envelope.ts';

/**
 * An app's data on a filesystem of its own: an ext4 image beside its data folder (`<data folder>.img`),
 * mounted at /data inside the app's sandbox only (in its private mount namespace, so the host never sees the
 * mount and nothing is left mounted when the app stops). The image's size is the app's quota: a full disk is
 * ENOSPC ("no space left on device") for the app, and the platform's own disk is untouched. Needs root and a
 * free loop device; used with the app's own host user (see host-user.ts).
 */
export type DataVolume = { image: string; sizeMb: number };

const execFileAsync = promisify(execFile);

/** Runs a system command without blocking the event loop (a copy into a volume can take a while). */
async function run(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      maxBuffer: 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${command} failed: ${(e.stderr || e.message).trim().split('\n').at(-1)}`);
  }
}

/** A new sparse file of `sizeMb` at `path`, formatted as ext4 (no reserved blocks) with `options`. */
async function makeImage(path: string, sizeMb: number, mode: number, options: string[]): Promise<void> {
  rmSync(path, { force: true });
  const fd = openSync(path, 'wx', mode);
  ftruncateSync(fd, sizeMb * 1024 * 1024);
  closeSync(fd);
  await run('mkfs.ext4', ['-q', '-F', '-m', '0', ...options, path]);
}

/** The volume of an app's data folder. */
export const volumeOf = (dataDir: string, sizeMb: number): DataVolume => ({
  image: `${dataDir}.img`,
  sizeMb,
});

/**
 * Makes the app's image when it has none, owned by the app's host user, and moves into it whatever its data
 * folder holds (data from before quotas, or a restore), so the folder is left empty.
 */
export async function prepareVolume(volume: DataVolume, dataDir: string, uid: number): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pending = readdirSync(dataDir).length > 0;
  if (existsSync(volume.image) && !pending) return;
  const image = existsSync(volume.image) ? volume.image : `${volume.image}.new`;
  if (image !== volume.image) {
    await makeImage(image, volume.sizeMb, 0o600, ['-E', `root_owner=${uid}:${uid}`, '-L', 'microapp-data']);
  }
  if (pending)
    await run('unshare', [
      '--mount',
      '--propagation',
      'private',
      '/bin/sh',
      '-c',
      'set -e; m=$(mktemp -d); mount -o loop,nosuid,nodev "$1" "$m"; cp -a "$2/." "$m/"; chown -R -h "$3:$3" "$m"; umount "$m"; rmdir "$m"',
      'sh',
      image,
      dataDir,
      String(uid),
    ]);
  if (image !== volume.image) renameSync(image, volume.image);
  for (const name of readdirSync(dataDir)) rmSync(join(dataDir, name), { recursive: true, force: true });
}

/**
 * Seals an app's data for its archive: what its volume holds when it has one (mounted read-only for the
 * while, away from the app, which is stopped by then), else its data folder.
 */
export async function sealAppData(
  kek: Kek,
  dataDir: string,
  path: string,
  appId: string,
): Promise<SealedArchive> {
  const image = `${dataDir}.img`;
  if (!existsSync(image)) return sealDirectory(kek, dataDir, path, appId);
  // The app was just stopped: its sandbox's mount of the volume goes away with its last process, which
  // may outlive the stop by a moment. Wait until no loop device holds the image, then read it.
  for (let i = 0; i < 50 && (await run('losetup', ['-j', image])).trim(); i++)
    await new Promise((r) => setTimeout(r, 100));
  const at = mkdtempSync(join(dirname(dataDir), '.seal-'));
  await run('mount', ['-o', 'loop,ro,nosuid,nodev,noexec', image, at]);
  try {
    return await sealDirectory(kek, at, path, appId);
  } finally {
    await run('umount', [at]);
    rmdirSync(at);
  }
}

/**
 * A read-only ext4 image of an unpacked artifact, made once beside it (`<code folder>.img`), sized to what it
 * holds: the sandbox mounts its code from it, so its mount table shows a device, not the host's folders.
 */
export async function codeImageOf(appDir: string): Promise<string> {
  const image = `${appDir}.img`;
  if (existsSync(image)) return image;
  const kb = Number.parseInt(await run('du', ['-sk', '--apparent-size', appDir]), 10) || 0;
  // ext4's own structures and a block per small file: a third more, and 16 MB at least.
  const sizeMb = Math.max(16, Math.ceil((kb * 1.35) / 1024) + 8);
  const tmp = `${image}.${process.pid}.new`;
  await makeImage(tmp, sizeMb, 0o644, ['-O', '^has_journal', '-d', appDir, '-L', 'microapp-code']);
  renameSync(tmp, image);
  return image;
}

/** Deletes an app's data: its folder and its volume. */
export function removeAppData(dataDir: string): void {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${dataDir}.img`, { force: true });
}
