import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
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
  describe(`audit trail (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: bankReconciliation() });
      await call(server, 'POST', '/api/v1/apps/bank-reconciliation/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
      await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
    });
    after(() => server.stop());

    test('every governed change is in the trail, with actor, request id and source', async () => {
      const { body } = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
      const actions = body.items.map((e: { action: string }) => e.action);
      for (const a of [
        'auth.login',
        'token.issued',
        'app.registered',
        'risk.assessed',
        'approval.approved',
        'approval.auto_approved',
      ])
        assert.ok(actions.includes(a), `${a} in ${actions}`);
      const approved = body.items.find((e: { action: string }) => e.action === 'approval.approved');
      assert.equal(approved.actor, 'bob@example.com');
      assert.match(approved.requestId, /^req_/);
      assert.equal(approved.sourceIp, '127.0.0.1');
      assert.equal(approved.target, 'bank-reconciliation');
    });

    test('no audit entry holds a token', async () => {
      const raw = server.rawDb();
      try {
        const rows = await raw.kysely.selectFrom('audit_events').selectAll().execute();
        const all = JSON.stringify(rows);
        for (const token of Object.values(t))
          assert.ok(!all.includes(token), 'a token value leaked into the audit table');
        assert.ok(!all.includes('mat_'), 'no token-like value in the audit table');
      } finally {
        await raw.destroy();
      }
    });

    test('the database itself refuses UPDATE and DELETE on the audit table', async () => {
      const raw = server.rawDb();
      try {
        await assert.rejects(
          raw.kysely.updateTable('audit_events').set({ actor: 'mallory' }).where('seq', '=', 1).execute(),
          /append-only/,
        );
        await assert.rejects(
          raw.kysely.deleteFrom('audit_events').where('seq', '=', 2).execute(),
          /append-only/,
        );
        if (engine === 'postgres')
          await assert.rejects(sql`truncate audit_events`.execute(raw.kysely), /append-only/);
      } finally {
        await raw.destroy();
      }
    });

    test("creators read only their own apps' events; the chain check is for auditors and admins", async () => {
      const mine = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.dave });
      assert.ok(mine.body.items.length > 0);
      for (const e of mine.body.items) assert.equal(e.target, 'team-lunch-poll');
      assert.equal((await call(server, 'GET', '/api/v1/audit/verify', { token: t.dave })).status, 403);
      const page = await call(server, 'GET', '/api/v1/audit/events?limit=2&after=1', { token: t.carol });
      assert.deepEqual(
        page.body.items.map((e: { seq: number }) => e.seq),
        [2, 3],
      );
      assert.equal(page.body.next, 3);
    });

    test('verify passes, then names the event an attacker with database access edited', async () => {
      const ok = await call(server, 'GET', '/api/v1/audit/verify', { token: t.ivan });
      assert.equal(ok.body.ok, true, ok.text);
      assert.ok(ok.body.checked >= 10);

      const raw = server.rawDb();
      let victim: { seq: number | string; id: string };
      try {
        victim = await raw.kysely
          .selectFrom('audit_events')
          .select(['seq', 'id'])
          .where('action', '=', 'approval.approved')
          .executeTakeFirstOrThrow();
        // The attacker owns the database: disable the guard, rewrite history, restore the guard.
        if (engine === 'sqlite') {
          await sql`drop trigger audit_events_no_update`.execute(raw.kysely);
          await sql`update audit_events set actor = 'mallory@example.com' where id = ${victim.id}`.execute(
            raw.kysely,
          );
          await sql`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
            BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END`.execute(raw.kysely);
        } else {
          await sql`alter table audit_events disable trigger audit_events_no_change`.execute(raw.kysely);
          await sql`update audit_events set actor = 'mallory@example.com' where id = ${victim.id}`.execute(
            raw.kysely,
          );
          await sql`alter table audit_events enable trigger audit_events_no_change`.execute(raw.kysely);
        }
      } finally {
        await raw.destroy();
      }
      const broken = await call(server, 'GET', '/api/v1/audit/verify', { token: t.ivan });
      assert.equal(broken.body.ok, false);
      assert.equal(broken.body.broken.id, victim.id);
      assert.equal(broken.body.broken.seq, Number(victim.seq));
      assert.match(broken.body.broken.reason, /edited/);
    });
  });
}
