import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  bankReconciliation,
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

/** The endpoints the console's wizard and reviews inbox stand on, and how the console's files are served. */
for (const engine of engines()) {
  describe(`console API (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'microapp-console-files-'));
      mkdirSync(join(dir, 'assets'));
      writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title><div id="root"></div>');
      writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
      writeFileSync(join(dir, 'secret.txt'), 'outside assets');
      server = await startTestServer(engine, { env: { MICROAPP_CONSOLE_DIR: dir } });
      t = await signInEveryone(server);
    });
    after(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const counts = async () => {
      const db = server.rawDb();
      try {
        const apps = await db.kysely
          .selectFrom('apps')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirst();
        const events = await db.kysely
          .selectFrom('audit_events')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirst();
        return { apps: Number(apps?.n), events: Number(events?.n) };
      } finally {
        await db.destroy();
      }
    };

    test('an assessment scores a manifest with its reasons and reviews, and writes nothing', async () => {
      const before = await counts();
      const res = await call(server, 'POST', '/api/v1/assessments', {
        token: t.alice,
        body: bankReconciliation(),
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.tier, 'high');
      assert.ok(
        res.body.factors.some((f: { id: string }) => f.id === 'data-class:pii'),
        res.text,
      );
      assert.deepEqual(res.body.requiredReviews, [{ specialty: 'security' }, { specialty: 'compliance' }]);
      assert.match(res.body.meaning, /security reviewer and a compliance reviewer/);
      const low = await call(server, 'POST', '/api/v1/assessments', {
        token: t.alice,
        body: lunchPoll({ owner: people.alice }),
      });
      assert.equal(low.body.tier, 'low');
      assert.match(low.body.meaning, /approved automatically/);
      // How long it runs before a renewal, as the lifecycle will apply it: the tier's limit, or its own date.
      assert.equal(low.body.lifetimeDays, 90, 'a low-risk app without a date: 90 days');
      const { lifetime: _l, ...undated } = bankReconciliation();
      const high = await call(server, 'POST', '/api/v1/assessments', { token: t.alice, body: undated });
      assert.equal(high.body.tier, 'high');
      assert.equal(
        high.body.lifetimeDays,
        365,
        'a high-risk app without a date: 365 days, not "90 by default"',
      );
      const soon = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
      const dated = await call(server, 'POST', '/api/v1/assessments', {
        token: t.alice,
        body: bankReconciliation({ lifetime: { expires: soon } }),
      });
      assert.ok(
        dated.body.lifetimeDays >= 10 && dated.body.lifetimeDays <= 11,
        String(dated.body.lifetimeDays),
      );
      assert.deepEqual(await counts(), before, 'no app and no audit event was written');
    });

    test('the browser session probe answers signed out as 200, and signed in as the session does', async () => {
      const out = await call(server, 'GET', '/api/v1/auth/browser-session');
      assert.equal(out.status, 200);
      assert.deepEqual(out.body, { signedIn: false });
      const signedIn = await call(server, 'GET', '/api/v1/auth/browser-session', { token: t.alice });
      const session = await call(server, 'GET', '/api/v1/auth/session', { token: t.alice });
      assert.deepEqual(signedIn.body, { signedIn: true, ...session.body });
      const forged = await call(server, 'GET', '/api/v1/auth/browser-session', {
        headers: { cookie: 'microapp_session=forged' },
      });
      assert.deepEqual(forged.body, { signedIn: false }, 'a cookie that is no session signs nobody in');
    });

    test('a bad manifest is refused with the field named; anonymous callers are refused', async () => {
      const bad = await call(server, 'POST', '/api/v1/assessments', {
        token: t.alice,
        body: { ...bankReconciliation(), dataClasses: ['top-secret'] },
      });
      assert.equal(bad.status, 400);
      assert.match(bad.body.detail, /dataClasses/);
      const extra = await call(server, 'POST', '/api/v1/assessments', {
        token: t.alice,
        body: { ...bankReconciliation(), shell: '$(reboot)' },
      });
      assert.equal(extra.status, 400);
      const anonymous = await call(server, 'POST', '/api/v1/assessments', { body: bankReconciliation() });
      assert.equal(anonymous.status, 401);
    });

    test('revisions list every registration newest first; other departments get 404', async () => {
      await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: bankReconciliation() });
      await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
      await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: bankReconciliation({ dataClasses: ['internal', 'financial'] }),
      });
      const res = await call(server, 'GET', '/api/v1/apps/bank-reconciliation/revisions', { token: t.bob });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(
        res.body.items.map((r: { revision: number }) => r.revision),
        [2, 1],
      );
      assert.deepEqual(res.body.items[1].inputs.dataClasses, ['financial', 'internal', 'pii']);
      assert.deepEqual(res.body.items[0].inputs.dataClasses, ['financial', 'internal']);
      assert.deepEqual(
        res.body.items[1].reviews.map((r: { reviewer: string; decision: string }) => [
          r.reviewer,
          r.decision,
        ]),
        [['bob@example.com', 'approve']],
      );
      // One of the two reviews a high tier needs: revision 1 was never approved, and says so.
      assert.deepEqual(
        res.body.items.map((r: { approved: boolean }) => r.approved),
        [false, false],
      );
      // Each revision keeps the answers it was registered with, not only what the risk rules read.
      assert.equal(res.body.items[1].manifest.purpose, 'Match bank CSVs to ledger entries');
      assert.deepEqual(res.body.items[0].manifest.dataClasses, ['internal', 'financial']);
      for (const reviewer of [t.bob, t.erin])
        await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
          token: reviewer,
          body: { decision: 'approve' },
        });
      // A new purpose only: the approval carries over, and the new revision is approved by it.
      await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: bankReconciliation({
          dataClasses: ['internal', 'financial'],
          purpose: 'Match bank CSV exports to ledger entries every morning',
        }),
      });
      const later = await call(server, 'GET', '/api/v1/apps/bank-reconciliation/revisions', { token: t.bob });
      assert.deepEqual(
        later.body.items.map((r: { revision: number; approved: boolean }) => [r.revision, r.approved]),
        [
          [3, true],
          [2, true],
          [1, false],
        ],
      );
      assert.equal(
        later.body.items[0].manifest.purpose,
        'Match bank CSV exports to ledger entries every morning',
      );
      const frank = await call(server, 'GET', '/api/v1/apps/bank-reconciliation/revisions', {
        token: t.frank,
      });
      assert.equal(frank.status, 404, 'an app in another department does not show, not even that it exists');
    });

    test('policy modules can be read, their tests run and the bundles listed; paths stay inside the policy', async () => {
      const mod = await call(server, 'GET', '/api/v1/policies/source?file=network/network.rego', {
        token: t.frank,
      });
      assert.equal(mod.status, 200, mod.text);
      assert.equal(mod.body.origin, 'builtin');
      assert.match(mod.body.source, /^package microapp\.network/);
      for (const file of ['../../etc/passwd.rego', '/etc/x.rego', 'network/network.txt'])
        assert.equal(
          (
            await call(server, 'GET', `/api/v1/policies/source?file=${encodeURIComponent(file)}`, {
              token: t.frank,
            })
          ).status,
          400,
          file,
        );
      assert.equal(
        (await call(server, 'GET', '/api/v1/policies/source?file=org/nothing.rego', { token: t.frank }))
          .status,
        404,
      );
      const run = await call(server, 'POST', '/api/v1/policies/test', { token: t.frank });
      assert.equal(run.status, 200, run.text);
      assert.ok(run.body.total > 20);
      assert.equal(run.body.passed, run.body.total);
      assert.deepEqual(
        (await call(server, 'GET', '/api/v1/policies/revisions', { token: t.frank })).body.items,
        [],
      );
    });

    test('access checks: for yourself, or for anyone when you review, administer or audit', async () => {
      const mine = await call(server, 'GET', '/api/v1/apps/bank-reconciliation/access', { token: t.alice });
      assert.equal(mine.body.allowed, true, mine.text);
      const other = await call(
        server,
        'GET',
        '/api/v1/apps/bank-reconciliation/access?user=frank@example.com',
        {
          token: t.alice,
        },
      );
      assert.equal(other.status, 403);
      const byReviewer = await call(
        server,
        'GET',
        '/api/v1/apps/bank-reconciliation/access?user=frank@example.com',
        {
          token: t.bob,
        },
      );
      assert.equal(byReviewer.status, 200, byReviewer.text);
      assert.equal(byReviewer.body.allowed, false, 'frank is in marketing');
    });

    test('the templates an app can start from, with versions', async () => {
      const res = await call(server, 'GET', '/api/v1/templates', { token: t.frank });
      assert.deepEqual(
        res.body.items.map((x: { name: string; version: string }) => `${x.name}@${x.version}`),
        ['connector@1.1.0', 'dashboard@1.1.1', 'finance-reconciliation@1.1.0', 'form@1.2.0', 'tracker@1.0.0'],
      );
    });

    test("the console's page is served for its paths, under a strict content security policy", async () => {
      for (const path of ['/', '/apps/bank-reconciliation', '/reviews', '/audit?app=x']) {
        const res = await fetch(server.url + path);
        assert.equal(res.status, 200, path);
        assert.match(res.headers.get('content-type') ?? '', /text\/html/);
        assert.match(await res.text(), /<div id="root">/);
        assert.equal(
          res.headers.get('content-security-policy'),
          "default-src 'self'; frame-ancestors 'none'",
        );
        assert.equal(res.headers.get('x-frame-options'), 'DENY');
      }
      const asset = await fetch(`${server.url}/assets/index-abc123.js`);
      assert.equal(asset.status, 200);
      assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
    });

    test('API and sign-in paths never fall through to the page; files outside assets/ are not served', async () => {
      for (const path of ['/api/v1/nothing', '/api', '/auth/nothing', '/metrics/x']) {
        const res = await fetch(server.url + path);
        assert.equal(res.status, 404, path);
        assert.match(res.headers.get('content-type') ?? '', /problem\+json/, path);
      }
      for (const path of [
        '/assets/..%2fsecret.txt',
        '/assets/%2e%2e%2fsecret.txt',
        '/assets/.hidden',
        '/assets/missing.js',
        '/secret.txt',
      ]) {
        const res = await fetch(server.url + path);
        const body = await res.text();
        assert.ok(!body.includes('outside assets'), `${path} leaked a file: ${res.status}`);
        if (path.startsWith('/assets/')) assert.ok([400, 404].includes(res.status), `${path}: ${res.status}`);
      }
      const post = await fetch(`${server.url}/`, { method: 'POST' });
      assert.equal(post.status, 404);
    });
  });
}

describe('console not built', () => {
  test('the server says how to build it, and the API still works', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'microapp-no-console-'));
    const server = await startTestServer('sqlite', { env: { MICROAPP_CONSOLE_DIR: empty } });
    try {
      const res = await fetch(`${server.url}/`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /npm run build:console/);
      assert.equal((await fetch(`${server.url}/assets/index.js`)).status, 404);
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    } finally {
      await server.stop();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
