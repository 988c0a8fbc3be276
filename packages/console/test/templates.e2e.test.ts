import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { lockAgainst, packClosure, startRegistry } from '../../cli/test/npm-registry.ts';
import { call, companyCa, type TestServer } from '../../server/test/harness.ts';
import { type ConsoleRig, startConsoleRig } from './console-harness.ts';

/**
 * Every vetted template, as a business user meets it: chosen in the console's wizard, registered with the
 * answers the wizard offers, approved by the reviewers its tier asks for, deployed with the app page's
 * Deploy (a change request, checked and merged), and used on its live page through the gateway. The form
 * template is console.e2e's first test. The platform runs as a company runs it: its templates are the
 * company's copy of the shipped ones (MICROAPP_TEMPLATES_DIR), with the tracker locked against the company's
 * npm mirror (a registry on loopback behind the company CA, serving Fastify and better-sqlite3, a native
 * module, with their whole trees), which builds install from.
 */
describe('every template, from the wizard to its live page', () => {
  let rig: ConsoleRig;
  let server: TestServer;
  let ledger: Server;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  const seen: { path: string; auth: string | undefined }[] = [];
  const canary = 'ledger-read-credential-5d1e';

  before(async () => {
    // The company system behind the connector: a stand-in on loopback, which `--dev` pins the name to.
    ledger = createServer((req, res) => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          entries: [{ id: 'L-77', date: '2026-11-30', amount: 99.5, iban: 'DE89370400440532013000' }],
        }),
      );
    });
    await new Promise<void>((r) => ledger.listen(0, '127.0.0.1', r));
    // The company's npm mirror and its copy of the templates, the tracker locked against that mirror.
    dir = mkdtempSync(join(tmpdir(), 'microapp-company-templates-'));
    const pki = companyCa(dir);
    registry = await startRegistry(await packClosure(['fastify', 'better-sqlite3']), {
      tls: { key: pki.key, cert: pki.cert },
      urlHost: 'localhost',
    });
    const templates = join(dir, 'templates');
    cpSync(resolve(import.meta.dirname, '../../../templates'), templates, { recursive: true });
    const tracker = join(templates, 'tracker');
    const pkg = readFileSync(join(tracker, 'package.json'), 'utf8');
    writeFileSync(join(tracker, 'package.json'), pkg.replace('"{{name}}"', '"tracker"'));
    const locked = await lockAgainst(tracker, registry.url, pki.ca);
    assert.equal(locked.code, 0, locked.out);
    unlinkSync(join(tracker, '.npmrc'));
    writeFileSync(join(tracker, 'package.json'), pkg);
    const lock = readFileSync(join(tracker, 'package-lock.json'), 'utf8');
    writeFileSync(
      join(tracker, 'package-lock.json'),
      lock.replaceAll('"name": "tracker"', '"name": "{{name}}"'),
    );
    rig = await startConsoleRig({
      env: {
        MICROAPP_DEV_EGRESS_HOSTS: `ledger.corp.example.com=127.0.0.1:${(ledger.address() as AddressInfo).port}`,
        MICROAPP_TEMPLATES_DIR: templates,
        MICROAPP_NPM_REGISTRY: `${registry.url}/`,
        MICROAPP_NPM_CA_FILE: pki.ca,
      },
    });
    server = rig.server;
    // A platform admin defined the company's ledger connector (the admin page's own test is console.e2e).
    const defined = await call(server, 'PUT', '/api/v1/connectors/ledger-api', {
      token: rig.tokens.carol,
      body: {
        baseUrl: 'http://ledger.corp.example.com/api',
        credential: canary,
        methods: ['GET'],
        paths: ['/entries'],
        dataClasses: ['internal'],
      },
    });
    assert.equal(defined.status, 200, defined.text);
  });
  after(async () => {
    await rig?.stop();
    ledger?.close();
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Alice answers the wizard for `title`, keeping what it offers for the template (the data its code handles,
   * the connectors it calls); the reviewers her app's tier asks for approve it; she deploys it from its
   * page, a reviewer approving the change when the tier asks; and she opens it. Returns her page on the app.
   */
  async function fromTheWizard(title: RegExp, name: string, purpose: string, expect: { tier: string }) {
    const { context, page, errors } = await rig.signedIn('alice@example.com');
    await page.getByRole('link', { name: 'New app' }).click();
    await page.getByRole('radio', { name: title }).check();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('textbox', { name: 'What should the app be called?' }).fill(name);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('textbox', { name: 'What is it for?' }).fill(purpose);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByLabel('About how many people, at most?').fill('25');
    // Who uses it, the data, the connections and the lifetime: as the wizard offers them for the template.
    for (let i = 0; i < 4; i++) await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: 'Check your answers' }).waitFor();
    await page.getByRole('button', { name: 'Register the app' }).click();
    await page.getByRole('heading', { level: 1, name }).waitFor();

    const registered = await call(server, 'GET', `/api/v1/apps/${name}`, { token: rig.tokens.alice });
    assert.equal(registered.body.tier, expect.tier, registered.text);
    for (const reviewer of [rig.tokens.bob, rig.tokens.erin]) {
      const now = await call(server, 'GET', `/api/v1/apps/${name}`, { token: rig.tokens.alice });
      if (now.body.state === 'approved') break;
      const review = await call(server, 'POST', `/api/v1/apps/${name}/reviews`, {
        token: reviewer,
        body: { decision: 'approve' },
      });
      assert.equal(review.status, 200, review.text);
    }

    await page.reload();
    await page.getByRole('button', { name: `Deploy ${name}` }).click();
    const status = page.getByTestId('change-status');
    if (expect.tier !== 'low') {
      // The change's checks pass, then it waits for a reviewer, who approves the commit they read.
      await status.getByText(/passed its checks and waits for/).waitFor({ timeout: 300_000 });
      for (const reviewer of [rig.tokens.bob, rig.tokens.erin]) {
        const change = await call(server, 'GET', `/api/v1/apps/${name}/changes/1`, { token: reviewer });
        if (change.body.state !== 'open' || change.body.reviews.missing.length === 0) break;
        const approved = await call(server, 'POST', `/api/v1/apps/${name}/changes/1/reviews`, {
          token: reviewer,
          body: { decision: 'approved', head: change.body.head },
        });
        assert.equal(approved.status, 200, approved.text);
      }
    }
    await page
      .getByTestId('build-progress')
      .getByText(/Done: version 0\.1\.0 is running/)
      .waitFor({ timeout: 300_000 })
      .catch(async (e: Error) => {
        // What the owner reads when it does not go live (a failed check, a step's error) is the diagnosis.
        const said = await page.getByRole('region', { name: 'Build and deploy' }).textContent();
        throw new Error(`${name} did not go live: ${said}\n${e.message}`);
      });
    await rig.shot(page, `templates-${name}-deployed`);
    await page.getByRole('link', { name: `Open ${name}` }).click();
    await page.waitForURL((u) => u.hostname === `${name}.apps.localhost`);
    return { context, page, errors };
  }

  const phoneFits = async (page: Page) => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
    assert.ok(overflow <= 0, `${page.url()} is ${overflow}px wider than a phone`);
  };

  test('dashboard: its sample figures ship with the code and are drawn', async () => {
    const { context, page } = await fromTheWizard(
      /Dashboard/,
      'team-figures',
      'Show the monthly sales figures of the finance team as charts',
      { tier: 'low' },
    );
    await page.locator('svg[aria-label="Monthly figures"]').waitFor();
    await phoneFits(page);
    await context.close();
  });

  test('finance-reconciliation: the wizard declares its financial and personal data, two reviewers approve, and a statement is matched against its sample ledger', async () => {
    const { context, page } = await fromTheWizard(
      /Finance reconciliation/,
      'statement-match',
      'Match the monthly bank statement to the ledger for the close',
      { tier: 'high' },
    );
    const app = await call(server, 'GET', '/api/v1/apps/statement-match', { token: rig.tokens.alice });
    assert.deepEqual(app.body.manifest.dataClasses, ['internal', 'financial', 'pii']);
    await page.getByRole('heading', { name: 'Reconcile' }).waitFor();
    await page
      .getByLabel(/Bank statement/)
      .fill('date,amount,description\n2026-11-02,1200.00,INV-2026-0411\n2026-11-09,42.00,Coffee beans');
    await page.getByRole('button', { name: 'Reconcile' }).click();
    await page.getByRole('heading', { name: '1 matched' }).waitFor();
    await page.getByRole('cell', { name: 'Coffee beans' }).waitFor();
    await phoneFits(page);
    await context.close();
  });

  test('connector: the wizard ticks the connector its code calls, and the entries come through the broker, which adds the credential the app never had', async () => {
    const { context, page } = await fromTheWizard(
      /Connector/,
      'ledger-latest',
      'Show the latest ledger entries to the finance team',
      { tier: 'medium' },
    );
    const app = await call(server, 'GET', '/api/v1/apps/ledger-latest', { token: rig.tokens.alice });
    assert.deepEqual(app.body.manifest.integrations, { connectors: ['ledger-api'] });
    await page.getByRole('heading', { name: 'Latest ledger entries' }).waitFor();
    assert.deepEqual(await page.getByRole('row').nth(1).getByRole('cell').allTextContents(), [
      'L-77',
      '2026-11-30',
      '99.50',
    ]);
    assert.doesNotMatch(await page.content(), /DE89/, 'fields the page does not show are dropped');
    assert.deepEqual(seen.at(-1), { path: '/api/entries?limit=20', auth: `Bearer ${canary}` });
    await phoneFits(page);
    await context.close();
  });

  test('tracker: built with its npm dependencies and a native module, it keeps an item in SQLite', async () => {
    const { context, page } = await fromTheWizard(
      /Tracker/,
      'close-points',
      'Keep the open points of the monthly close and who is on them',
      { tier: 'low' },
    );
    await page.getByLabel('New item').fill('Accruals for November');
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByRole('cell', { name: /Accruals for November/ }).waitFor();
    await page.reload();
    await page.getByRole('cell', { name: /Accruals for November/ }).waitFor();
    await phoneFits(page);
    await context.close();
  });
});
