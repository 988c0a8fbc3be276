// The pipeline, measured:
//  1. time from `microapp init` to a signed, published artifact, for each template (real server, real CLI);
//  2. SBOM generation side by side with @cyclonedx/cyclonedx-npm on the same project (this repository);
//  3. a scan of a 500-component SBOM against 20,000 OSV records.
//   npx tsx bench/pipeline/run.ts
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { zipSync } from 'fflate';
import pino from 'pino';
import { buildSbom } from '../../packages/cli/src/pipeline/sbom.ts';
import { loadConfig } from '../../packages/server/src/config.ts';
import { startServer } from '../../packages/server/src/server.ts';
import { tokenFor } from '../../packages/server/test/harness.ts';

const root = resolve(import.meta.dirname, '../..');
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

const server = await startServer(
  loadConfig({ dev: true, port: 0, devIdpPort: 0, dataDir: join(work, 'data') }, {}),
  { logger: pino({ level: 'silent' }) },
);
try {
  const env = { MICROAPP_CONFIG_DIR: join(work, 'config'), MICROAPP_SERVER: server.url };
  const carol = await token(server.url, 'carol@example.com');
  const bob = await token(server.url, 'bob@example.com');
  const erin = await token(server.url, 'erin@example.com');

  // 3. Scan: 20,000 OSV records over 5,000 packages; an SBOM of 500 components, 250 of them with records.
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 20_000; i++) {
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
  if (imported.status !== 201) throw new Error(`import failed: ${await imported.text()}`);
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
    findings = ((await r.json()) as { findings: unknown[] }).findings.length;
    scanTimes.push(ms(t));
  }

  // 1. init → signed artifact, per template.
  const rows: string[] = [];
  await exec(process.execPath, [bin, 'login', '--dev-user', 'alice@example.com'], env);
  for (const template of ['form', 'connector', 'dashboard', 'finance-reconciliation']) {
    const dir = join(work, `app-${template}`);
    const t = process.hrtime.bigint();
    const steps: [string, number][] = [];
    let s = process.hrtime.bigint();
    await exec(process.execPath, [bin, 'init', dir, '-t', template, '--department', 'finance'], env);
    steps.push(['init', ms(s)]);
    s = process.hrtime.bigint();
    await exec(process.execPath, [bin, 'register', '-f', join(dir, 'microapp.yaml')], env);
    for (const reviewer of [bob, erin])
      await fetch(`${server.url}/api/v1/apps/app-${template}/reviews`, {
        method: 'POST',
        headers: { authorization: `Bearer ${reviewer}`, 'content-type': 'application/json' },
        body: '{"decision":"approve"}',
      });
    steps.push(['register+approve', ms(s)]);
    s = process.hrtime.bigint();
    const ci = await exec(process.execPath, [bin, 'ci', '--dir', dir], env);
    if (ci.code !== 0) throw new Error(`ci failed for ${template}:\n${ci.out}`);
    steps.push(['ci (9 steps)', ms(s)]);
    rows.push(
      `  ${template.padEnd(24)} ${(ms(t) / 1000).toFixed(2).padStart(6)} s   (${steps.map(([n, v]) => `${n} ${(v / 1000).toFixed(2)} s`).join(', ')})`,
    );
  }

  // 2. SBOM generation on this repository (its lockfile and installed node_modules).
  const ours: number[] = [];
  let count = 0;
  for (let run = 0; run < 3; run++) {
    const t = process.hrtime.bigint();
    count = JSON.parse((await buildSbom(root)).json).components.length;
    ours.push(ms(t));
  }
  const theirs: number[] = [];
  let theirCount = 0;
  for (let run = 0; run < 3; run++) {
    const out = join(work, `cdx-${run}.json`);
    const t = process.hrtime.bigint();
    const r = await exec(
      join(root, 'node_modules/.bin/cyclonedx-npm'),
      ['--output-format', 'JSON', '--output-file', out, '--spec-version', '1.6', '--package-lock-only'],
      {},
      root,
    );
    theirs.push(ms(t));
    if (r.code !== 0) throw new Error(`cyclonedx-npm failed: ${r.out.slice(0, 500)}`);
    theirCount = JSON.parse((await import('node:fs')).readFileSync(out, 'utf8')).components?.length ?? 0;
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  console.log(`node ${process.version}; medians where runs repeat\n`);
  console.log('init → signed, published artifact (real server and CLI, each command a fresh process):');
  for (const r of rows) console.log(r);
  console.log(`\nSBOM of this repository's lockfile:`);
  console.log(
    `  microapp buildSbom          ${med(ours).toFixed(0).padStart(6)} ms  (${count} components, strict schema validation included)`,
  );
  console.log(
    `  @cyclonedx/cyclonedx-npm   ${med(theirs).toFixed(0).padStart(6)} ms  (${theirCount} components, --package-lock-only, a process each run)`,
  );
  console.log(`  ratio cyclonedx-npm / microapp: ${(med(theirs) / med(ours)).toFixed(1)}x`);
  console.log(
    `\nscan of a 500-component SBOM against 20,000 OSV records (API round trip): ${med(scanTimes).toFixed(0)} ms, ${findings} findings`,
  );
} finally {
  await server.close();
  rmSync(work, { recursive: true, force: true });
}
