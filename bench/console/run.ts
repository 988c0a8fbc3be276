// The console's catalog with 10,000 apps against a baseline of 100, side by side, in Debian's chromium.
//   npx tsx bench/console/run.ts [--apps 10000] [--baseline 100] [--runs 5]
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

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const appCount = Number(arg('--apps', '10000'));
const baseline = Number(arg('--baseline', '100'));
const runs = Number(arg('--runs', '5'));
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

const dist = mkdtempSync(join(tmpdir(), 'microapp-bench-console-'));
await build({
  root: consoleRoot,
  configFile: join(consoleRoot, 'vite.config.ts'),
  logLevel: 'silent',
  build: { outDir: dist, emptyOutDir: true },
});
const size = bundleSize(dist);
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

async function timeToInteractive(count: number): Promise<number[]> {
  const server = await startTestServer('sqlite', { env: { MICROAPP_CONSOLE_DIR: dist } });
  try {
    await seed(server, count);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.getByRole('link', { name: 'Sign in with your company account' }).click();
    await page.getByRole('button', { name: /ivan/i }).click();
    await page.getByRole('link', { name: 'bench-00000' }).waitFor();
    const times: number[] = [];
    for (let r = 0; r < runs + 1; r++) {
      await page.goto(`${server.url}/?r=${r}`);
      await page.getByRole('link', { name: 'bench-00000' }).waitFor({ state: 'visible' });
      const t = await page.evaluate(() =>
        (globalThis as unknown as { performance: { now(): number } }).performance.now(),
      );
      if (r > 0) times.push(t); // the first load warms the server's and the browser's caches
    }
    // Scrolling to the 1,000th app fetches pages as it goes.
    const t0 = Date.now();
    for (let k = 0; k < 10 && count >= 1000; k++) {
      await page.getByTestId('catalog-list').evaluate((el) => {
        (el as unknown as { scrollTop: number; scrollHeight: number }).scrollTop = (
          el as unknown as { scrollHeight: number }
        ).scrollHeight;
      });
      await page.waitForTimeout(50);
    }
    if (count >= 1000) await page.getByRole('link', { name: 'bench-00999' }).waitFor({ timeout: 30_000 });
    const scrolled = Date.now() - t0;
    await context.close();
    console.log(
      `  ${count} apps: ${times.map((t) => t.toFixed(0)).join(', ')} ms${count >= 1000 ? `; scrolled to the 1,000th app in ${scrolled} ms` : ''}`,
    );
    return times;
  } finally {
    await server.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`Catalog time to interactive, ${runs} runs each (median):`);
const base = median(await timeToInteractive(baseline));
const big = median(await timeToInteractive(appCount));
console.log(`  baseline ${baseline} apps: ${base.toFixed(0)} ms`);
console.log(`  ${appCount} apps:        ${big.toFixed(0)} ms   ratio ${(big / base).toFixed(2)}x`);
console.log(
  `Production bundle: JS ${(size.js.raw / 1024).toFixed(1)} KB (${(size.js.gzip / 1024).toFixed(1)} KB gzip), CSS ${(size.css.raw / 1024).toFixed(1)} KB (${(size.css.gzip / 1024).toFixed(1)} KB gzip)`,
);
await browser.close();
rmSync(dist, { recursive: true, force: true });
