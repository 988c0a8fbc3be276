// The pipeline, measured:
//  1. time from `microapp init` to a signed, published artifact, for each template (real server, real CLI);
//  2. SBOM generation side by side with @cyclonedx/cyclonedx-npm on the same lockfile, both as fresh
//     processes taking turns, in wall and CPU time, after checking that both list the same packages (purls,
//     nested components included);
//  3. a scan of a 500-component SBOM against 20,000 OSV records.
//   npx tsx bench/pipeline/run.ts [--quick] [--lockfile-dir .] [--runs 5] [--templates ...] [--records 20000]
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { zipSync } from 'fflate';
import pino from 'pino';
import { loadConfig } from '../../packages/server/src/config.ts';
import { startServer } from '../../packages/server/src/server.ts';
import { tokenFor } from '../../packages/server/test/harness.ts';
import { BenchFailure, benchArgs, interleaved, median, runBench, timedCommand } from '../lib/bench.ts';

const root = resolve(import.meta.dirname, '../..');
const { values, number, command } = benchArgs(
  import.meta.filename,
  'The pipeline: init to a signed artifact per template, SBOM beside cyclonedx-npm, an advisory scan.',
  {
    'lockfile-dir': {
      default: '.',
      help: 'the project whose package-lock.json both SBOM tools read (from where you run it)',
    },
    runs: { default: '5', quick: '1', help: 'runs of each SBOM tool (they take turns)' },
    templates: {
      default: 'form,connector,dashboard,finance-reconciliation',
      quick: 'form',
      help: 'the templates taken from init to a signed artifact',
    },
    records: { default: '20000', quick: '2000', help: 'OSV records the scan matches against' },
  },
);
const runs = number('runs');
const records = number('records');
const lockDir = resolve(values['lockfile-dir']);
const bin = join(root, 'packages/cli/bin/microapp.js');
const work = mkdtempSync(join(tmpdir(), 'microapp-bench-pipeline-'));

function exec(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<{ code: number; out: string }> {
  return new Promise((done) =>
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...env }, cwd, maxBuffer: 64 * 1024 * 1024 },
      (e, stdout, stderr) => done({ code: e ? 1 : 0, out: stdout + stderr }),
    ),
  );
}
const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

const token = (url: string, email: string) => tokenFor({ url }, email);

const timed = (cmd: string, args: string[], cwd: string) =>
  timedCommand(cmd, args, { cwd, errFile: join(work, 'stderr.txt') });

type Listed = {
  purl?: string;
  components?: Listed[];
  licenses?: { license?: { id?: string; name?: string }; expression?: string }[];
};

/** Every package an SBOM lists, by purl without qualifiers (nested components included), with its licenses. */
function listed(file: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (components: Listed[] | undefined) => {
    for (const c of components ?? []) {
      const licenses = [
        ...new Set((c.licenses ?? []).map((l) => l.license?.id ?? l.license?.name ?? l.expression ?? '')),
      ];
      if (c.purl) out.set(decodeURIComponent(c.purl.split('?')[0]!), licenses.sort().join(' | '));
      walk(c.components);
    }
  };
  walk(JSON.parse(readFileSync(file, 'utf8')).components);
  return out;
}

await runBench(async () => {
  if (!existsSync(join(lockDir, 'package-lock.json')))
    throw new BenchFailure(`no package-lock.json in ${lockDir} (--lockfile-dir)`);
  const server = await startServer(
    loadConfig({ dev: true, port: 0, devIdpPort: 0, dataDir: join(work, 'data') }, {}),
    { logger: pino({ level: 'silent' }) },
  );
  try {
    const env = { MICROAPP_CONFIG_DIR: join(work, 'config'), MICROAPP_SERVER: server.url };
    const carol = await token(server.url, 'carol@example.com');
    const bob = await token(server.url, 'bob@example.com');
    const erin = await token(server.url, 'erin@example.com');

    // 3. Scan: OSV records over 5,000 packages; an SBOM of 500 components, 250 of them with records.
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < records; i++) {
      const pkg = `pkg-${i % 5000}`;
      files[`GHSA-${i}.json`] = new TextEncoder().encode(
        JSON.stringify({
          id: `GHSA-bench-${i}`,
          aliases: [`CVE-2026-${i}`],
          affected: [
            {
              package: { ecosystem: 'npm', name: pkg },
              ranges: [
                { type: 'SEMVER', events: [{ introduced: `${i % 3}.0.0` }, { fixed: `${(i % 3) + 1}.0.0` }] },
              ],
            },
          ],
          database_specific: { severity: i % 2 ? 'LOW' : 'MODERATE' },
        }),
      );
    }
    const imported = await fetch(`${server.url}/api/v1/advisories`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/zip' },
      body: zipSync(files),
    });
    if (imported.status !== 201)
      throw new BenchFailure(`advisory import answered ${imported.status}: ${await imported.text()}`);
    const components = Array.from({ length: 500 }, (_, i) => ({
      type: 'library',
      name: i < 250 ? `pkg-${i * 20}` : `clean-${i}`,
      version: '1.5.0',
      purl: `pkg:npm/x@1.5.0`,
    }));
    const scanBody = JSON.stringify({
      sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', components },
      tier: 'low',
    });
    const scanTimes: number[] = [];
    let findings = 0;
    for (let run = 0; run < 5; run++) {
      const t = process.hrtime.bigint();
      const r = await fetch(`${server.url}/api/v1/scans`, {
        method: 'POST',
        headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json' },
        body: scanBody,
      });
      if (r.status !== 200) throw new BenchFailure(`the scan answered ${r.status}: ${await r.text()}`);
      findings = ((await r.json()) as { findings: unknown[] }).findings.length;
      scanTimes.push(ms(t));
    }
    if (findings === 0) throw new BenchFailure('the scan found nothing: the advisories did not match');

    // 1. init → signed artifact, per template; every command must succeed.
    const rows: string[] = [];
    const must = async (what: string, p: Promise<{ code: number; out: string }>) => {
      const r = await p;
      if (r.code !== 0) throw new BenchFailure(`${what} failed:\n${r.out.slice(0, 1500)}`);
    };
    await must('login', exec(process.execPath, [bin, 'login', '--dev-user', 'alice@example.com'], env));
    for (const template of values.templates.split(',').filter(Boolean)) {
      const dir = join(work, `app-${template}`);
      const t = process.hrtime.bigint();
      const steps: [string, number][] = [];
      let s = process.hrtime.bigint();
      await must(
        `init -t ${template}`,
        exec(process.execPath, [bin, 'init', dir, '-t', template, '--department', 'finance'], env),
      );
      steps.push(['init', ms(s)]);
      s = process.hrtime.bigint();
      await must(
        'register',
        exec(process.execPath, [bin, 'register', '-f', join(dir, 'microapp.yaml')], env),
      );
      for (const reviewer of [bob, erin]) {
        const r = await fetch(`${server.url}/api/v1/apps/app-${template}/reviews`, {
          method: 'POST',
          headers: { authorization: `Bearer ${reviewer}`, 'content-type': 'application/json' },
          body: '{"decision":"approve"}',
        });
        // A low-tier app needs no review: the platform answers 409, which is not a failure here.
        if (r.status !== 201 && r.status !== 200 && r.status !== 409)
          throw new BenchFailure(`review of app-${template} answered ${r.status}: ${await r.text()}`);
      }
      steps.push(['register+approve', ms(s)]);
      s = process.hrtime.bigint();
      await must(`ci of ${template}`, exec(process.execPath, [bin, 'ci', '--dir', dir], env));
      steps.push(['ci (10 steps)', ms(s)]);
      rows.push(
        `  ${template.padEnd(24)} ${(ms(t) / 1000).toFixed(2).padStart(6)} s   (${steps.map(([n, v]) => `${n} ${(v / 1000).toFixed(2)} s`).join(', ')})`,
      );
    }

    // 2. SBOM of one lockfile: both tools as fresh processes, taking turns; first, the same packages.
    // Both read the installed tree when there is one (what is present, and each package's own license);
    // else both read only the lockfile.
    const installed = existsSync(join(lockDir, 'node_modules'));
    const ourFile = join(work, 'microapp.cdx.json');
    const theirFile = join(work, 'cyclonedx-npm.cdx.json');
    const tools = {
      'microapp sbom': () => timed(process.execPath, [bin, 'sbom', '-C', lockDir, '-o', ourFile], lockDir),
      '@cyclonedx/cyclonedx-npm': () =>
        timed(
          join(root, 'node_modules/.bin/cyclonedx-npm'),
          [
            '--output-format',
            'JSON',
            '--output-file',
            theirFile,
            '--spec-version',
            '1.6',
            ...(installed ? [] : ['--package-lock-only']),
          ],
          lockDir,
        ),
    };
    const names = Object.keys(tools) as (keyof typeof tools)[];
    for (const name of names) await tools[name](); // warm the file cache, and check both work
    const oursListed = listed(ourFile);
    const theirsListed = listed(theirFile);
    const ours = new Set(oursListed.keys());
    const theirs = new Set(theirsListed.keys());
    const licenseDiffers = [...ours].filter((p) => theirsListed.get(p) !== oursListed.get(p));
    const onlyOurs = [...ours].filter((p) => !theirs.has(p));
    const onlyTheirs = [...theirs].filter((p) => !ours.has(p));
    if (onlyOurs.length || onlyTheirs.length)
      throw new BenchFailure(
        `the two SBOMs list different packages (${ours.size} vs ${theirs.size}); only microapp: ${onlyOurs.slice(0, 5).join(', ') || 'none'}; only cyclonedx-npm: ${onlyTheirs.slice(0, 5).join(', ') || 'none'}`,
      );
    const timing = await interleaved(names, runs, (name) => tools[name]());
    const wall = (n: keyof typeof tools) => median(timing[n].map((r) => r.wallMs));
    const cpu = (n: keyof typeof tools) => median(timing[n].map((r) => r.cpuMs));

    console.log(`node ${process.version}; medians where runs repeat\nreproduce with: ${command}\n`);
    console.log('init → signed, published artifact (real server and CLI, each command a fresh process):');
    for (const r of rows) console.log(r);
    console.log(
      `\nSBOM of ${lockDir === root ? 'this repository' : lockDir} (${installed ? 'the installed tree' : 'the lockfile only'}), ${ours.size} packages, the same purls from both, ${licenseDiffers.length ? `licenses differing for ${licenseDiffers.length} (${licenseDiffers.slice(0, 3).join(', ')})` : 'the same licenses'}; each run a fresh process, ${runs} runs each, taking turns:`,
    );
    for (const n of names)
      console.log(
        `  ${n.padEnd(26)} ${wall(n).toFixed(0).padStart(6)} ms wall  ${cpu(n).toFixed(0).padStart(6)} ms CPU`,
      );
    console.log(
      `  cyclonedx-npm / microapp: ${(wall(names[1]!) / wall(names[0]!)).toFixed(1)}x wall, ${(cpu(names[1]!) / cpu(names[0]!)).toFixed(1)}x CPU`,
    );
    console.log(
      `\nscan of a 500-component SBOM against ${records.toLocaleString('en-US')} OSV records (API round trip): ${median(scanTimes).toFixed(0)} ms, ${findings} findings`,
    );
  } finally {
    await server.close();
  }
}).finally(() => rmSync(work, { recursive: true, force: true }));
