import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dayMs } from '../src/clock.ts';
import {
  call,
  engines,
  lunchPoll,
  signInEveryone,
  startTestServer,
  type TestServer,
  tokenFor,
} from './harness.ts';

// The catalog keeps what a scorecard is computed from, and reuses a card until the clock changes what it
// says (lifecycle/scorecard.ts). A card kept past that moment would show an owner as active after 90 days
// without a sign-in, or an expiry further off than it is: both checks must follow the platform's clock.

for (const engine of engines()) {
  describe(`a kept scorecard follows the clock (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      const r = await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
      assert.equal(r.status, 201, r.text);
    });
    after(() => server.stop());

    const card = async () => {
      const res = await call(server, 'GET', '/api/v1/apps?q=team-lunch-poll', { token: t.dave });
      assert.equal(res.status, 200, res.text);
      const checks = res.body.items[0].scorecard.checks as { id: string; ok: boolean; detail: string }[];
      const byId = Object.fromEntries(checks.map((c) => [c.id, c]));
      const days = Number(/\((-?\d+) days\)/.exec(byId.expiry_ahead!.detail)?.[1]);
      return { ownerActive: byId.owner_active!.ok, days };
    };

    test('days left count down and an owner who stopped signing in goes inactive, on kept inputs', async () => {
      // Dave signs in again half a day after registering, so that his sign-in turns 90 days old at another
      // time of day than the app's days left drop: each of the two moments must show by itself.
      server.internals.clock.advance(dayMs / 2);
      await tokenFor(server, 'dave@example.com');
      const first = await card();
      assert.equal(first.ownerActive, true, 'dave just signed in');
      assert.ok(Number.isInteger(first.days), 'the expiry check counts the days left');
      assert.deepEqual(await card(), first, 'read again, from what the catalog kept');
      server.internals.clock.advance(dayMs);
      assert.deepEqual(await card(), { ownerActive: true, days: first.days - 1 });
      // A minute before his sign-in is 90 days old, and a minute after: the days left stay the same.
      server.internals.clock.advance(89 * dayMs - 60_000);
      assert.deepEqual(await card(), { ownerActive: true, days: first.days - 90 });
      server.internals.clock.advance(120_000);
      assert.deepEqual(await card(), { ownerActive: false, days: first.days - 90 });
    });
  });
}
