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
  },
) => { file: string; args: string[] };

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
    const wrapped = opts.sandbox
      ? opts.sandbox(cmd, args, {
          dir: resolvePath(cwd),
          network: opts.network ?? false,
          env: scripts,
          ...(egressDir ? { egressDir } : {}),
          ...(registry ? { registry } : {}),
          ...(opts.cache ? { cache: opts.cache } : {}),
        })
      : { file: cmd, args };
    const child = spawn(wrapped.file, wrapped.args, {
      cwd,
      env: opts.sandbox ? {} : { ...env, ...scripts },
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
