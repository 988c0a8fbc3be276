import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** True when bubblewrap is installed (Debian package `bubblewrap`). */
export function sandboxAvailable(): boolean {
  return spawnSync('bwrap', ['--version']).status === 0;
}

let probed: { problem: string | null } | undefined;

/**
 * Why no sandbox can start here, or null when one can (or bubblewrap is not installed, which the server
 * reports on its own). bubblewrap is asked for what every app instance and build step needs, new
 * namespaces (a user namespace among them) and a fresh /proc, and runs `true`. Inside a container both can
 * be refused, and every build would then fail at its first step. Asked once: what the kernel and the
 * container allow does not change while the server runs.
 */
export function sandboxProblem(): string | null {
  if (probed) return probed.problem;
  if (!sandboxAvailable()) {
    probed = { problem: null };
    return null;
  }
  const ran = spawnSync(
    'bwrap',
    ['--unshare-all', ...isolation('probe', {}), ...runtimeMounts(), ...freshMounts, 'true'],
    { encoding: 'utf8', timeout: 10_000 },
  );
  probed = { problem: ran.status === 0 ? null : sandboxAdvice(ran.stderr || String(ran.error ?? '')) };
  return probed.problem;
}

/** What bubblewrap's refusal means, and what the people running the platform change to lift it. */
export function sandboxAdvice(stderr: string): string {
  const said = stderr.trim().split('\n').at(-1)?.slice(0, 300) ?? '';
  if (/Can't mount proc/i.test(said))
    return `bubblewrap cannot mount a /proc of its own ("${said}"): this container's /proc is masked. Run the platform's container with /proc unmasked: on Kubernetes, procMount: Unmasked in its securityContext with hostUsers: false in the pod (deploy/kubernetes/deployment.yaml); with podman or docker, --security-opt unmask=/proc/* (docs/operations.md)`;
  if (/hostname|namespace|uid map|Operation not permitted|Permission denied/i.test(said))
    return `bubblewrap is refused what a sandbox needs, namespaces of its own and its own host name ("${said}"). In a container, its seccomp profile refuses them: run it with the profile Unconfined (on Kubernetes, seccompProfile: Unconfined, as deploy/kubernetes/deployment.yaml has; with podman or docker, --security-opt seccomp=unconfined). On a host, unprivileged user namespaces must be on (sysctl user.max_user_namespaces above 0; on Debian's older kernels, kernel.unprivileged_userns_clone=1) (docs/operations.md)`;
  return `bubblewrap could not start a sandbox: ${said || 'no reason given'} (docs/operations.md)`;
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

/** What a build step (and the probe) gets of its own: a /proc of its new pid namespace, a minimal /dev, an empty /tmp. */
export const freshMounts = ['--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp'];

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
