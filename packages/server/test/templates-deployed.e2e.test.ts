// Every vetted template without dependencies, built on the platform from its template and deployed, answers
// its first page through the gateway: the ones that read sample data ship it with their code, and the
// connector reaches its company system through the egress broker, which adds the credential. (The tracker,
// with npm dependencies, is cli-template-tracker.e2e.test.ts.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  buildFinished,
  call,
  people,
  type signInEveryone,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

const templates = resolve(import.meta.dirname, '../../../templates');
const versionOf = (name: string) =>
  (JSON.parse(readFileSync(join(templates, name, 'template.json'), 'utf8')) as { version: string }).version;

describe('every template starts once deployed', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let ledger: Server;
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
    ({ server, t, stop } = await startBuildServer({
      MICROAPP_DEV_EGRESS_HOSTS: `ledger.corp.example.com=127.0.0.1:${(ledger.address() as AddressInfo).port}`,
    }));
    const defined = await call(server, 'PUT', '/api/v1/connectors/ledger-api', {
      token: t.carol,
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
    await stop();
    ledger.close();
  });

  /** Registers `name` from `template` (approved by both reviewers when its tier asks), builds it from the template and deploys it. */
  async function deployTemplate(template: string, name: string, manifest: Record<string, unknown>) {
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: {
        name,
        owner: people.alice,
        audience: { department: 'finance', maxUsers: 40 },
        runtime: { kind: 'node', entry: 'server.js' },
        template: { name: template, version: versionOf(template) },
        ...manifest,
      },
    });
    assert.equal(reg.status, 201, reg.text);
    // Each reviewer the tier asks for approves (medium: one; high: a security and a compliance reviewer).
    for (const reviewer of [t.bob, t.erin]) {
      const app = await call(server, 'GET', `/api/v1/apps/${name}`, { token: t.alice });
      if (app.body.state === 'approved') break;
      const review = await call(server, 'POST', `/api/v1/apps/${name}/reviews`, {
        token: reviewer,
        body: { decision: 'approve' },
      });
      assert.equal(review.status, 200, review.text);
    }
    const res = await call(server, 'POST', `/api/v1/apps/${name}/builds`, {
      token: t.alice,
      body: { deploy: true },
    });
    assert.equal(res.status, 202, res.text);
    const build = await buildFinished(server, name, res.body.id, t.alice);
    assert.equal(build.state, 'passed', JSON.stringify(build.steps, null, 2));
    return viaGateway(server, name, '/', { authorization: `Bearer ${t.dave}` });
  }

  test('dashboard: its sample figures ship with the code and are drawn', async () => {
    const page = await deployTemplate('dashboard', 'team-figures', {
      purpose: 'Show monthly figures from a data set as charts for the team',
      dataClasses: ['internal'],
    });
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /<svg[^>]*aria-label="Monthly figures"/);
    assert.match(page.body, /<meta name="viewport" content="width=device-width, initial-scale=1">/, 'phones');
  });

  test('finance-reconciliation: its sample ledger ships with the code, and the form is served', async () => {
    const page = await deployTemplate('finance-reconciliation', 'statement-match', {
      purpose: 'Match bank statement lines to ledger entries and list what does not match',
      dataClasses: ['internal', 'financial', 'pii'],
      lifetime: { expires: '2027-03-31' },
    });
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /<h1>Reconcile<\/h1>/);
  });

  test('connector: the entries come through the broker, which added the credential the app never had', async () => {
    const page = await deployTemplate('connector', 'ledger-latest', {
      purpose: 'Show the latest records from a company system through a brokered connector',
      dataClasses: ['internal'],
      integrations: { connectors: ['ledger-api'] },
    });
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /<td>L-77<\/td><td>2026-11-30<\/td><td>99\.50<\/td>/);
    assert.doesNotMatch(page.body, /DE89/, 'fields the page does not show are dropped');
    assert.deepEqual(seen.at(-1), { path: '/api/entries?limit=20', auth: `Bearer ${canary}` });
  });
});
