// The microapp command's own cost: each command as a fresh process, as people and scripts run it, beside
// `node -e 0` (what starting Node costs) and curl of the same API, the alternatives taking turns. The
// bundled CLI (what `npm run build:cli` makes and bin/microapp.js runs) is measured beside the same commands
// run from the TypeScript sources, which is how the CLI ran before it was bundled.
//   npx tsx bench/cli/run.ts [--quick] [--rounds 10] [--apps 20]
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { currentBundle } from '../../packages/cli/bin/current-bundle.js';
import { bankReconciliation, tokenFor } from '../../packages/server/test/harness.ts';
import { BenchFailure, benchArgs, interleaved, median, runBench, timedCommand } from '../lib/bench.ts';
import { startServer } from '../lib/server-process.ts';

const root = resolve(import.meta.dirname, '../..');
const { number, command } = benchArgs(
  import.meta.filename,
  'The CLI: --version, apps list and sbom as fresh processes, beside node -e 0 and curl of the same API.',
  {
    rounds: { default: '10', quick: '2', help: 'runs of each command (they take turns)' },
    apps: { default: '20', quick: '3', help: 'apps registered before `apps list` lists them' },
  },
);
const rounds = number('rounds');
const bin = join(root, 'packages/cli/bin/microapp.js');
const work = mkdtempSync(join(tmpdir(), 'microapp-bench-cli-'));

const goals: Record<string, number> = { version: 150, list: 150, sbom: 300 };

await runBench(async () => {
  if (!currentBundle(pathToFileURL(join(root, 'packages/cli/dist/')), pathToFileURL(`${root}/`)))
    throw new BenchFailure(
      'the CLI bundle is missing or older than its sources: run `npm run build:cli` first',
    );
  const server = await startServer(null, { MICROAPP_QUOTA_REGISTRATIONS_PER_DAY: '10000' });
  try {
    const token = await tokenFor(server, 'alice@example.com');
    for (let i = 0; i < number('apps'); i++) {
      const res = await fetch(`${server.url}/api/v1/apps`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(bankReconciliation({ name: `bench-cli-${i}`, dataClasses: ['internal'] })),
      });
      if (res.status !== 201)
        throw new BenchFailure(`registering an app answered ${res.status}: ${await res.text()}`);
    }
    const env = { MICROAPP_SERVER: server.url, MICROAPP_TOKEN: token, HOME: work, XDG_CONFIG_HOME: work };
    const sources = { ...env, MICROAPP_CLI_SOURCES: '1' };
    const node = process.execPath;
    const list = `${server.url}/api/v1/apps?limit=50`;
    const runs = {
      'node -e 0': [node, ['-e', '0'], env],
      ...(existsSync('/usr/bin/curl')
        ? {
            'curl GET /api/v1/apps': [
              '/usr/bin/curl',
              ['-sf', '-H', `authorization: Bearer ${token}`, list],
              env,
            ],
          }
        : {}),
      'microapp --version': [node, [bin, '--version'], env],
      'microapp apps list': [node, [bin, 'apps', 'list'], env],
      'microapp sbom (this repository)': [
        node,
        [bin, 'sbom', '-C', root, '-o', join(work, 'sbom.json')],
        env,
      ],
      'sources: microapp --version': [node, [bin, '--version'], sources],
      'sources: microapp apps list': [node, [bin, 'apps', 'list'], sources],
      'sources: microapp sbom': [node, [bin, 'sbom', '-C', root, '-o', join(work, 'sbom.json')], sources],
    } as Record<string, [string, string[], Record<string, string>]>;
    const names = Object.keys(runs);
    // One untimed run each: the sources' first run fills tsx's cache, as any second run finds it.
    for (const name of names) {
      const [cmd, args, e] = runs[name]!;
      await timedCommand(cmd, args, { env: e, errFile: join(work, 'stderr.txt') });
    }
    const timing = await interleaved(names, rounds, async (name) => {
      const [cmd, args, e] = runs[name]!;
      return timedCommand(cmd, args, { env: e, errFile: join(work, 'stderr.txt') });
    });
    const wall = (n: string) => median(timing[n]!.map((r) => r.wallMs));
    const cpu = (n: string) => median(timing[n]!.map((r) => r.cpuMs));
    const base = wall('node -e 0');
    console.log(`CLI commands as fresh processes, medians of ${rounds} (taking turns):`);
    for (const n of names) {
      const goal = /--version/.test(n)
        ? goals.version
        : /apps list/.test(n)
          ? goals.list
          : /sbom/.test(n)
            ? goals.sbom
            : 0;
      console.log(
        `  ${n.padEnd(34)} ${wall(n).toFixed(0).padStart(5)} ms wall ${cpu(n).toFixed(0).padStart(5)} ms CPU  ${(wall(n) / base).toFixed(1).padStart(5)}x node -e 0${goal && !n.startsWith('sources') ? `   goal <= ${goal} ms: ${wall(n) <= goal ? 'met' : 'missed'}` : ''}`,
      );
    }
    for (const n of ['--version', 'apps list', 'sbom']) {
      const bundled = names.find((x) => !x.startsWith('sources') && x.includes(n))!;
      const src = names.find((x) => x.startsWith('sources') && x.includes(n))!;
      console.log(`  sources / bundle, ${n}: ${(wall(src) / wall(bundled)).toFixed(1)}x wall`);
    }
    console.log(`reproduce with: ${command}`);
  } finally {
    await server.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});
