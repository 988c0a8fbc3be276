import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, engines, lunchPoll, signInEveryone, startTestServer, type TestServer } from './harness.ts';

for (const engine of engines()) {
  describe(`unusual egress volume alerts (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    const ids = new Map<string, string>();
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      for (const name of ['exporter', 'steady-sender', 'new-small'])
        ids.set(
          name,
          (await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll({ name }) })).body.app
            .id,
        );
      const now = server.internals.clock.now().getTime();
      const rows: Record<string, unknown>[] = [];
      let n = 0;
      const add = (app: string, hoursAgo: number, bytes: number, decision = 'allowed') =>
        rows.push({
          id: `egr_test${String(n++).padStart(16, '0')}`,
          app_id: ids.get(app)!,
          host: 'api.bank.example.com',
          method: 'POST',
          decision,
          status: decision === 'allowed' ? 200 : 403,
          bytes_out: bytes,
          bytes_in: 100,
          at: new Date(now - hoursAgo * 3_600_000).toISOString(),
        });
      for (let h = 2; h <= 168; h++) {
        add('exporter', h, 100_000); // 100 KB an hour, for a week
        add('steady-sender', h, 10_000_000); // 10 MB an hour
      }
      add('exporter', 0.5, 30_000_000); // 30 MB in the last hour: about 300 times its usual (167 h of history over 168)
      add('steady-sender', 0.5, 20_000_000); // twice its usual: normal for it
      add('new-small', 0.5, 2_000_000); // no history, but under 5 MB
      add('new-small', 0.4, 50_000_000, 'denied'); // refused attempts sent nothing
      const db = server.rawDb();
      try {
        for (let i = 0; i < rows.length; i += 200)
          await db.kysely
            .insertInto('app_egress')
            .values(rows.slice(i, i + 200) as never)
            .execute();
      } finally {
        await db.destroy();
      }
    });
    after(() => server.stop());

    test('the owner hears about an unusual export once an hour; usual volumes and refused attempts stay quiet', async () => {
      assert.equal(await server.internals.jobs.trigger('egress-volume-alerts'), true);
      await server.internals.jobs.trigger('egress-volume-alerts');
      const inbox = (await call(server, 'GET', '/api/v1/notifications', { token: t.dave })).body.items as {
        kind: string;
        app: string;
        subject: string;
        action: string;
      }[];
      const alerts = inbox.filter((n) => n.kind === 'egress_volume');
      assert.deepEqual(
        alerts.map((a) => a.app),
        ['exporter'],
      );
      assert.match(alerts[0]!.subject, /exporter sent 28\.6 MB out in the last hour, 302 times its usual/);
      assert.equal(alerts[0]!.action, `${server.url}/apps/exporter#stop`);
    });
  });
}
