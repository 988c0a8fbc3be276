// What every bench shares: arguments that all have defaults (and a --quick mode for the tests), the command
// that reproduces a line, failures that stop the run loudly, CPU time and memory read from /proc, and
// alternatives measured in interleaved slices so that the machine's load falls on all of them alike.
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

/** A run that measured the wrong thing (an error page, a refusal): it must not print a figure. */
export class BenchFailure extends Error {}

type Spec = Record<string, { default: string; quick?: string; help: string }>;

/**
 * The bench's arguments: every one has a default; `--quick` swaps in the short values the tests use;
 * `--help` prints them. `command` is the line that reproduces this run, with every value spelled out.
 */
export function benchArgs<S extends Spec>(
  script: string,
  summary: string,
  spec: S,
): { values: { [K in keyof S]: string }; number: (k: keyof S) => number; command: string } {
  const options = Object.fromEntries(Object.keys(spec).map((k) => [k, { type: 'string' as const }]));
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: { ...options, quick: { type: 'boolean' }, help: { type: 'boolean' } },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\nRun with --help for the arguments.`);
    process.exit(2);
  }
  const name = relative(process.cwd(), script) || script;
  if (parsed.values.help) {
    console.log(
      `${summary}\n\n  npx tsx ${name} [--quick] ${Object.keys(spec)
        .map((k) => `[--${k} V]`)
        .join(' ')}\n`,
    );
    for (const [k, s] of Object.entries(spec))
      console.log(
        `  --${k.padEnd(14)} ${s.help} (default ${s.default}${s.quick ? `; --quick: ${s.quick}` : ''})`,
      );
    console.log('  --quick          the short run the test suite makes: the same checks, smaller numbers');
    process.exit(0);
  }
  const quick = Boolean(parsed.values.quick);
  const values = Object.fromEntries(
    Object.entries(spec).map(([k, s]) => [
      k,
      (parsed.values[k] as string | undefined) ?? (quick && s.quick !== undefined ? s.quick : s.default),
    ]),
  ) as { [K in keyof S]: string };
  const number = (k: keyof S) => {
    const n = Number(values[k]);
    if (!Number.isFinite(n) || n < 0) {
      console.error(`--${String(k)} must be a number, not "${values[k]}"`);
      process.exit(2);
    }
    return n;
  };
  for (const [k, s] of Object.entries(spec)) if (/^\d[\d.]*$/.test(s.default)) number(k);
  // An empty value (an option left out) stays out of the line.
  const command = `npx tsx ${name} ${Object.entries(values)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `--${k} ${v}`)
    .join(' ')}`.trim();
  return { values, number, command };
}

/** Runs the bench; a BenchFailure (or any error) ends it with exit code 1 and says why, on stderr. */
export async function runBench(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const e = error as Error;
    console.error(
      e instanceof BenchFailure
        ? `bench failed, no figure printed: ${e.message}`
        : `bench failed: ${e.stack ?? e.message}`,
    );
    process.exitCode = 1;
  }
}

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function stat(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: split after its closing parenthesis.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** CPU time (user + system, every thread) the processes have used so far, in milliseconds. */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = stat(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  }
  return (ticks * 1000) / clockTicks;
}

const allPids = () =>
  readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);

// A process and all its descendants: the platform's own walk of /proc.
export { processTree } from '../../packages/server/src/modules/runtime/process-stats.ts';

/** The processes running as host user `uid` (each sandboxed app has its own, when the platform is root). */
export function pidsOfUid(uid: number): number[] {
  return allPids().filter((pid) => {
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m !== null && Number(m[1]) === uid;
    } catch {
      return false;
    }
  });
}

export type Memory = { rss: number; pss: number; private: number };

/**
 * Memory of a set of processes from /proc/PID/smaps_rollup, in bytes: resident (counts every shared page
 * in full, in each process), proportional (shared pages divided among their sharers) and private.
 */
export function memoryOf(pids: number[]): Memory {
  const sum: Memory = { rss: 0, pss: 0, private: 0 };
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    } catch {
      continue;
    }
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    sum.rss += kb('Rss');
    sum.pss += kb('Pss');
    sum.private += kb('Private_Clean') + kb('Private_Dirty');
  }
  return sum;
}

/**
 * Measures each alternative in `rounds` short slices, taking turns (and starting each round with the next
 * one), so that a change in the machine's load during the run falls on every alternative alike.
 */
export async function interleaved<K extends string, R>(
  names: readonly K[],
  rounds: number,
  slice: (name: K, round: number) => Promise<R>,
): Promise<Record<K, R[]>> {
  const out = Object.fromEntries(names.map((n) => [n, [] as R[]])) as Record<K, R[]>;
  for (let round = 0; round < rounds; round++)
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]!;
      out[name].push(await slice(name, round));
    }
  return out;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/**
 * Runs a command as a fresh process (stdout dropped); returns its wall time and the CPU time it and its
 * children used, read from bash's `times`. A failure is a BenchFailure with what the command printed.
 */
export async function timedCommand(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; errFile: string },
): Promise<{ wallMs: number; cpuMs: number }> {
  const t = process.hrtime.bigint();
  const out = await new Promise<{ code: number; text: string }>((done) =>
    execFile(
      'bash',
      ['-c', '"$@" >/dev/null 2>"$ERRFILE" || { cat "$ERRFILE" >&2; exit 1; }; times', '_', cmd, ...args],
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env, ERRFILE: options.errFile },
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      },
      (error, stdout, stderr) =>
        done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, text: stdout + stderr }),
    ),
  );
  const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
  if (out.code !== 0)
    throw new BenchFailure(`${cmd.split('/').at(-1)} ${args.join(' ')} failed:\n${out.text.slice(0, 800)}`);
  const children = out.text.trim().split('\n').at(-1)!;
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { wallMs, cpuMs: (secs[0]! + secs[1]!) * 1000 };
}
