import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  bankReconciliation,
  call,
  engines,
  lunchPoll,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

for (const engine of engines()) {
  describe(`catalog and approvals (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
    });
    after(() => server.stop());

    test("a high-risk app needs security and compliance review, never its owner's", async () => {
      const reg = await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: bankReconciliation() });
      assert.equal(reg.status, 201, reg.text);
      const app = reg.body.app;
      assert.equal(app.tier, 'high');
      assert.equal(app.state, 'pending_review');
      assert.equal(app.department, 'finance');
      const ids = app.assessment.factors.map((f: { id: string }) => f.id);
      for (const id of ['data-class:pii', 'data-class:financial', 'egress'])
        assert.ok(ids.includes(id), `factor ${id} in ${ids}`);
      for (const f of app.assessment.factors) assert.match(f.explanation, /\w/);
      assert.deepEqual(
        app.approval.missing.map((s: { specialty: string }) => s.specialty),
        ['security', 'compliance'],
      );

      const self = await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
        token: t.alice,
        body: { decision: 'approve' },
      });
      assert.equal(self.status, 403);
      assert.equal(self.headers.get('content-type'), 'application/problem+json; charset=utf-8');

      const bob = await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
        token: t.bob,
        body: { decision: 'approve', comment: 'egress is limited to the bank' },
      });
      assert.equal(bob.status, 200, bob.text);
      assert.equal(bob.body.state, 'pending_review');
      assert.deepEqual(bob.body.approval.missing, [{ specialty: 'compliance' }]);

      const again = await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
      assert.equal(again.status, 409);

      const erin = await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
        token: t.erin,
        body: { decision: 'approve' },
      });
      assert.equal(erin.status, 200, erin.text);
      assert.equal(erin.body.state, 'approved');

      const late = await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
        token: t.erin,
        body: { decision: 'reject', comment: 'changed my mind' },
      });
      assert.equal(late.status, 409, 'an approved app is not waiting for review');
    });

    test('a low-risk app is approved at once, by policy', async () => {
      const reg = await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
      assert.equal(reg.status, 201, reg.text);
      assert.equal(reg.body.app.tier, 'low');
      assert.equal(reg.body.app.state, 'approved');
      const [review] = reg.body.app.approval.reviews;
      assert.equal(review.decision, 'auto_approve');
      assert.match(review.reviewer, /^policy:/);
    });

    test('re-registering: unchanged is a no-op; a higher tier goes back to review', async () => {
      const same = await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
      assert.equal(same.status, 200);
      assert.equal(same.body.outcome, 'unchanged');
      assert.equal(same.body.app.revision, 1);

      const raised = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({
          dataClasses: ['internal', 'confidential'],
          integrations: { egress: ['api.weather.example.com'] },
        }),
      });
      assert.equal(raised.status, 200, raised.text);
      assert.equal(raised.body.app.tier, 'medium');
      assert.equal(raised.body.app.state, 'pending_review');
      assert.equal(raised.body.reReview, true);
      assert.equal(raised.body.app.revision, 2);

      const bob = await call(server, 'POST', '/api/v1/apps/team-lunch-poll/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
      assert.equal(bob.body.state, 'approved', 'medium needs one reviewer');

      // Only the wording changed: the approval carries over.
      const reworded = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({
          purpose: 'Let the whole team vote on Friday lunch',
          dataClasses: ['internal', 'confidential'],
          integrations: { egress: ['api.weather.example.com'] },
        }),
      });
      assert.equal(reworded.body.app.state, 'approved');
      assert.equal(reworded.body.reReview, false);
    });

    test('reject needs a reason; request-changes sends it back to the owner until re-registered', async () => {
      const m = bankReconciliation({ name: 'payroll-export', dataClasses: ['pii'] });
      assert.equal((await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: m })).status, 201);
      const noReason = await call(server, 'POST', '/api/v1/apps/payroll-export/reviews', {
        token: t.bob,
        body: { decision: 'reject' },
      });
      assert.equal(noReason.status, 400);
      assert.match(noReason.body.detail, /reason/);
      const changes = await call(server, 'POST', '/api/v1/apps/payroll-export/reviews', {
        token: t.erin,
        body: { decision: 'request_changes', comment: 'say which fields are masked' },
      });
      assert.equal(changes.body.state, 'changes_requested');
      const resubmitted = await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: m });
      assert.equal(resubmitted.body.app.state, 'pending_review');
      assert.equal(resubmitted.body.app.revision, 2);
      const reject = await call(server, 'POST', '/api/v1/apps/payroll-export/reviews', {
        token: t.bob,
        body: { decision: 'reject', comment: 'exports all salaries to a vendor' },
      });
      assert.equal(reject.body.state, 'rejected');
    });

    test("creators cannot register for someone else, nor take another team's name", async () => {
      const forBob = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: lunchPoll({ name: 'for-bob', owner: 'bob@example.com' }),
      });
      assert.equal(forBob.status, 403);
      const steal = await call(server, 'POST', '/api/v1/apps', {
        token: t.frank,
        body: bankReconciliation({ owner: 'frank@example.com', dataClasses: ['public'] }),
      });
      assert.equal(steal.status, 409);
      const reviewerRegisters = await call(server, 'POST', '/api/v1/apps', {
        token: t.bob,
        body: lunchPoll({ name: 'bobs-app', owner: 'bob@example.com' }),
      });
      assert.equal(reviewerRegisters.status, 403);
      const adminFor = await call(server, 'POST', '/api/v1/apps', {
        token: t.carol,
        body: lunchPoll({ name: 'admin-made', owner: 'frank@example.com' }),
      });
      assert.equal(adminFor.status, 201, adminFor.text);
      assert.equal(adminFor.body.app.department, 'marketing', 'department of the owner, known from sign-in');
    });

    test("another department's creator sees neither the app nor its name in lists", async () => {
      const hidden = await call(server, 'GET', '/api/v1/apps/bank-reconciliation', { token: t.frank });
      assert.equal(hidden.status, 404);
      const list = await call(server, 'GET', '/api/v1/apps', { token: t.frank });
      const names = list.body.items.map((a: { name: string }) => a.name);
      assert.ok(!names.includes('bank-reconciliation'));
      assert.ok(names.includes('admin-made'), 'their own app');
      const sameDept = await call(server, 'GET', '/api/v1/apps/bank-reconciliation', { token: t.dave });
      assert.equal(sameDept.status, 200);
    });

    test('list filters and cursor pagination', async () => {
      const high = await call(server, 'GET', '/api/v1/apps?tier=high', { token: t.ivan });
      assert.deepEqual(high.body.items.map((a: { name: string }) => a.name).sort(), [
        'bank-reconciliation',
        'payroll-export',
      ]);
      const pii = await call(server, 'GET', '/api/v1/apps?dataClass=pii&state=approved', { token: t.ivan });
      assert.deepEqual(
        pii.body.items.map((a: { name: string }) => a.name),
        ['bank-reconciliation'],
      );
      const search = await call(server, 'GET', '/api/v1/apps?q=LUNCH', { token: t.ivan });
      assert.deepEqual(
        search.body.items.map((a: { name: string }) => a.name),
        ['admin-made', 'team-lunch-poll'],
      );
      const percent = await call(server, 'GET', '/api/v1/apps?q=%25', { token: t.ivan });
      assert.deepEqual(percent.body.items, [], 'LIKE wildcards in a search are literal');
      const byOwner = await call(server, 'GET', '/api/v1/apps?owner=alice@example.com&department=finance', {
        token: t.carol,
      });
      assert.equal(byOwner.body.items.length, 2);

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: any = await call(
          server,
          'GET',
          `/api/v1/apps?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
          { token: t.carol },
        );
        assert.ok(page.body.items.length <= 2);
        seen.push(...page.body.items.map((a: { name: string }) => a.name));
        cursor = page.body.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, [...seen].sort());
      assert.equal(new Set(seen).size, seen.length);
      assert.equal(seen.length, 4);
      const bad = await call(server, 'GET', '/api/v1/apps?cursor=!!!', { token: t.carol });
      assert.equal(bad.status, 400);
    });

    test('the approval queue shows reviewers what they can review', async () => {
      await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: bankReconciliation({ name: 'kyc-check' }),
      });
      const bobQueue = await call(server, 'GET', '/api/v1/approvals?mine=true', { token: t.bob });
      assert.deepEqual(
        bobQueue.body.items.map((a: { name: string }) => a.name),
        ['kyc-check'],
      );
      await call(server, 'POST', '/api/v1/apps/kyc-check/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
      const after = await call(server, 'GET', '/api/v1/approvals?mine=true', { token: t.bob });
      assert.deepEqual(after.body.items, []);
      const erinQueue = await call(server, 'GET', '/api/v1/approvals?mine=true', { token: t.erin });
      assert.deepEqual(
        erinQueue.body.items.map((a: { name: string }) => a.name),
        ['kyc-check'],
      );
    });
  });
}
