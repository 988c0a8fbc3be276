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
import { BenchFailure, benchArgs, median, runBench } from '../lib/bench.ts';

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

async function measure(
  label: string,
  payload: Buffer,
  headers: Record<string, string> = {},
  scanned = payload.length,
  mustMask = false,
): Promise<{ label: string; median: number; p95: number; cpu: number; bytes: number; masked: boolean }> {
  const req = {
    headers: { host: 'api.bank.example.com', 'content-type': 'application/json', ...headers },
    method: 'POST',
    url: '/notes',
  } as unknown as IncomingMessage;
  const times: number[] = [];
  const cpu: number[] = [];
  let masked = false;
  for (let i = 0; i < runs + 3; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const d = await broker.decide(app, req, payload);
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (!d.allowed) throw new BenchFailure(`${label}: the broker refused: ${d.reason}`);
    masked = Boolean(d.body);
    if (masked !== mustMask)
      throw new BenchFailure(`${label}: the body should ${mustMask ? '' : 'not '}have been rewritten`);
    if (i >= 3) {
      times.push(ms); // the first runs warm the JIT
      cpu.push((c.user + c.system) / 1000);
    }
  }
  times.sort((a, b) => a - b);
  return {
    label,
    median: median(times),
    p95: times[Math.min(times.length - 1, Math.floor(times.length * 0.95))]!,
    cpu: median(cpu),
    bytes: scanned,
    masked,
  };
}

await runBench(async () => {
  const results = [await measure('baseline: empty body (no DLP)', Buffer.alloc(0))];
  for (const size of [1024, 100 * 1024, 1024 * 1024, 5 * 1024 * 1024 - 4096])
    results.push(await measure(`${Math.round(size / 1024)} KB, nothing found`, body(size)));
  for (const size of [1024, 100 * 1024, 1024 * 1024])
    results.push(
      await measure(
        `${Math.round(size / 1024)} KB, one e-mail (masked)`,
        body(size, 'ann.lee@example.org'),
        {},
        undefined,
        true,
      ),
    );
  results.push(
    await measure(
      '1024 KB gzip, one e-mail (masked)',
      gzipSync(body(1024 * 1024, 'ann.lee@example.org')),
      { 'content-encoding': 'gzip' },
      body(1024 * 1024, 'ann.lee@example.org').length,
      true,
    ),
  );

  const base = results[0]!.median;
  console.log(
    `DLP in the egress broker's decision, ${runs} runs each (node ${process.version})\nreproduce with: ${command}\n`,
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
