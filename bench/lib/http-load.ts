// HTTP load in short slices (autocannon), each checked: every response must carry the status the bench
// expects, or the run fails. CPU time of the processes behind each target is read around every slice, so a
// figure says what one request cost, not only how many went through.
import autocannon from 'autocannon';
import { BenchFailure, cpuMs, interleaved } from './bench.ts';

export type Target = {
  /** What the line says, e.g. "nginx reverse proxy". */
  label: string;
  url: string;
  socketPath?: string;
  method?: string;
  /** Headers for a slice (called before each: identities expire). */
  headers?: () => Record<string, string> | Promise<Record<string, string>>;
  body?: string;
  /** autocannon's per-request setup (e.g. a new name for each registration). */
  requests?: autocannon.Request[];
  /** The status every response must have. */
  expect: number;
  /** Requests per second over all connections (autocannon's overallRate); as fast as it answers without. */
  rate?: number;
  /** The processes whose CPU time is counted, by part ("proxy", "app"); read before and after each slice. */
  cpu?: Record<string, () => number[]>;
  /** What to add to a failure (e.g. the tail of the proxy's error log). */
  diagnose?: () => string;
};

export type LoadResult = {
  label: string;
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** CPU milliseconds per 1,000 requests, by part. */
  cpuPer1000: Record<string, number>;
};

// autocannon's own sum of slices run with skipAggregateResult (its types do not declare it).
declare function aggregate(results: Raw[], opts: autocannon.Options): autocannon.Result;

type Raw = autocannon.Result & {
  statusCodeStats: Record<string, { count: number }>;
  totalCompletedRequests: number;
};

async function slice(t: Target, connections: number, seconds: number) {
  const parts = Object.entries(t.cpu ?? {}).map(([part, pids]) => ({ part, pids: pids() }));
  const before = parts.map((p) => cpuMs(p.pids));
  const started = performance.now();
  const r = (await autocannon({
    url: t.url,
    ...(t.socketPath ? { socketPath: t.socketPath } : {}),
    connections,
    duration: seconds,
    method: (t.method ?? 'GET') as autocannon.Request['method'],
    headers: (await t.headers?.()) ?? {},
    ...(t.body !== undefined ? { body: t.body } : {}),
    ...(t.requests ? { requests: t.requests } : {}),
    ...(t.rate ? { overallRate: t.rate } : {}),
    skipAggregateResult: true,
  } as autocannon.Options)) as Raw;
  const elapsed = (performance.now() - started) / 1000;
  const cpu = Object.fromEntries(parts.map((p, i) => [p.part, cpuMs(p.pids) - before[i]!]));
  const wrong = Object.entries(r.statusCodeStats).filter(([code]) => Number(code) !== t.expect);
  if (r.errors || r.timeouts || wrong.length)
    throw new BenchFailure(
      `${t.label} (${t.url}${t.socketPath ? ` via ${t.socketPath}` : ''}): every response should be ${t.expect}, but ` +
        [
          ...wrong.map(([code, s]) => `${s.count} were ${code}`),
          ...(r.errors ? [`${r.errors} failed to connect or broke off`] : []),
          ...(r.timeouts ? [`${r.timeouts} timed out`] : []),
        ].join(', ') +
        (t.diagnose ? `\n${t.diagnose()}` : ''),
    );
  return { raw: r, elapsed, cpu };
}

/**
 * Loads each target in `rounds` slices of `seconds`, taking turns, and sums them up per target. Fails (a
 * BenchFailure) as soon as one response of one slice has another status than the target expects.
 */
export async function loadInterleaved(
  targets: Target[],
  opts: { connections: number; seconds: number; rounds: number },
): Promise<LoadResult[]> {
  const byLabel = new Map(targets.map((t) => [t.label, t]));
  const runs = await interleaved([...byLabel.keys()], opts.rounds, (label) =>
    slice(byLabel.get(label)!, opts.connections, opts.seconds),
  );
  return targets.map((t) => {
    const slices = runs[t.label]!;
    const total = (autocannon as unknown as { aggregateResult: typeof aggregate }).aggregateResult(
      slices.map((s) => s.raw),
      { url: t.url, connections: opts.connections } as autocannon.Options,
    );
    const requests = slices.reduce((a, s) => a + s.raw.totalCompletedRequests, 0);
    const seconds = slices.reduce((a, s) => a + s.elapsed, 0);
    const cpuPer1000: Record<string, number> = {};
    for (const part of Object.keys(t.cpu ?? {}))
      cpuPer1000[part] = (slices.reduce((a, s) => a + s.cpu[part]!, 0) / Math.max(1, requests)) * 1000;
    return {
      label: t.label,
      requests,
      seconds,
      rps: requests / seconds,
      p50: total.latency.p50,
      p99: total.latency.p99,
      cpuPer1000,
    };
  });
}
