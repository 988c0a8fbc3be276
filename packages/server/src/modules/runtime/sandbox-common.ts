import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** True when bubblewrap is installed (Debian package `bubblewrap`). */
export function sandboxAvailable(): boolean {
  return spawnSync('bwrap', ['--version']).status === 0;
}

/**
 * What app instances and build steps share inside their namespaces: the user nobody, their own host name,
 * dying with their parent, a new session (no terminal to inject into), no capabilities, and only the given
 * environment.
 */
export function isolation(hostname: string, env: Record<string, string>): string[] {
  return [
    '--uid',
    '65534',
    '--gid',
    '65534',
    '--hostname',
    hostname,
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--clearenv',
    ...Object.entries(env).flatMap(([k, v]) => ['--setenv', k, v]),
  ];
}

/** The host paths the node runtime needs, mounted read-only: the node binary's folder and the system libraries. */
export function runtimeMounts(): string[] {
  const nodeDir = dirname(process.execPath);
  const dirs = ['/usr', '/lib', '/lib64', '/bin', nodeDir].filter(
    (d, i, all) => existsSync(d) && all.indexOf(d) === i,
  );
  return dirs.flatMap((d) => ['--ro-bind', d, d]);
}

/**
 * The installation folder whose `include/node` holds the headers of the Node.js that runs the platform, or
 * null when they are not installed. Native modules (node-gyp) compile against them inside the sandbox,
 * which has no network to download them (npm's `nodedir`).
 */
export function nodeHeadersDir(): string | null {
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node.h')) ? prefix : null;
}
