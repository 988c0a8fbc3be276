// What DLP costs the egress broker per request, by body size, with the built-in policy packs.
//   npx tsx bench/dlp/run.ts [--quick] [--runs 30]
// Baseline: the broker's decision for the same request with an empty body (host, policy, address rules; no
// DLP). Measured: the decision with a JSON body of 1 KB, 100 KB, 1 MB and 5 MB (the broker's limit) holding
// nothing to find, then the same bodies with one e-mail address at the end, which the organization's policy
// masks (so the pack is asked and the body rewritten), and the 1 MB body gzip-compressed. Printed: median and
// p95 per decision, the ratio to the baseline's median, and the scanning rate.
import type { IncomingMessage } from 'node:http';
import { gzipSync } from 'node:zlib';
import { compile, toValue } from '@microapp/rego';
import { adjustableClock } from '../../packages/server/src/clock.ts';
import {
  createEgressBroker,
  type DlpInput,
  type DlpVerdict,
  dlpVerdictOf,
} from '../../packages/server/src/modules/egress/egress-broker.ts';
import {
  builtinPolicyDir,
  deepMerge,
  readPolicyDir,
} from '../../packages/server/src/modules/policy/policy-sources.ts';
import { BenchFailure, benchArgs, interleaved, median, runBench } from '../lib/bench.ts';

const { number, command } = benchArgs(
  import.meta.filename,
  "What DLP costs the egress broker's decision, by body size.",
  {
    runs: { default: '30', quick: '3', help: 'decisions timed per case (after 3 to warm up)' },
  },
);
const runs = number('runs');

const builtin = readPolicyDir(builtinPolicyDir);
const policy = compile(builtin.modules);
const data = toValue(
  deepMerge(builtin.data, { microapp: { config: { dlp: { modes: { email: 'mask' } } } } }),
);
const budget = { maxMillis: 1000, maxSteps: 2_000_000, maxCollection: 200_000 };
const broker = createEgressBroker({
  db: null as never,
  clock: adjustableClock(),
  audit: {
    record: async () => {
      throw new Error('decide() writes nothing');
    },
  },
  dir: '/nonexistent',
  policy: async (input) => {
    const denials: string[] = [];
    for (const pkg of ['network', 'deploy', 'privacy'])
      denials.push(
        ...((policy.evaluate(`data.microapp.${pkg}.deny`, { input, data, budget }) as string[]) ?? []),
      );
    return denials.map((message) => ({ message }));
  },
  dlp: async (input: DlpInput): Promise<DlpVerdict> =>
    dlpVerdictOf(policy.evaluate('data.microapp.dlp', { input, data, budget }), input),
  resolve: async () => ['93.184.215.14'],
});
const app = {
  name: 'bench',
  appId: 'app_bench',
  version: '1.0.0',
  owner: 'o@example.com',
  department: null,
  tier: 'low',
  manifest: {
    name: 'bench',
    owner: 'o@example.com',
    purpose: 'measure the broker',
    dataClasses: ['internal' as const],
    integrations: { egress: ['api.bank.example.com'] },
  },
};

/** A JSON body of about `bytes`, rows of plain business data with nothing DLP looks for. */
function body(bytes: number, tail = ''): Buffer {
  const row =
    '{"entry":"INV-20931","amount":"1250.00","currency":"EUR","memo":"office chairs, third floor"},';
  return Buffer.from(`[${row.repeat(Math.max(1, Math.floor(bytes / row.length)))}{"note":"${tail}"}]`);
}

type Case = {
  label: string;
  payload: Buffer;
  headers?: Record<string, string>;
  scanned?: number;
  mustMask?: boolean;
};

/** One decision of the broker on a case, in wall and CPU time; fails the run on a refusal or a wrong mask. */
async function decideOnce(c: Case): Promise<{ ms: number; cpu: number }> {
  const req = {
    headers: { host: 'api.bank.example.com', 'content-type': 'application/json', ...c.headers },
    method: 'POST',
    url: '/notes',
  } as unknown as IncomingMessage;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const d = await broker.decide(app, req, c.payload);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  if (!d.allowed) throw new BenchFailure(`${c.label}: the broker refused: ${d.reason}`);
  if (Boolean(d.body) !== Boolean(c.mustMask))
    throw new BenchFailure(`${c.label}: the body should ${c.mustMask ? '' : 'not '}have been rewritten`);
  return { ms, cpu: (cpu.user + cpu.system) / 1000 };
}

await runBench(async () => {
  const masked = (size: number) => body(size, 'ann.lee@example.org');
  const cases: Case[] = [
    { label: 'baseline: empty body (no DLP)', payload: Buffer.alloc(0) },
    ...[1024, 100 * 1024, 1024 * 1024, 5 * 1024 * 1024 - 4096].map((size) => ({
      label: `${Math.round(size / 1024)} KB, nothing found`,
      payload: body(size),
    })),
    ...[1024, 100 * 1024, 1024 * 1024].map((size) => ({
      label: `${Math.round(size / 1024)} KB, one e-mail (masked)`,
      payload: masked(size),
      mustMask: true,
    })),
    {
      label: '1024 KB gzip, one e-mail (masked)',
      payload: gzipSync(masked(1024 * 1024)),
      headers: { 'content-encoding': 'gzip' },
      scanned: masked(1024 * 1024).length,
      mustMask: true,
    },
  ];
  const byLabel = new Map(cases.map((c) => [c.label, c]));
  // The cases take turns, one decision each; the first three rounds warm the JIT and are not counted.
  const runsOf = await interleaved([...byLabel.keys()], runs + 3, (label) => decideOnce(byLabel.get(label)!));
  const results = cases.map((c) => {
    const kept = runsOf[c.label]!.slice(3);
    const times = kept.map((r) => r.ms).sort((x, y) => x - y);
    return {
      label: c.label,
      median: median(times),
      p95: times[Math.min(times.length - 1, Math.floor(times.length * 0.95))]!,
      cpu: median(kept.map((r) => r.cpu)),
      bytes: c.scanned ?? c.payload.length,
      masked: Boolean(c.mustMask),
    };
  });

  const base = results[0]!.median;
  console.log(
    `DLP in the egress broker's decision, ${runs} runs each, the cases taking turns (node ${process.version})\nreproduce with: ${command}\n`,
  );
  console.log(
    'case                                   median ms   p95 ms  CPU ms   x baseline   MB/s scanned',
  );
  for (const r of results)
    console.log(
      `${r.label.padEnd(38)} ${r.median.toFixed(2).padStart(9)} ${r.p95.toFixed(2).padStart(8)} ${r.cpu.toFixed(2).padStart(7)} ${(r.median / base).toFixed(1).padStart(11)}x ${
        r.bytes ? (r.bytes / 1024 / 1024 / (r.median / 1000)).toFixed(0).padStart(13) : '            -'
      }${r.masked ? '  (body rewritten)' : ''}`,
    );
});
