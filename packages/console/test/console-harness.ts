// What the console's browser tests share: a console built from these sources, a server that serves it,
// Debian's chromium driven by playwright-core, sign-in through the embedded identity provider, and
// axe-core over each page (no serious or critical WCAG 2.1 A/AA violation).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import axe from 'axe-core';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { importAdvisories } from '../../cli/test/cli-harness.ts';
import { signInEveryone, startTestServer, type TestServer } from '../../server/test/harness.ts';

const chromiumPath = process.env.MICROAPP_CHROMIUM ?? '/usr/bin/chromium';
export const shots = resolve(import.meta.dirname, '../../../test-output/console');

export type ConsoleRig = {
  server: TestServer;
  browser: Browser;
  tokens: Awaited<ReturnType<typeof signInEveryone>>;
  /** A folder of the rig's own, for a test's files (removed at the end). */
  dir: string;
  /** A browser of one's own, signed in through the platform's OIDC login as a seeded user. */
  signedIn(email: string): Promise<{ context: BrowserContext; page: Page; errors: string[] }>;
  /** axe-core over the page as it is now: serious and critical WCAG 2.1 A/AA violations fail the test. */
  accessible(page: Page, what: string): Promise<void>;
  shot(page: Page, name: string): Promise<Buffer>;
  stop(): Promise<void>;
};

/**
 * Builds the console, starts a server with it (SQLite, advisories imported, and `env` as further settings)
 * and a headless chromium.
 */
export async function startConsoleRig(options: { env?: Record<string, string> } = {}): Promise<ConsoleRig> {
  assert.ok(
    existsSync(chromiumPath),
    `no browser at ${chromiumPath}: install Debian's chromium (apt-get install chromium) or set MICROAPP_CHROMIUM`,
  );
  const consoleDir = mkdtempSync(join(tmpdir(), 'microapp-console-'));
  await build({
    root: resolve(import.meta.dirname, '..'),
    configFile: resolve(import.meta.dirname, '../vite.config.ts'),
    logLevel: 'silent',
    build: { outDir: consoleDir, emptyOutDir: true },
  });
  mkdirSync(shots, { recursive: true });
  const server = await startTestServer('sqlite', {
    env: { MICROAPP_CONSOLE_DIR: consoleDir, ...options.env },
  });
  const tokens = await signInEveryone(server);
  const work = mkdtempSync(join(tmpdir(), 'microapp-console-work-'));
  await importAdvisories({ MICROAPP_CONFIG_DIR: join(work, 'cli'), MICROAPP_SERVER: server.url }, work);
  const browser = await chromium.launch({
    executablePath: chromiumPath,
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

  async function signedIn(email: string) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    await page.goto(`${server.url}/`);
    await page.getByRole('link', { name: 'Sign in with your company account' }).click();
    await page
      .getByRole('button', { name: new RegExp(email.split('@')[0]!, 'i') })
      .first()
      .click();
    await page.getByRole('heading', { level: 1, name: 'Catalog' }).waitFor();
    // From here on, anything the page logs as an error is a defect.
    page.on('console', (m) => m.type() === 'error' && errors.push(`${m.text()} (${m.location().url})`));
    page.on('pageerror', (e) => errors.push(e.message));
    return { context, page, errors };
  }

  async function accessible(page: Page, what: string) {
    // Evaluated through the DevTools protocol: the console's content security policy rightly refuses inline scripts.
    await page.evaluate(axe.source);
    const result = await page.evaluate(() => {
      const g = globalThis as unknown as { axe: typeof axe; document: unknown };
      return g.axe.run(g.document as Parameters<typeof axe.run>[0], {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      });
    });
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(
      bad.map(
        (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
      ),
      [],
      `accessibility violations on ${what}`,
    );
  }

  return {
    server,
    browser,
    tokens,
    dir: work,
    signedIn,
    accessible,
    shot: (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true }),
    async stop() {
      await browser.close();
      await server.stop();
      rmSync(consoleDir, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    },
  };
}
