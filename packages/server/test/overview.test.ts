import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

/** The admins' and auditors' overview: its figures are the catalog's, and only they may read it. */
for (const engine of engines()) {
  describe(`the platform overview (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
    });
    after(() => server.stop());

    test('counts by tier and state, reviews waiting, apps expiring within 30 days; creators are refused', async () => {
      const inTenDays = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
      const made = [
        lunchPoll({ name: 'lunch-one', owner: people.dave }),
        lunchPoll({ name: 'lunch-two', owner: people.dave, lifetime: { expires: inTenDays } }),
        lunchPoll({ name: 'claims', owner: people.alice, dataClasses: ['internal', 'confidential'] }),
      ];
      for (const body of made) {
        const r = await call(server, 'POST', '/api/v1/apps', {
          token: body.owner === people.dave ? t.dave : t.alice,
          body,
        });
        assert.equal(r.status, 201, r.text);
      }
      const o = await call(server, 'GET', '/api/v1/overview', { token: t.ivan });
      assert.equal(o.status, 200, o.text);
      assert.equal(o.body.apps.total, 3);
      assert.deepEqual(o.body.apps.byTier, { low: 2, medium: 1 });
      assert.deepEqual(o.body.apps.byState, { approved: 2, pending_review: 1 });
      assert.equal(o.body.apps.byStage.active, 3);
      assert.equal(o.body.apps.running, 0);
      assert.equal(o.body.reviewsWaiting.count, 1);
      assert.equal(o.body.reviewsWaiting.oldest[0].app, 'claims');
      assert.deepEqual(
        o.body.expiringSoon.apps.map((a: { app: string }) => a.app),
        ['lunch-two'],
      );
      assert.ok(o.body.expiringSoon.apps[0].days <= 11);
      assert.equal(o.body.registrations.length, 12);
      assert.equal(o.body.registrations.at(-1).count, 3, 'this week’s registrations');
      assert.equal((await call(server, 'GET', '/api/v1/overview', { token: t.alice })).status, 403);
      assert.equal((await call(server, 'GET', '/api/v1/overview', { token: t.carol })).status, 200);
    });
  });
}
