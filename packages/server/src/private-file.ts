import { statSync } from 'node:fs';

/**
 * Why a file holding a key is open to others, or null when it is not: readable or writable by other users,
 * or writable by its group, or readable by a group this process is not in. A group the process is in may
 * read it: on Kubernetes, a Secret's files are root's and readable by the pod's fsGroup (mode 0440).
 */
export function openKeyFile(file: string): string | null {
  const { mode: full, gid } = statSync(file);
  const mode = full & 0o777;
  const ownGroups = new Set([process.getgid?.(), ...(process.getgroups?.() ?? [])]);
  const open = mode & 0o027 || (mode & 0o040 && !ownGroups.has(gid));
  return open ? `can be read or written by other users (mode ${mode.toString(8).padStart(4, '0')})` : null;
}

/** The setting's problem when the file it names is open to others (see `openKeyFile`); null otherwise or when it is missing. */
export function keyFileProblem(variable: string, file: string): string | null {
  let open: string | null;
  try {
    open = openKeyFile(file);
  } catch {
    return null;
  }
  return open
    ? `${variable} ${file} ${open}: chmod 600 it (on Kubernetes, defaultMode: 0400 on the Secret's volume)`
    : null;
}
