import { spawn } from 'node:child_process';

/**
 * Runs Debian's `git` for the platform's own repositories, never with the machine's or a user's
 * configuration: no system or global config, no pager, no prompts, no external diff or text conversion
 * drivers (a pushed `.gitattributes` must not make the server run anything).
 */
export const gitEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_PAGER: 'cat',
  HOME: '/nonexistent',
  LANG: 'C',
  ...extra,
});

export class GitError extends Error {
  readonly code: number | null;
  readonly stderr: string;
  constructor(args: string[], code: number | null, stderr: string) {
    super(`git ${args[0]} failed (${code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
    this.code = code;
    this.stderr = stderr;
  }
}

/** One git command: its standard output, or a GitError with what it printed. */
export function git(
  gitDir: string,
  args: string[],
  options: {
    env?: Record<string, string>;
    input?: Buffer | string;
    maxBytes?: number;
    allowFail?: boolean;
  } = {},
): Promise<{ code: number | null; stdout: Buffer; stderr: string; truncated: boolean }> {
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn('git', [`--git-dir=${gitDir}`, ...args], {
      env: gitEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let size = 0;
    let truncated = false;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (truncated) return;
      size += chunk.length;
      if (size > maxBytes) {
        truncated = true;
        out.push(chunk.subarray(0, chunk.length - (size - maxBytes)));
        child.kill('SIGKILL');
      } else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 16_384) stderr += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const result = { code, stdout: Buffer.concat(out), stderr, truncated };
      if (code !== 0 && !truncated && !options.allowFail) reject(new GitError(args, code, stderr));
      else resolve(result);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** A git command's output as trimmed text. */
export async function gitText(gitDir: string, args: string[], env?: Record<string, string>) {
  return (await git(gitDir, args, env ? { env } : {})).stdout.toString('utf8').trim();
}
