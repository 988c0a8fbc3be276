import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { CgroupDriver, ResourceLimits } from './cgroups.ts';
import type { DataVolume } from './data-volume.ts';
import { canDropToHostUser, chownTree, stagedLaunch } from './host-user.ts';
import { portRelay } from './port-relay.ts';
import { procMasks } from './proc-masks.ts';
import { redactor } from './redact.ts';
import { isolation, runtimeMounts } from './sandbox-common.ts';
import { seccompFilter } from './seccomp.ts';

export { sandboxedCommand } from './build-sandbox.ts';
export { sandboxAvailable } from './sandbox-common.ts';

/** What one sandboxed app instance gets: its code (read-only), its data (writable), a socket directory, secrets. */
export type SandboxSpec = {
  /** The unpacked artifact; mounted read-only at /app. */
  appDir: string;
  /** The app's private data; mounted read-write at /data; survives restarts and upgrades. */
  dataDir: string;
  /** What the instance is called on the host (its control group's name); the socket folder's name by default. */
  name?: string;
  /** Where the app's unix socket appears (/run/app/app.sock inside); the only way in. */
  socketDir: string;
  /** The entry file, relative to /app. */
  entry: string;
  /** Arguments after the entry file. */
  args?: string[];
  /** Node options the manifest's command asks for (checked at registration), after the platform's own. */
  nodeOptions?: string[];
  /**
   * The TCP port the app listens on inside its sandbox (PORT is then this number): a relay preloaded into
   * the app's own process answers on the socket and passes each connection to it. Without it, PORT is the
   * socket's path.
   */
  port?: number;
  /** How the platform knows the app is ready: any answer to GET `path`, within `timeoutMs`. */
  readiness?: { path: string; timeoutMs: number };
  /** Secret values, written to /run/secrets/NAME on a tmpfs inside the sandbox, never to the host's disk. */
  secrets?: Record<string, string>;
  /** Extra environment; everything else is cleared. */
  env?: Record<string, string>;
  /** V8 heap limit, a little under the cgroup's memory limit so most leaks end as a clean heap error. */
  memoryMb?: number;
  /** Memory, CPU and process limits, enforced through cgroups when the host lets the platform create them. */
  limits?: ResourceLimits;
  /** The app's egress broker folder (its socket and the fetch preload), bound read-only at /run/egress. */
  egressDir?: string;
  /** Where stdout and stderr go besides the last 64 KB kept in memory: the app's stored logs. */
  log?: { write(stream: 'stdout' | 'stderr', chunk: string): void; end(): void };
  /**
   * The unprivileged host user (never 0) the app runs as, owning its data and socket folders; used when the
   * platform runs as root (see host-user.ts). Without it, bubblewrap maps the sandbox's user to the caller.
   */
  hostUid?: number;
  /** With `hostUid`: the app's data on a filesystem of its own, its size the app's quota (data-volume.ts). */
  dataVolume?: DataVolume;
  /**
   * With `hostUid`: a read-only image of `appDir` (data-volume.ts `codeImageOf`) to mount the code from rather
   * than binding the folder, so nothing in the sandbox (its mount table included) names a host path.
   */
  codeImage?: string;
};

export type SandboxedProcess = {
  child: ChildProcess;
  socketPath: string;
  /** The last 64 KB the app wrote to stdout and stderr, its secrets redacted: safe to quote in an error. */
  output: () => string;
  /** The limits the kernel enforces on this instance, or null when the host gives the platform no cgroups. */
  limits: ResourceLimits | null;
  /** After it exited: whether the kernel killed it for going over its memory limit. */
  outOfMemory: () => boolean;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
};

/**
 * Starts `node /app/ENTRY` under bubblewrap: new user (nobody), pid, ipc, uts, cgroup and network
 * namespaces (no network at all: only the socket directory connects it to the platform), a read-only
 * root of the runtime and the artifact, a private /data, tmpfs /tmp and /run/secrets, all capabilities
 * dropped, no_new_privs, a cleared environment, and it dies with its supervisor.
 */
export function startSandboxed(spec: SandboxSpec, cgroups: CgroupDriver | null = null): SandboxedProcess {
  // A fresh control group for each process: its OOM count then speaks of this process only.
  const cgroup =
    spec.limits && cgroups
      ? cgroups.create(
          `${spec.name ?? basename(spec.socketDir)}-${randomBytes(4).toString('hex')}`,
          spec.limits,
        )
      : null;
  mkdirSync(spec.dataDir, { recursive: true, mode: 0o700 });
  mkdirSync(spec.socketDir, { recursive: true, mode: 0o700 });
  // A socket left by a crashed instance would make the new one fail to listen.
  rmSync(join(spec.socketDir, 'app.sock'), { force: true });
  const uid = spec.hostUid !== undefined && spec.hostUid > 0 && canDropToHostUser() ? spec.hostUid : null;
  if (uid !== null) {
    // A data volume was made and filled beforehand (prepareVolume); a plain folder is given to the user.
    if (!spec.dataVolume) chownTree(spec.dataDir, uid);
    chownSync(spec.socketDir, uid, uid);
  }
  const staged =
    uid !== null
      ? stagedLaunch(
          {
            app: spec.appDir,
            data: spec.dataDir,
            socket: spec.socketDir,
            ...(spec.egressDir ? { egress: spec.egressDir } : {}),
          },
          uid,
          { data: spec.dataVolume?.image, app: spec.codeImage },
        )
      : null;
  const from = staged?.paths ?? {
    app: spec.appDir,
    data: spec.dataDir,
    socket: spec.socketDir,
    egress: spec.egressDir,
  };
  const secrets = Object.entries(spec.secrets ?? {});
  const filter = seccompFilter();
  const relayFd = 3 + secrets.length + (filter ? 1 : 0);
  const env: Record<string, string> = {
    // The manifest's own settings first: what the platform sets below always wins.
    ...(spec.env ?? {}),
    PORT: spec.port ? String(spec.port) : '/run/app/app.sock',
    MICROAPP_SOCKET: '/run/app/app.sock',
    MICROAPP_DATA_DIR: '/data',
    HOME: '/tmp',
    NODE_ENV: 'production',
    PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
  };
  const args = [
    '--unshare-all',
    ...isolation('app', env),
    ...runtimeMounts(),
    '--proc',
    '/proc',
    ...procMasks(),
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--ro-bind',
    from.app,
    '/app',
    '--bind',
    from.data,
    '/data',
    '--bind',
    from.socket,
    '/run/app',
    ...(from.egress ? ['--ro-bind', from.egress, '/run/egress'] : []),
    '--tmpfs',
    '/run/secrets',
    // Each secret arrives on its own pipe and becomes a read-only file inside the sandbox only.
    ...secrets.flatMap(([name], i) => ['--ro-bind-data', String(3 + i), `/run/secrets/${name}`]),
    // The seccomp filter arrives on the pipe after the secrets' and applies to the app, not to bubblewrap.
    ...(filter ? ['--seccomp', String(3 + secrets.length)] : []),
    // With a TCP port: the relay's code, from the pipe after the filter's, read-only inside only.
    ...(spec.port ? ['--ro-bind-data', String(relayFd), '/run/microapp/port-relay.cjs'] : []),
    '--chdir',
    '/app',
  ];
  const command = [
    process.execPath,
    ...(spec.egressDir ? ['--require', '/run/egress/shim.cjs'] : []),
    ...(spec.port ? ['--require', '/run/microapp/port-relay.cjs'] : []),
    ...(spec.memoryMb ? [`--max-old-space-size=${Math.max(16, Math.floor(spec.memoryMb * 0.75))}`] : []),
    ...(spec.nodeOptions ?? []),
    join('/app', spec.entry),
    ...(spec.args ?? []),
  ];
  // bubblewrap reads its arguments from a pipe, so its own command line (which the app sees as
  // /proc/1/cmdline) says nothing of host paths, deployment ids or secret names.
  const argsFd = 3 + secrets.length + (filter ? 1 : 0) + (spec.port ? 1 : 0);
  const launched = ['bwrap', '--args', String(argsFd), '--', ...command];
  // As another host user: a private mount namespace with the app's folders bound at the stage, then
  // root is given up for good and the process becomes bubblewrap.
  const bwrap = staged
    ? ['unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', staged.script, 'sh', ...launched]
    : launched;
  // With a control group, a shell joins it (every hierarchy) and then becomes bubblewrap: nothing of the
  // app ever runs outside the limits. A group that cannot be joined stops the start (exit 97).
  const [file, argv] = cgroup
    ? [
        '/bin/sh',
        [
          '-c',
          'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"',
          'sh',
          ...cgroup.procs,
          '--',
          ...bwrap,
        ],
      ]
    : [bwrap[0]!, bwrap.slice(1)];
  const child = spawn(file, argv, {
    stdio: [
      'ignore',
      'pipe',
      'pipe',
      ...secrets.map(() => 'pipe' as const),
      ...(filter ? (['pipe'] as const) : []),
      ...(spec.port ? (['pipe'] as const) : []),
      'pipe',
    ],
    env: { ...(cgroup || staged ? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } : {}), ...(staged?.env ?? {}) },
  });
  (child.stdio[argsFd] as NodeJS.WritableStream | null)?.end(`${args.join('\0')}\0`);
  let outOfMemory = false;
  child.once('exit', () => {
    staged?.cleanup();
    if (!cgroup) return;
    try {
      outOfMemory = cgroup.oomKills() > 0;
    } catch {}
    cgroup.remove();
  });
  secrets.forEach(([, value], i) => {
    const pipe = child.stdio[3 + i] as NodeJS.WritableStream | null;
    pipe?.end(value);
  });
  if (filter) (child.stdio[3 + secrets.length] as NodeJS.WritableStream | null)?.end(filter);
  if (spec.port) (child.stdio[relayFd] as NodeJS.WritableStream | null)?.end(portRelay(spec.port));
  let output = '';
  const collect = (s: Readable | null, stream: 'stdout' | 'stderr') =>
    s?.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      output = (output + text).slice(-64 * 1024);
      spec.log?.write(stream, text);
    });
  collect(child.stdout, 'stdout');
  collect(child.stderr, 'stderr');
  child.once('close', () => spec.log?.end());
  const redact = redactor(spec.secrets ?? {});
  return {
    child,
    socketPath: join(spec.socketDir, 'app.sock'),
    output: () => redact(output),
    limits: cgroup ? spec.limits! : null,
    outOfMemory: () => outOfMemory,
    stop(signal = 'SIGTERM') {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      });
    },
  };
}
