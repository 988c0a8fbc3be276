import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';

/** Limits on what a build folder may hold when it is copied out of the sandbox. */
export const copyLimits = { bytes: 2 * 1024 ** 3, entries: 300_000 };

/** Folders the host-side steps never read: version control, outputs of earlier runs, app data, coverage. */
const skipped = new Set(['.git', '.microapp', 'data', 'coverage']);

/** Why a build folder cannot be trusted, named by the path inside it. */
export class HostileTreeError extends Error {}

/**
 * Copies a build folder that untrusted code (install scripts, the app's tests) has run in into a fresh
 * folder that code never had, treating every entry as hostile: nothing is followed. Regular files are
 * read through a descriptor opened with O_NOFOLLOW and checked to be the file that was listed; a file with
 * several hard links is copied once per name only when all its names are inside the folder (node-gyp
 * links what it builds), and one with a name elsewhere stops the copy, as does a device, a socket or a FIFO; a symbolic link is copied as a
 * link only when it is relative and points inside the folder, and is never followed here. Modes lose
 * setuid, setgid and sticky bits. The host-side steps (SBOM, licenses, policy, artifact, publish) then
 * read the copy, so a link planted by a test cannot make them read or write a host file.
 */
export function checkedCopy(from: string, to: string): { files: number; bytes: number } {
  let entries = 0;
  let bytes = 0;
  // Files with several names: how many names the folder holds, to compare with the file's link count.
  const linked = new Map<string, { path: string; nlink: number; names: number }>();
  mkdirSync(to, { recursive: true, mode: 0o700 });
  const walk = (rel: string) => {
    const names = readdirSync(join(from, rel)).sort();
    for (const name of names) {
      if (rel === '' && skipped.has(name)) continue;
      const path = rel ? join(rel, name) : name;
      const source = join(from, path);
      const target = join(to, path);
      if (++entries > copyLimits.entries)
        throw new HostileTreeError(`the build folder holds more than ${copyLimits.entries} files`);
      const st = lstatSync(source);
      if (st.isDirectory()) {
        mkdirSync(target, { mode: 0o755 });
        walk(path);
      } else if (st.isSymbolicLink()) {
        const link = readlinkSync(source);
        const resolved = normalize(join(rel, link));
        if (isAbsolute(link) || resolved === '..' || resolved.startsWith(`..${sep}`))
          throw new HostileTreeError(`${path} is a link to ${link}, outside the app folder`);
        symlinkSync(link, target);
      } else if (st.isFile()) {
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const seen = linked.get(key) ?? { path, nlink: st.nlink, names: 0 };
          seen.names++;
          linked.set(key, seen);
        }
        const fd = openSync(source, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        try {
          const opened = fstatSync(fd);
          if (!opened.isFile() || opened.ino !== st.ino || opened.dev !== st.dev)
            throw new HostileTreeError(`${path} changed while it was copied`);
          bytes += opened.size;
          if (bytes > copyLimits.bytes)
            throw new HostileTreeError(
              `the build folder holds more than ${copyLimits.bytes / 1024 ** 3} GiB`,
            );
          writeFileSync(target, readFileSync(fd), { mode: opened.mode & 0o755, flag: 'wx' });
        } finally {
          closeSync(fd);
        }
      } else throw new HostileTreeError(`${path} is not a file, folder or link (a device, socket or pipe)`);
    }
  };
  walk('');
  for (const { path, nlink, names } of linked.values())
    if (names !== nlink)
      throw new HostileTreeError(
        `${path} is a hard link to a file outside the app folder (${nlink} names, ${names} inside)`,
      );
  return { files: entries, bytes };
}
