// HTTP load in short slices, each checked: every response must carry the status the bench expects, or the
// run fails. CPU time of the processes behind each target is read around every slice, so a figure says what
// one request cost, not only how many went through. As fast as the server answers: autocannon, each
// connection sending its next request when the last is answered. At a fixed rate: requests sent on a
// schedule, evenly spaced (`pacedSlice`), not autocannon's `overallRate`, which lets every connection send
// as fast as it is answered until the second's quota is used up and then waits for the next second: a burst
// at full speed, not a rate.
import { Agent, request } from 'node:http';
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
  /**
   * Requests per second, sent evenly spaced on at most `connections` kept connections, each one's latency
   * counted from when it was due; as fast as the server answers (autocannon) without.
   */
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

/** What one slice gave: its requests and latencies, how long it took, and the CPU of each part. */
type Slice = { requests: number; latencies: number[]; elapsed: number; cpu: Record<string, number> };

/**
 * `t.rate` requests a second for `seconds`, sent on a schedule: the n-th is due n / rate seconds after the
 * start, goes out on a free kept connection (at most `connections`; when all are busy it waits for one,
 * and that wait counts), and its latency runs from when it was due, not from when it went out, so a server
 * that falls behind shows in every request that waited for it (no coordinated omission).
 */
async function pacedSlice(t: Target, connections: number, seconds: number): Promise<Slice> {
  const parts = Object.entries(t.cpu ?? {}).map(([part, pids]) => ({ part, pids: pids() }));
  const headers = (await t.headers?.()) ?? {};
  const url = new URL(t.url);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const total = Math.round(t.rate! * seconds);
  const latencies: number[] = [];
  const wrong = new Map<string, number>();
  let failed = 0;
  let firstFailure = '';
  // Counted from when it was due, or from when it went out if that was earlier (a send is never more than
  // half a millisecond early): a latency is never negative, and a late send counts its lateness.
  const one = (due: number, sent = Math.min(due, performance.now())) =>
    new Promise<void>((done) => {
      const req = request(
        {
          agent,
          method: t.method ?? 'GET',
          host: url.hostname,
          port: url.port,
          path: `${url.pathname}${url.search}`,
          headers,
          ...(t.socketPath ? { socketPath: t.socketPath } : {}),
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(performance.now() - sent);
            const code = String(res.statusCode);
            if (res.statusCode !== t.expect) wrong.set(code, (wrong.get(code) ?? 0) + 1);
            done();
          });
        },
      );
      req.on('error', (e) => {
        failed++;
        firstFailure ||= e.message;
        done();
      });
      req.end(t.body);
    });
  const before = parts.map((p) => cpuMs(p.pids));
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let n = 0; n < total; n++) {
    const due = started + (n * 1000) / t.rate!;
    const wait = due - performance.now();
    if (wait > 0.5) await new Promise((r) => setTimeout(r, wait));
    pending.push(one(due));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - started) / 1000;
  const cpu = Object.fromEntries(parts.map((p, i) => [p.part, cpuMs(p.pids) - before[i]!]));
  agent.destroy();
  if (failed || wrong.size)
    throw new BenchFailure(
      `${t.label} (${t.url}): every response should be ${t.expect}, but ` +
        [
          ...[...wrong].map(([code, count]) => `${count} were ${code}`),
          ...(failed ? [`${failed} failed (${firstFailure})`] : []),
        ].join(', ') +
        (t.diagnose ? `\n${t.diagnose()}` : ''),
    );
  return { requests: latencies.length, latencies, elapsed, cpu };
}

/** The value below which `q` of the sorted values fall (nearest rank), rounded to a tenth. */
function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const v = sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return Math.round(v * 10) / 10;
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
  const runs = await interleaved<string, Slice | Awaited<ReturnType<typeof slice>>>(
    [...byLabel.keys()],
    opts.rounds,
    (label) => {
      const t = byLabel.get(label)!;
      return t.rate
        ? pacedSlice(t, opts.connections, opts.seconds)
        : slice(t, opts.connections, opts.seconds);
    },
  );
  return targets.map((t) => {
    if (t.rate) {
      const slices = runs[t.label] as Slice[];
      const all = slices.flatMap((s) => s.latencies).sort((a, b) => a - b);
      return summed(t, slices, percentile(all, 0.5), percentile(all, 0.99));
    }
    const slices = runs[t.label] as Awaited<ReturnType<typeof slice>>[];
    const total = (autocannon as unknown as { aggregateResult: typeof aggregate }).aggregateResult(
      slices.map((s) => s.raw),
      { url: t.url, connections: opts.connections } as autocannon.Options,
    );
    return summed(
      t,
      slices.map((s) => ({ ...s, requests: s.raw.totalCompletedRequests })),
      total.latency.p50,
      total.latency.p99,
    );
  });
}

function summed(
  t: Target,
  slices: { requests: number; elapsed: number; cpu: Record<string, number> }[],
  p50: number,
  p99: number,
): LoadResult {
  const requests = slices.reduce((a, s) => a + s.requests, 0);
  const seconds = slices.reduce((a, s) => a + s.elapsed, 0);
  const cpuPer1000: Record<string, number> = {};
  for (const part of Object.keys(t.cpu ?? {}))
    cpuPer1000[part] = (slices.reduce((a, s) => a + s.cpu[part]!, 0) / Math.max(1, requests)) * 1000;
  return { label: t.label, requests, seconds, rps: requests / seconds, p50, p99, cpuPer1000 };
}
