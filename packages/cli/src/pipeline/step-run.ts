import { spawn } from 'node:child_process';
import { copyFileSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
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

export function run(
  cmd: string,
  args: string[],
  cwd: string,
  opts: { scripts?: boolean; sandbox?: StepSandbox; network?: boolean; cache?: string } = {},
): Promise<{ code: number; output: string }> {
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
        })
      : { file: cmd, args };
    // Run by hand: the same CA and the same patience with the registry.
    const hostNpm = opts.network
      ? {
          ...registryPatience,
          ...(ca ? { npm_config_cafile: ca, NODE_EXTRA_CA_CERTS: ca } : {}),
          ...(registry ? { npm_config_registry: registry } : {}),
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
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
    child.on('error', (e) => resolve({ code: 1, output: e.message }));
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
      detail: `the registry at ${registry} refused the request (${refused})`,
      next: 'the registry needs credentials for this package, or does not hold it',
    };
  return null;
}
