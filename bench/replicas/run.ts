// One replica against three on one PostgreSQL: the same load (a creator's catalog list; registrations with
// their policy evaluation, repository and audit event; and a cheap audited write, an API token issued, whose
// cost is mostly its audit event) sent to one server process, then spread over three, taking
// turns in short slices. Each replica is `microapp server --dev` in its own process with its own data folder,
// the KEK shared. Every response must be 200 (lists) or 201 (registrations), or the run fails. On a machine
// with N cores, N processes is the most that can help: the figure says what the replicas add here. With
// `--registry on` (the default) the replicas share an OCI registry (Debian's docker-registry, started here),
// as a three-replica install does: artifacts and the apps' repositories (MICROAPP_GIT_STORE=shared) go there.
//   npx tsx bench/replicas/run.ts [--quick] [--seconds 3] [--rounds 3] [--connections 12] [--postgres URL] [--registry on]
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import autocannon from 'autocannon';
import { tokenFor } from '../../packages/server/test/harness.ts';
import { startRegistry } from '../../packages/server/test/oci-registry.ts';
import { BenchFailure, benchArgs, median, runBench } from '../lib/bench.ts';
import { startServer } from '../lib/server-process.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  'One replica against three on one PostgreSQL: catalog reads and registrations.',
  {
    seconds: { default: '3', quick: '1', help: 'length of one slice of load, in seconds' },
    rounds: { default: '3', quick: '1', help: 'slices per row; the rows take turns' },
    connections: {
      default: '12',
      quick: '3',
      help: 'concurrent connections in all, spread over the replicas',
    },
    postgres: {
      default: process.env.MICROAPP_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      help: 'the PostgreSQL the replicas share',
    },
    registry: {
      default: 'on',
      help: 'on: the replicas share an OCI registry for blobs and repositories; off: each its own folder',
    },
  },
);

type Server = Awaited<ReturnType<typeof startServer>>;
let n = 0;
const manifest = () =>
  JSON.stringify({
    name: `replica-bench-${process.pid}-${n++}`,
    owner: 'alice@example.com',
    purpose: 'A benchmark app that matches invoices to payments',
    dataClasses: ['internal', 'financial'],
  });

type Kind = 'list' | 'register' | 'audited';
const paths: Record<Kind, string> = {
  list: '/api/v1/apps?limit=20',
  register: '/api/v1/apps',
  audited: '/api/v1/tokens',
};
const tokenBody = JSON.stringify({ name: 'replica-bench', scopes: ['apps:read'], expiresInDays: 1 });

/** Load on several servers at once, the connections spread over them; requests per second in all. */
async function spread(urls: string[], token: string, kind: Kind, seconds: number, connections: number) {
  const each = Math.max(1, Math.round(connections / urls.length));
  const runs = await Promise.all(
    urls.map((url) =>
      autocannon({
        url: `${url}${paths[kind]}`,
        connections: each,
        duration: seconds,
        method: kind === 'list' ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        skipAggregateResult: true,
        ...(kind === 'register'
          ? { requests: [{ setupRequest: (req: object) => ({ ...req, body: manifest() }) }] }
          : kind === 'audited'
            ? { body: tokenBody }
            : {}),
      } as autocannon.Options),
    ),
  );
  const expect = kind === 'list' ? 200 : 201;
  let requests = 0;
  for (const r of runs) {
    const wrong = Object.entries(
      (r as unknown as { statusCodeStats: Record<string, { count: number }> }).statusCodeStats,
    ).filter(([code]) => Number(code) !== expect);
    if (r.errors || r.timeouts || wrong.length)
      throw new BenchFailure(
        `${kind}: every response should be ${expect}, but ${JSON.stringify({ wrong, errors: r.errors, timeouts: r.timeouts })}`,
      );
    requests += (r as unknown as { totalCompletedRequests: number }).totalCompletedRequests;
  }
  return requests / seconds;
}

await runBench(async () => {
  const servers: Server[] = [];
  if (!['on', 'off'].includes(values.registry)) throw new BenchFailure('--registry is on or off');
  const registry = values.registry === 'on' ? await startRegistry() : null;
  const env = {
    MICROAPP_KEK: randomBytes(32).toString('base64'),
    MICROAPP_QUOTA_REGISTRATIONS_PER_DAY: '1000000000',
    MICROAPP_JOBS: 'off',
    ...(registry ? { MICROAPP_BLOB_REGISTRY: `${registry.url}/microapp` } : {}),
  };
  try {
    const first = await startServer(values.postgres, { ...env, MICROAPP_REPLICA_ID: 'bench-1' });
    servers.push(first);
    const shared = (first.database as { postgresUrl: string }).postgresUrl;
    for (const id of ['bench-2', 'bench-3'])
      servers.push(await startServer(shared, { ...env, MICROAPP_REPLICA_ID: id }));
    const token = await tokenFor({ url: first.url }, 'alice@example.com');
    const one = [first.url];
    const three = servers.map((s) => s.url);
    const seconds = number('seconds');
    const connections = number('connections');
    const rows: Record<string, number[]> = {};
    for (let round = 0; round < number('rounds'); round++)
      for (const kind of ['list', 'register', 'audited'] as const)
        for (const [label, urls] of [
          ['1 replica', one],
          ['3 replicas', three],
        ] as const) {
          const key = `${kind}|${label}`;
          rows[key] = [...(rows[key] ?? []), await spread([...urls], token, kind, seconds, connections)];
        }
    console.log(
      `node ${process.version}; ${availableParallelism()} cores; ${registry ? 'blobs and repositories in an OCI registry' : 'each replica its own folder'}; ${connections} connections spread over the replicas; ${number('rounds')} slice(s) of ${seconds} s per row, taking turns; medians\nreproduce with: ${command}\n`,
    );
    for (const kind of ['list', 'register', 'audited'] as const) {
      const a = median(rows[`${kind}|1 replica`]!);
      const b = median(rows[`${kind}|3 replicas`]!);
      const what = {
        list: "a creator's catalog list",
        register: 'registrations',
        audited: 'tokens issued (audited)',
      }[kind];
      console.log(
        `  ${what.padEnd(26)} 1 replica ${Math.round(a).toLocaleString('en-US').padStart(6)} req/s   3 replicas ${Math.round(b).toLocaleString('en-US').padStart(6)} req/s   3 replicas / 1: ${(b / a).toFixed(2)}x`,
      );
    }
  } finally {
    for (const s of servers.reverse()) await s.cleanup();
    await registry?.stop();
  }
});
