import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, engines, lunchPoll, signInEveryone, startTestServer, type TestServer } from './harness.ts';

const day = 86_400_000;

for (const engine of engines()) {
  describe(`usage summaries (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      const registered = await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
      assert.equal(registered.status, 201, registered.text);
      const shown = await call(server, 'GET', '/api/v1/apps/team-lunch-poll', { token: t.dave });
      const appId = shown.body.id as string;
      assert.match(appId, /^app_/);
      // What the gateway records for each forwarded request; here with chosen times and statuses.
      const at = (daysAgo: number) => new Date(Date.now() - daysAgo * day);
      const rows = [
        { user: 'dave@example.com', status: 200, at: at(40), version: '0.1.0', bytesOut: 1000 },
        { user: 'dave@example.com', status: 200, at: at(2), version: '0.2.0', bytesOut: 100 },
        { user: 'erin@example.com', status: 500, at: at(2), version: '0.2.0', bytesOut: 20 },
        { user: 'dave@example.com', status: 204, at: at(0), version: '0.2.0', bytesOut: 0 },
      ];
      for (const r of rows)
        server.internals.usage.record({
          appId,
          app: 'team-lunch-poll',
          version: r.version,
          user: r.user,
          method: 'GET',
          status: r.status,
          latencyMs: 10,
          bytesIn: 5,
          bytesOut: r.bytesOut,
          at: r.at,
        });
    });
    after(() => server.stop());

    test('counts requests, people and server errors inside the window; last use is all-time', async () => {
      const res = await call(server, 'GET', '/api/v1/apps/team-lunch-poll/usage', { token: t.dave });
      assert.equal(res.status, 200, res.text);
      const u = res.body;
      assert.equal(u.days, 30);
      assert.equal(u.requests, 3, 'the request 40 days ago is outside the default 30 days');
      assert.equal(u.users, 2);
      assert.equal(u.serverErrors, 1);
      assert.equal(u.bytesIn, 15);
      assert.equal(u.bytesOut, 120);
      assert.equal(u.averageLatencyMs, 10);
      assert.deepEqual(
        u.byDay.map(
          (d: { requests: number; users: number; serverErrors: number; averageLatencyMs: number }) => [
            d.requests,
            d.users,
            d.serverErrors,
            d.averageLatencyMs,
          ],
        ),
        [
          [2, 2, 1, 10],
          [1, 1, 0, 10],
        ],
      );
      // What went out through the egress broker, by day, beside the requests.
      const app = (await call(server, 'GET', '/api/v1/apps/team-lunch-poll', { token: t.dave })).body;
      const db = server.rawDb();
      try {
        await db.kysely
          .insertInto('app_egress')
          .values({
            id: 'egr_usage_test',
            app_id: app.id,
            host: 'api.bank.example.com',
            method: 'GET',
            decision: 'allowed',
            status: 200,
            bytes_out: 300,
            bytes_in: 700,
            at: new Date(Date.now() - 2 * day).toISOString(),
          })
          .execute();
      } finally {
        await db.destroy();
      }
      const withEgress = (await call(server, 'GET', '/api/v1/apps/team-lunch-poll/usage', { token: t.dave }))
        .body;
      assert.equal(withEgress.egressBytes, 1000);
      assert.deepEqual(
        withEgress.byDay.map((d: { egressBytes: number }) => d.egressBytes),
        [1000, 0],
      );
      assert.deepEqual(u.byVersion, [{ version: '0.2.0', requests: 3 }]);
      assert.ok(Date.now() - Date.parse(u.lastUsedAt) < 60_000);

      const longer = await call(server, 'GET', '/api/v1/apps/team-lunch-poll/usage?days=60', {
        token: t.erin,
      });
      assert.equal(longer.body.requests, 4);
      assert.equal(longer.body.byVersion.length, 2);
    });

    test('an app nobody used has no last use; other departments and bad windows are refused', async () => {
      await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll({ name: 'quiet-app' }) });
      const quiet = await call(server, 'GET', '/api/v1/apps/quiet-app/usage', { token: t.dave });
      assert.equal(quiet.status, 200, quiet.text);
      assert.equal(quiet.body.lastUsedAt, null);
      assert.equal(quiet.body.requests, 0);
      assert.equal(quiet.body.averageLatencyMs, null);
      const other = await call(server, 'GET', '/api/v1/apps/team-lunch-poll/usage', { token: t.frank });
      assert.equal(other.status, 404);
      for (const bad of ['0', '367', 'x', '1.5'])
        assert.equal(
          (await call(server, 'GET', `/api/v1/apps/team-lunch-poll/usage?days=${bad}`, { token: t.dave }))
            .status,
          400,
          bad,
        );
      assert.equal(
        (await call(server, 'GET', '/api/v1/apps/team-lunch-poll/usage?days=7&extra=1', { token: t.dave }))
          .status,
        400,
      );
    });
  });
}

for (const engine of engines()) {
  describe(`error-budget alerts (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    const ids: Record<string, string> = {};
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      for (const name of [
        'failing-poll',
        'healthy-poll',
        'quiet-poll',
        'slow-poll',
        'steady-poll',
        'leaky-poll',
      ]) {
        const r = await call(server, 'POST', '/api/v1/apps', {
          token: t.dave,
          body: lunchPoll({ name }),
        });
        assert.equal(r.status, 201, r.text);
        ids[name] = r.body.app.id;
      }
    });
    after(() => server.stop());

    const traffic = (name: string, requests: number, failing: number, slow = 0) => {
      for (let i = 0; i < requests; i++)
        server.internals.usage.record({
          appId: ids[name]!,
          app: name,
          version: '1.0.0',
          user: 'erin@example.com',
          method: 'GET',
          status: i < failing ? 502 : 200,
          latencyMs: i < slow ? 3000 : 4,
          bytesIn: 0,
          bytesOut: 10,
          at: server.internals.clock.now(),
        });
    };

    test('the owner hears when an app burns its error budget fast, once an hour; small or healthy traffic stays quiet', async () => {
      traffic('failing-poll', 60, 30); // 50% errors: 50x the low tier's 1% budget
      traffic('healthy-poll', 200, 1); // 0.5%: within budget
      traffic('quiet-poll', 10, 10); // all failing, but too few requests to judge
      assert.equal(await server.internals.jobs.trigger('slo-alerts'), true);
      const inbox = (await call(server, 'GET', '/api/v1/notifications', { token: t.dave })).body.items as {
        kind: string;
        app: string;
        subject: string;
        action: string;
      }[];
      const alerts = inbox.filter((n) => n.kind === 'slo_burn');
      assert.deepEqual(
        alerts.map((a) => a.app),
        ['failing-poll'],
      );
      assert.match(alerts[0]!.subject, /50% of requests in the last hour/);
      assert.equal(alerts[0]!.action, `${server.url}/apps/failing-poll#roll-back`);
      traffic('failing-poll', 30, 30);
      await server.internals.jobs.trigger('slo-alerts');
      const again = (await call(server, 'GET', '/api/v1/notifications', { token: t.dave })).body.items.filter(
        (n: { kind: string }) => n.kind === 'slo_burn',
      );
      assert.equal(again.length, 1, 'one alert per app per hour');
      // An hour later the old errors are outside both windows.
      server.internals.clock.advance(61 * 60_000);
      await server.internals.jobs.trigger('slo-alerts');
      const later = (await call(server, 'GET', '/api/v1/notifications', { token: t.dave })).body.items.filter(
        (n: { kind: string }) => n.kind === 'slo_burn',
      );
      assert.equal(later.length, 1);
    });

    test('the owner hears when the 95th percentile of request time is over the tier’s objective', async () => {
      traffic('slow-poll', 40, 0, 10); // a quarter of the requests take 3 s: p95 is far over 2 s (low tier)
      traffic('healthy-poll', 100, 0, 4); // 4% slow: p95 is within the objective
      await server.internals.jobs.trigger('slo-alerts');
      const slow = (await call(server, 'GET', '/api/v1/notifications', { token: t.dave })).body.items.filter(
        (n: { kind: string }) => n.kind === 'slo_latency',
      );
      assert.deepEqual(
        slow.map((n: { app: string }) => n.app),
        ['slow-poll'],
      );
      assert.match(slow[0].subject, /25% of requests took over 2000 ms/);
    });

    test('slower burns: six hours at 6x is a page, three days at 1x a ticket; only the fastest that holds is sent', async () => {
      traffic('steady-poll', 100, 10); // 10% errors: 10x the budget; under the hour's 14.4x
      traffic('leaky-poll', 200, 3); // 1.5%: 1.5x, only the three-day rule
      await server.internals.jobs.trigger('slo-alerts');
      const inbox = (await call(server, 'GET', '/api/v1/notifications', { token: t.dave })).body.items as {
        kind: string;
        app: string;
        subject: string;
        action: string;
      }[];
      const of = (app: string) => inbox.filter((n) => n.app === app && n.kind.startsWith('slo_'));
      assert.deepEqual(
        of('steady-poll').map((n) => [n.kind, n.subject, n.action]),
        [
          [
            'slo_burn',
            'steady-poll is failing: 10% of requests in the last 6 hours',
            `${server.url}/apps/steady-poll#roll-back`,
          ],
        ],
      );
      assert.deepEqual(
        of('leaky-poll').map((n) => [n.kind, n.subject, n.action]),
        [
          [
            'slo_budget',
            'leaky-poll is using up its error budget: 1.5% of requests failed in the last 3 days',
            `${server.url}/apps/leaky-poll#logs`,
          ],
        ],
      );
      // Seven hours on, the six-hour page is over (its short window is quiet); the three-day one was sent today.
      server.internals.clock.advance(7 * 60 * 60_000);
      await server.internals.jobs.trigger('slo-alerts');
      const later = (await call(server, 'GET', '/api/v1/notifications', { token: t.dave })).body.items as {
        app: string;
        kind: string;
      }[];
      assert.equal(later.filter((n) => n.app === 'steady-poll' && n.kind.startsWith('slo_')).length, 1);
      assert.equal(later.filter((n) => n.app === 'leaky-poll').length, 1);
    });

    test('request rows older than the retention period are deleted; the last use of each app is kept', async () => {
      const before = await call(server, 'GET', '/api/v1/apps/failing-poll/usage?days=366', { token: t.dave });
      assert.ok(before.body.requests > 0);
      server.internals.clock.advance(401 * day);
      assert.equal(await server.internals.jobs.trigger('usage-retention'), true);
      const after = await call(server, 'GET', '/api/v1/apps/failing-poll/usage?days=366', { token: t.dave });
      assert.equal(after.body.requests, 0);
      assert.equal(
        after.body.lastUsedAt,
        before.body.lastUsedAt,
        'inactivity still knows when it was last used',
      );
    });
  });
}
