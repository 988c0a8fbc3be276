import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The microapp command, as users run it. */
export const bin = resolve(import.meta.dirname, '../bin/microapp.js');

export type Run = { code: number; stdout: string; stderr: string };

/** Runs a program; the child never believes it runs inside this test run (NODE_TEST_CONTEXT removed). */
export function exec(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<Run> {
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      { env: { ...parent, ...env }, cwd, timeout: 120_000, encoding: 'utf8' },
      (error, stdout, stderr) =>
        done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs `microapp ARGS` with the given environment (server, config dir, token). */
export function cli(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return exec(process.execPath, [bin, ...args], env);
}

/** What `microapp --json ci` prints on stdout: each step, and the artifact when there is one. */
export type CiResult = {
  ok: boolean;
  steps: { step: string; status: string; detail: string; next?: string }[];
  artifact: { file: string } | null;
};

/**
 * `microapp --json ci --sandbox` over an app folder, its checked copy and outputs in `work`, as a platform
 * build runs it; asserts it passed and returns what it printed. `extra` goes after (e.g. `--no-publish`).
 */
export async function sandboxedCi(
  env: Record<string, string>,
  app: string,
  work: string,
  ...extra: string[]
): Promise<Run & { result: CiResult; artifact: string }> {
  const r = await cli(env, '--json', 'ci', '--dir', app, '--sandbox', '--work', work, ...extra);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const result = JSON.parse(r.stdout) as CiResult;
  return { ...r, result, artifact: result.artifact!.file };
}

/** Runs a shell tool in a folder and returns its combined output. */
export async function sh(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; output: string }> {
  const r = await exec(cmd, args, {}, cwd);
  return { code: r.code, output: r.stdout + r.stderr };
}

/** Runs `microapp ARGS` with text on standard input (how secrets are passed). */
export function cliWithInput(env: Record<string, string>, input: string, ...args: string[]): Promise<Run> {
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...parent, ...env }, timeout: 60_000, encoding: 'utf8' },
      (error, stdout, stderr) =>
        done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

/**
 * Has an admin (carol) import a one-advisory OSV folder, which `microapp ci` needs before it can scan.
 * Leaves the CLI in `env` signed in as carol.
 */
export async function importAdvisories(env: Record<string, string>, dir: string): Promise<void> {
  const osv = join(dir, 'osv');
  mkdirSync(osv, { recursive: true });
  writeFileSync(
    join(osv, 'GHSA-x.json'),
    JSON.stringify({
      id: 'GHSA-x',
      affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['0.0.1'] }],
    }),
  );
  await cli(env, 'login', '--dev-user', 'carol@example.com');
  assert.equal((await cli(env, 'advisories', 'import', osv)).code, 0);
}
