import { createHash, randomBytes } from 'node:crypto';
import { chownSync, lstatSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Who a sandboxed app is on the host. bubblewrap started by root maps the sandbox's user to root, so
 * whatever an app writes to its data folder would belong to host root, and a setuid copy of a binary it
 * made would be root's. Instead, when the platform runs as root, each app runs as an unprivileged host
 * user of its own (never 0): its folders are bound into a private mount namespace while still root, and
 * bubblewrap then starts as that user, which owns the app's data and socket folders and nothing else.
 */

/** Where app sockets live when the platform runs as root (each in a folder with a random name). */
export const socketRoot = '/run/microapp-sockets';

/** Where the per-instance bind points live: a folder others may pass through (0711) but not list. */
export const stageRoot = '/run/microapp-sandbox';

/** Host uids from here up are the platform's apps' (MICROAPP_SANDBOX_UID_BASE moves the range). */
export const defaultSandboxUidBase = 200_000;

/** The host uid (and gid) an app runs as: `base` plus a number from the app's id, below 2^31. */
export function hostUidFor(appKey: string, base: number): number {
  const n = createHash('sha256').update(appKey).digest().readUInt32BE(0) % 60_000;
  return base + n;
}

/** Whether this process can start sandboxes as another host user (it is root). */
export function canDropToHostUser(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Gives a folder and everything in it to `uid`, without following links (an app's own links point
 * anywhere on the host when read from outside its sandbox).
 */
export function chownTree(dir: string, uid: number): void {
  const walk = (path: string) => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return;
    if (st.uid !== uid || st.gid !== uid) chownSync(path, uid, uid);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
}

export type StagedFolders = { app: string; data: string; socket: string; egress?: string };

/**
 * A launch of bubblewrap as `uid` with the app's folders bound at a neutral place first: returns the
 * shell script (run by root, after it joined the instance's control group) and the paths bubblewrap
 * should bind from, which exist only inside the private mount namespace it creates.
 */
export function stagedLaunch(
  folders: StagedFolders,
  uid: number,
  /** Images to mount instead of binding the folders: the app's data volume, its code (data-volume.ts). */
  images: { data?: string | undefined; app?: string | undefined } = {},
): { script: string; env: Record<string, string>; paths: StagedFolders; cleanup: () => void } {
  mkdirSync(stageRoot, { recursive: true, mode: 0o711 });
  const stage = join(stageRoot, randomBytes(8).toString('hex'));
  mkdirSync(stage, { mode: 0o711 });
  const paths: StagedFolders = {
    app: join(stage, 'app'),
    data: join(stage, 'data'),
    socket: join(stage, 'socket'),
    ...(folders.egress ? { egress: join(stage, 'egress') } : {}),
  };
  for (const p of Object.values(paths)) mkdirSync(p, { mode: 0o711 });
  const loop = (k: 'DATA' | 'APP', options: string) =>
    `mount -o loop,${options} "$${k}_IMAGE" "$DST_${k}" || { echo "the app's ${k === 'DATA' ? 'data volume' : 'code image'} could not be mounted (a free loop device is needed)" >&2; exit 1; }`;
  const binds = Object.keys(paths).map((k) =>
    k === 'data' && images.data
      ? loop('DATA', 'nosuid,nodev')
      : k === 'app' && images.app
        ? loop('APP', 'ro,nosuid,nodev')
        : `mount --bind "$SRC_${k.toUpperCase()}" "$DST_${k.toUpperCase()}"`,
  );
  const env: Record<string, string> = {
    SANDBOX_UID: String(uid),
    ...(images.data ? { DATA_IMAGE: images.data } : {}),
    ...(images.app ? { APP_IMAGE: images.app } : {}),
  };
  for (const k of Object.keys(paths) as (keyof StagedFolders)[]) {
    env[`SRC_${k.toUpperCase()}`] = folders[k]!;
    env[`DST_${k.toUpperCase()}`] = paths[k]!;
  }
  // The binds are made in a mount namespace of the sandbox's own, so the host never sees them; then the
  // process gives up root for good (real, effective and saved ids, groups, every capability) and becomes
  // bubblewrap, which builds the sandbox as that user.
  const script = [
    'set -e',
    ...binds,
    'exec setpriv --reuid="$SANDBOX_UID" --regid="$SANDBOX_UID" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"',
  ].join('\n');
  return {
    script,
    env,
    paths,
    // Empty bind points on the host (the binds were only ever in the sandbox's namespace): removed one by
    // one, never recursively, so a mistake can only leave an empty folder, never delete app data.
    cleanup: () => {
      for (const p of [...Object.values(paths), stage])
        try {
          rmdirSync(p);
        } catch {}
    },
  };
}
