import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freshMounts, isolation, nodeHeadersDir, runtimeMounts } from './sandbox-common.ts';
import { seccompFilter } from './seccomp.ts';

/** Host files a sandboxed build needs to resolve names and check TLS certificates, when it has network. */
const networkFiles = [
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/nsswitch.conf',
  '/etc/ssl',
  '/etc/ca-certificates',
];

/**
 * The bubblewrap command that runs one pipeline step (`npm ci`, `npm test`) over a build folder: new user
 * (nobody), pid, ipc, uts, cgroup and network namespaces, all capabilities dropped, a cleared environment,
 * a read-only runtime, the build folder at /build (its only writable place besides a private /tmp), and
 * dies with the pipeline. The test step, which runs the app's code, has no network at all. The install
 * step (`network`) runs no package code (install scripts are off); with `egressDir` (a platform build) it
 * has no network either, only the egress broker's socket at /run/egress, which lets npm reach its
 * registry and nothing else (a relay inside listens on 127.0.0.1:3128 for npm's proxy setting); without
 * it (`microapp ci --sandbox` on a laptop) it keeps the host's network.
 */
export function sandboxedCommand(
  command: string,
  args: string[],
  options: {
    dir: string;
    network: boolean;
    env?: Record<string, string>;
    /** The broker folder of a platform build; the install step's only way out. */
    egressDir?: string;
    /** The registry npm uses, when not the public one (a company mirror). */
    registry?: string;
    /**
     * A host folder for npm's cache, shared by the install steps of one build (never by its tests): the
     * production install after the tests reuses what the first install fetched. npm checks every cached
     * tarball against the lockfile's integrity when it reads it.
     */
    cache?: string;
    /** A CA bundle the registry's certificate chains to, trusted by npm and node inside (read-only). */
    ca?: string;
    /** npm's user config with the registry's credentials (the install step only; read-only). */
    userconfig?: string;
  },
): { file: string; args: string[] } {
  const brokered = Boolean(options.network && options.egressDir);
  const hostNetwork = options.network && !brokered;
  const headers = nodeHeadersDir();
  const env: Record<string, string> = {
    HOME: '/tmp',
    // Native modules compile against the headers of the Node.js that runs them (read-only under /usr or
    // beside the node binary); node-gyp would otherwise try to download them.
    ...(headers ? { npm_config_nodedir: headers } : {}),
    PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
    CI: 'true',
    npm_config_cache: '/tmp/.npm',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...(brokered
      ? {
          npm_config_proxy: 'http://127.0.0.1:3128',
          npm_config_https_proxy: 'http://127.0.0.1:3128',
          npm_config_noproxy: '',
        }
      : {}),
    ...(options.registry ? { npm_config_registry: options.registry } : {}),
    ...(options.ca
      ? {
          npm_config_cafile: '/run/microapp/registry-ca.pem',
          NODE_EXTRA_CA_CERTS: '/run/microapp/registry-ca.pem',
        }
      : {}),
    ...(options.userconfig ? { npm_config_userconfig: '/run/microapp/npmrc' } : {}),
    ...(options.env ?? {}),
  };
  const bwrapArgs = [
    '--unshare-all',
    ...(hostNetwork ? ['--share-net'] : []),
    ...isolation('build', env),
    ...runtimeMounts(),
    // Debian's compiler names (cc, c++) are links through /etc/alternatives: native modules compile here.
    ...(existsSync('/etc/alternatives') ? ['--ro-bind', '/etc/alternatives', '/etc/alternatives'] : []),
    // Headers outside /usr (a Node.js under /opt, say) are bound beside it; /usr is bound whole above.
    ...(headers && !`${headers}/`.startsWith('/usr/')
      ? ['--ro-bind', join(headers, 'include'), join(headers, 'include')]
      : []),
    ...(hostNetwork ? networkFiles.filter((f) => existsSync(f)).flatMap((f) => ['--ro-bind', f, f]) : []),
    ...(brokered ? ['--ro-bind', options.egressDir!, '/run/egress'] : []),
    ...freshMounts,
    ...(options.cache ? ['--bind', options.cache, '/tmp/.npm'] : []),
    ...(options.ca ? ['--ro-bind', options.ca, '/run/microapp/registry-ca.pem'] : []),
    ...(options.userconfig ? ['--ro-bind', options.userconfig, '/run/microapp/npmrc'] : []),
    '--bind',
    options.dir,
    '/build',
    '--chdir',
    '/build',
    ...(brokered ? [process.execPath, '/run/egress/build-proxy.cjs'] : []),
    command,
    ...args,
  ];
  // The app's seccomp filter applies to its build steps too. bubblewrap reads it from a file descriptor; the
  // caller spawns a plain command, so a shell opens the filter's file on descriptor 9 and becomes bubblewrap.
  const filter = seccompFile();
  return filter
    ? { file: '/bin/sh', args: ['-c', 'exec bwrap --seccomp 9 "$@" 9<"$0"', filter, ...bwrapArgs] }
    : { file: 'bwrap', args: bwrapArgs };
}

let filterPath: string | null | undefined;

/** The seccomp filter as a read-only file (written once per process), or null where there is none. */
function seccompFile(): string | null {
  if (filterPath !== undefined) return filterPath;
  const filter = seccompFilter();
  if (!filter) {
    filterPath = null;
    return null;
  }
  const path = join(tmpdir(), `microapp-seccomp-${process.pid}-${randomBytes(4).toString('hex')}.bpf`);
  writeFileSync(path, filter, { mode: 0o444, flag: 'wx' });
  process.once('exit', () => rmSync(path, { force: true }));
  filterPath = path;
  return path;
}
