// The console's catalog with 10,000 apps against a baseline of 100, side by side, in Debian's chromium.
//   npx tsx bench/console/run.ts [--quick] [--apps 10000] [--baseline 100] [--runs 5]
// Both catalogs are served at once and their page loads take turns, so the machine's load falls on both.
// Time to interactive: from the start of navigation to the catalog's first row being on screen and
// clickable (the page has loaded, signed in, fetched the first page of 100 apps and rendered the
// visible rows). The catalog pages on the server and renders only the rows in view, so the ratio should
// stay near 1. Also prints the production bundle's size, raw and gzip.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { startTestServer, type TestServer } from '../../packages/server/test/harness.ts';
import { BenchFailure, benchArgs, interleaved, median, runBench } from '../lib/bench.ts';

const { number, command } = benchArgs(
  import.meta.filename,
  "The console's catalog: time to interactive with many apps against a small baseline, in Chromium.",
  {
    apps: { default: '10000', quick: '1000', help: 'apps in the big catalog' },
    baseline: { default: '100', quick: '100', help: 'apps in the baseline catalog' },
    runs: { default: '5', quick: '1', help: 'page loads timed per catalog (they take turns)' },
  },
);
const appCount = number('apps');
const baseline = number('baseline');
const runs = number('runs');
const consoleRoot = resolve(import.meta.dirname, '../../packages/console');

async function seed(server: TestServer, count: number) {
  const db = server.rawDb();
  const now = new Date().toISOString();
  const tiers = ['low', 'medium', 'high'];
  try {
    for (let i = 0; i < count; i += 500) {
      const apps = [];
      const assessments = [];
      for (let j = i; j < Math.min(count, i + 500); j++) {
        const name = `bench-${String(j).padStart(5, '0')}`;
        const tier = tiers[j % 3]!;
        apps.push({
          id: `app_bench${String(j).padStart(15, '0')}`,
          name,
          owner: `owner${j % 200}@example.com`,
          registered_by: 'usr_bench',
          department: ['finance', 'marketing', 'operations'][j % 3]!,
          state: j % 7 === 0 ? 'pending_review' : 'approved',
          tier,
          required_reviews: '[]',
          revision: 1,
          manifest: JSON.stringify({
            name,
            owner: `owner${j % 200}@example.com`,
            purpose: `Benchmark app number ${j}, which keeps a list of things for a team`,
            dataClasses: ['internal'],
          }),
          assessment_id: `ras_bench${String(j).padStart(15, '0')}`,
          created_at: now,
          updated_at: now,
        });
        assessments.push({
          id: `ras_bench${String(j).padStart(15, '0')}`,
          app_id: `app_bench${String(j).padStart(15, '0')}`,
          revision: 1,
          score: 5,
          tier,
          factors: '[]',
          inputs: '{}',
          rules_version: 'bench',
          created_at: now,
        });
      }
      await db.kysely.insertInto('apps').values(apps).execute();
      await db.kysely.insertInto('risk_assessments').values(assessments).execute();
    }
  } finally {
    await db.destroy();
  }
}

function bundleSize(dir: string) {
  const files = readdirSync(join(dir, 'assets')).map((f) => join(dir, 'assets', f));
  const sum = (ext: string) =>
    files
      .filter((f) => f.endsWith(ext))
      .reduce(
        (a, f) => ({ raw: a.raw + statSync(f).size, gzip: a.gzip + gzipSync(readFileSync(f)).length }),
        { raw: 0, gzip: 0 },
      );
  return { js: sum('.js'), css: sum('.css') };
}

await runBench(async () => {
  const dist = mkdtempSync(join(tmpdir(), 'microapp-bench-console-'));
  const servers: TestServer[] = [];
  const browser = await chromium.launch({
    executablePath: process.env.MICROAPP_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    await build({
      root: consoleRoot,
      configFile: join(consoleRoot, 'vite.config.ts'),
      logLevel: 'silent',
      build: { outDir: dist, emptyOutDir: true },
    });
    const size = bundleSize(dist);

    /** A server with `count` apps and a signed-in page on it. */
    async function prepare(count: number) {
      const server = await startTestServer('sqlite', { env: { MICROAPP_CONSOLE_DIR: dist } });
      servers.push(server);
      await seed(server, count);
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${server.url}/`);
      await page.getByRole('link', { name: 'Sign in with your company account' }).click();
      await page.getByRole('button', { name: /ivan/i }).click();
      // The first load warms the server's and the browser's caches.
      await page.getByRole('link', { name: 'bench-00000' }).waitFor();
      return { server, page, count };
    }
    const sides = { baseline: await prepare(baseline), big: await prepare(appCount) };

    /** Time from the start of navigation to the first row on screen (the page's own clock). */
    const load = async (side: keyof typeof sides, round: number) => {
      const { server, page, count } = sides[side];
      await page.goto(`${server.url}/?r=${round}`);
      try {
        await page.getByRole('link', { name: 'bench-00000' }).waitFor({ state: 'visible', timeout: 15_000 });
      } catch {
        throw new BenchFailure(`the catalog of ${count} apps did not show its first app within 15 s`);
      }
      return page.evaluate(() =>
        (globalThis as unknown as { performance: { now(): number } }).performance.now(),
      );
    };
    const times = await interleaved(['baseline', 'big'] as const, runs, load);

    // Scrolling to the 1,000th app fetches pages as it goes.
    let scrolled: number | null = null;
    if (appCount >= 1000) {
      const page = sides.big.page;
      const t0 = Date.now();
      for (let k = 0; k < 10; k++) {
        await page.getByTestId('catalog-list').evaluate((el) => {
          (el as unknown as { scrollTop: number; scrollHeight: number }).scrollTop = (
            el as unknown as { scrollHeight: number }
          ).scrollHeight;
        });
        await page.waitForTimeout(50);
      }
      await page.getByRole('link', { name: 'bench-00999' }).waitFor({ timeout: 30_000 });
      scrolled = Date.now() - t0;
    }

    const base = median(times.baseline);
    const big = median(times.big);
    console.log(
      `Catalog time to interactive, ${runs} page loads each, taking turns (median)\nreproduce with: ${command}\n`,
    );
    console.log(
      `  baseline ${baseline} apps: ${base.toFixed(0)} ms   (${times.baseline.map((t) => t.toFixed(0)).join(', ')})`,
    );
    console.log(
      `  ${appCount} apps: ${big.toFixed(0)} ms   (${times.big.map((t) => t.toFixed(0)).join(', ')})   ratio ${(big / base).toFixed(2)}x`,
    );
    if (scrolled !== null) console.log(`  scrolled to the 1,000th app in ${scrolled} ms`);
    console.log(
      `Production bundle: JS ${(size.js.raw / 1024).toFixed(1)} KB (${(size.js.gzip / 1024).toFixed(1)} KB gzip), CSS ${(size.css.raw / 1024).toFixed(1)} KB (${(size.css.gzip / 1024).toFixed(1)} KB gzip)`,
    );
  } finally {
    await browser.close();
    for (const s of servers) await s.stop();
    rmSync(dist, { recursive: true, force: true });
  }
});
