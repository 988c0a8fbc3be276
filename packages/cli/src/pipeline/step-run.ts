import { spawn } from 'node:child_process';
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { artifactFiles } from './artifact.ts';

// How the pipeline runs a step's command (npm, the app's tests): in the sandbox when it has one, with
// install scripts off unless asked for, and never with the person's credentials.

/** Wraps a step's command in a sandbox (see `microapp ci --sandbox`); `network` only for the install. */
export type StepSandbox = (
  command: string,
  args: string[],
  options: {
    dir: string;
    network: boolean;
    env: Record<string, string>;
    egressDir?: string;
    registry?: string;
    cache?: string;
    ca?: string;
    /** An npm user config holding the registry's credentials, for the install step only (read-only). */
    userconfig?: string;
  },
) => { file: string; args: string[] };

/**
 * How long npm keeps at a registry that fails: one retry, 30 s per request, so a refused or silent registry
 * fails the step within a minute instead of after many retries.
 */
const registryPatience: Record<string, string> = {
  npm_config_fetch_retries: '1',
  npm_config_fetch_retry_mintimeout: '1000',
  npm_config_fetch_retry_maxtimeout: '5000',
  npm_config_fetch_timeout: '30000',
};

/**
 * The registry's credentials for one install step: an npm user config in a private folder, naming the
 * token of MICROAPP_NPM_TOKEN_FILE for the configured registry only (npm sends it nowhere else), removed
 * when the step ends. Run by hand, the person's own ~/.npmrc settings are kept above it.
 */
function registryCredentials():
  | { userconfig: string; token: string; remove: () => void }
  | { error: string }
  | null {
  const file = process.env.MICROAPP_NPM_TOKEN_FILE;
  if (!file) return null;
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    return {
      error: `MICROAPP_NPM_TOKEN_FILE: ${file} cannot be read (${(error as NodeJS.ErrnoException).code})`,
    };
  }
  if (!token || /\s/.test(token))
    return { error: `MICROAPP_NPM_TOKEN_FILE: ${file} must hold one token on one line` };
  const registry = new URL(process.env.MICROAPP_NPM_REGISTRY ?? 'https://registry.npmjs.org/');
  const path = registry.pathname.endsWith('/') ? registry.pathname : `${registry.pathname}/`;
  const folder = mkdtempSync(join(tmpdir(), 'microapp-npmrc-'));
  const userconfig = join(folder, 'npmrc');
  let own = '';
  try {
    own = readFileSync(join(homedir(), '.npmrc'), 'utf8');
  } catch {}
  writeFileSync(userconfig, `${own}\n//${registry.host}${path}:_authToken=${token}\n`, { mode: 0o600 });
  return { userconfig, token, remove: () => rmSync(folder, { recursive: true, force: true }) };
}

export function run(
  cmd: string,
  args: string[],
  cwd: string,
  opts: { scripts?: boolean; sandbox?: StepSandbox; network?: boolean; cache?: string } = {},
): Promise<{ code: number; output: string }> {
  // Only the install step (network, no scripts) gets the registry's credentials.
  const credentials = opts.network && !opts.scripts ? registryCredentials() : null;
  if (credentials && 'error' in credentials) return Promise.resolve({ code: 1, output: credentials.error });
  return new Promise((resolve) => {
    // Install scripts stay off unless asked for, and the app gets no credentials of ours.
    const { MICROAPP_TOKEN: _t, NODE_TEST_CONTEXT: _c, ...env } = process.env;
    const scripts = { npm_config_ignore_scripts: opts.scripts ? 'false' : 'true' };
    // A platform build hands over its egress broker (MICROAPP_EGRESS_DIR): the install step reaches the
    // registry through it and nothing else. Run by hand, the install step keeps the host's network.
    const egressDir = opts.network ? process.env.MICROAPP_EGRESS_DIR : undefined;
    const registry = process.env.MICROAPP_NPM_REGISTRY;
    const ca = opts.network ? process.env.MICROAPP_NPM_CA_FILE : undefined;
    const wrapped = opts.sandbox
      ? opts.sandbox(cmd, args, {
          dir: resolvePath(cwd),
          network: opts.network ?? false,
          env: { ...scripts, ...(opts.network ? registryPatience : {}) },
          ...(egressDir ? { egressDir } : {}),
          ...(registry ? { registry } : {}),
          ...(opts.cache ? { cache: opts.cache } : {}),
          ...(ca ? { ca } : {}),
          ...(credentials ? { userconfig: credentials.userconfig } : {}),
        })
      : { file: cmd, args };
    // Run by hand: the same CA and the same patience with the registry.
    const hostNpm = opts.network
      ? {
          ...registryPatience,
          ...(ca ? { npm_config_cafile: ca, NODE_EXTRA_CA_CERTS: ca } : {}),
          ...(registry ? { npm_config_registry: registry } : {}),
          ...(credentials ? { npm_config_userconfig: credentials.userconfig } : {}),
        }
      : {};
    const child = spawn(wrapped.file, wrapped.args, {
      cwd,
      env: opts.sandbox ? {} : { ...env, ...hostNpm, ...scripts },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // The token never reaches a step's detail, even if a tool prints its configuration.
    const done = (code: number, text: string) => {
      credentials?.remove();
      resolve({ code, output: credentials ? text.replaceAll(credentials.token, '[redacted]') : text });
    };
    child.on('close', (code) => done(code ?? 1, output));
    child.on('error', (e) => done(1, e.message));
  });
}

/** The packages of the lockfile that have install scripts. */
export function installScripts(dir: string): string[] {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as {
    packages?: Record<string, { name?: string; hasInstallScript?: boolean }>;
  };
  return Object.entries(lock.packages ?? {})
    .filter(([path, e]) => path !== '' && e.hasInstallScript)
    .map(([path, e]) => e.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
}

/** Copies the app's own files (what `artifactFiles` lists: no dependencies, no data) into a new folder. */
export function copyAppFiles(from: string, to: string) {
  mkdirSync(to, { recursive: true, mode: 0o755 });
  for (const rel of artifactFiles(from)) {
    const target = join(to, rel);
    mkdirSync(dirname(target), { recursive: true });
    const st = lstatSync(join(from, rel));
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(join(from, rel)), target);
    else copyFileSync(join(from, rel), target);
  }
}

export const tail = (s: string, n = 15) => s.trim().split('\n').slice(-n).join('\n');

/**
 * What npm's output says about the registry, in plain words with what to do, or null when the failure is
 * not the registry's (a lockfile that does not match, a script that failed).
 */
export function registryTrouble(output: string): { detail: string; next: string } | null {
  const registry = process.env.MICROAPP_NPM_REGISTRY ?? 'https://registry.npmjs.org/';
  const tls =
    /\b(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID|CERT_UNTRUSTED)\b/.exec(
      output,
    )?.[1];
  if (tls)
    return {
      detail: `the registry at ${registry} presented a certificate this build does not trust (${tls})`,
      next: process.env.MICROAPP_NPM_CA_FILE
        ? `the CA bundle in MICROAPP_NPM_CA_FILE (${process.env.MICROAPP_NPM_CA_FILE}) is not the one that signed the registry's certificate`
        : "set MICROAPP_NPM_CA_FILE to the company CA bundle the registry's certificate chains to",
    };
  if (/egress_denied|x-microapp-egress: denied/.test(output))
    return {
      detail: `the platform's egress broker refused the way to the registry at ${registry}`,
      next: 'an admin checks MICROAPP_NPM_REGISTRY and the egress audit events of this build',
    };
  const unreachable = /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|ERR_SOCKET_TIMEOUT)\b/.exec(
    output,
  )?.[1];
  if (unreachable)
    return {
      detail: `the registry at ${registry} could not be reached (${unreachable})`,
      next: 'check MICROAPP_NPM_REGISTRY and that the registry answers from this machine',
    };
  const refused = /npm (?:ERR!|error) code (E40[13])\b/.exec(output)?.[1];
  if (refused)
    return {
      detail: `the registry at ${registry} refused the request (${refused === 'E401' ? 'E401: not signed in' : 'E403: not allowed'})`,
      next: process.env.MICROAPP_NPM_TOKEN_FILE
        ? `the registry did not accept the token in MICROAPP_NPM_TOKEN_FILE (${process.env.MICROAPP_NPM_TOKEN_FILE}): an admin renews it, or asks the registry's owners to give it read access to this package`
        : "the registry wants credentials: an admin puts the registry's read token in a file and sets MICROAPP_NPM_TOKEN_FILE to it",
    };
  return null;
}

/**
 * What to do when an allowed install script failed, when its output says why in a way people can act on
 * (a native module that cannot compile on the build machine); undefined otherwise.
 */
export function scriptTrouble(output: string): string | undefined {
  if (!/gyp ERR!/.test(output)) return undefined;
  if (/gyp ERR! find Python/.test(output))
    return 'native modules compile with python3, make and a C/C++ compiler: an admin installs them on the build machine';
  if (/\b(?:cc|c\+\+|g\+\+|gcc|make)\b: (?:No such file|not found|command not found)/.test(output))
    return 'native modules compile with make and a C/C++ compiler (Debian: make, g++): an admin installs them on the build machine';
  if (/headers\.tar\.gz|(?:ENOTFOUND|EAI_AGAIN|ECONNREFUSED) nodejs\.org/.test(output))
    return "native modules compile against the headers of the platform's Node.js, which the build machine does not have: an admin installs them (include/node beside the node binary, e.g. Debian's libnode-dev or Node's own tarball)";
  return 'a native module did not compile: read the compiler output above, or ask the package for a prebuilt binary';
}
