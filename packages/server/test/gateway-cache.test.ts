import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../src/server.ts';
import {
  call,
  engines,
  lunchPoll,
  signInEveryone,
  startReplica,
  startTestServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

// The gateway and the API keep what they read on every request (db/read-cache.ts): tokens, sessions,
// apps, the catalog's pages. An attacker's hope is a refusal that arrives late: a revoked token, a
// disabled person or a retired app still let through, or an app still listed to a department it left,
// because the server remembered them. Every change must close the door on the next request (on
// PostgreSQL, on another replica, as soon as the change's notification arrives).

const json = { accept: 'application/json' };

for (const engine of engines()) {
  describe(`the gateway's read cache never outlives a change (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      const r = await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
      assert.equal(r.status, 201, r.text);
    });
    after(() => server.stop());

    const use = async (token: string) =>
      (await viaGateway(server, 'team-lunch-poll', '/', { authorization: `Bearer ${token}`, ...json }))
        .status;
    const token = async (by: string) => {
      const r = await call(server, 'POST', '/api/v1/tokens', {
        token: by,
        body: { name: 'use', scopes: ['apps:use'] },
      });
      assert.equal(r.status, 201, r.text);
      return r.body as { token: string; id: string };
    };

    test('a token revoked between two requests is refused on the second', async () => {
      const { token: secret, id } = await token(t.dave);
      // Past the gateway's sign-in and policy: the app is not running, so 503 from behind them.
      assert.equal(await use(secret), 503);
      assert.equal(await use(secret), 503, 'read again, now from what the gateway kept');
      const revoked = await call(server, 'DELETE', `/api/v1/tokens/${id}`, { token: t.dave });
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal(await use(secret), 401);
    });

    test('the API refuses a revoked token on the next request, though it kept it', async () => {
      const r = await call(server, 'POST', '/api/v1/tokens', {
        token: t.dave,
        body: { name: 'read', scopes: ['apps:read'] },
      });
      assert.equal(r.status, 201, r.text);
      const read = async () =>
        (await call(server, 'GET', '/api/v1/apps?limit=5', { token: r.body.token })).status;
      assert.equal(await read(), 200);
      assert.equal(await read(), 200, 'read again, now from what the server kept');
      const revoked = await call(server, 'DELETE', `/api/v1/tokens/${r.body.id}`, { token: t.dave });
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal(await read(), 401);
    });

    test('a kept catalog page shows a new app, and stops showing one moved to another department, at once', async () => {
      const names = async (token: string) =>
        (
          (await call(server, 'GET', '/api/v1/apps?q=lunch&view=summary', { token })).body.items as {
            name: string;
          }[]
        ).map((a) => a.name);
      // Alice is in finance, as dave is: she sees his apps through her department.
      const before = await names(t.alice);
      assert.deepEqual(await names(t.alice), before, 'kept');
      const made = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'lunch-orders', purpose: 'Order the Friday lunch for the whole team' }),
      });
      assert.equal(made.status, 201, made.text);
      assert.ok((await names(t.alice)).includes('lunch-orders'), 'listed on the next request');
      assert.ok(!(await names(t.frank)).includes('lunch-orders'), 'not to marketing');
      const moved = await call(server, 'POST', '/api/v1/apps', {
        token: t.carol,
        body: lunchPoll({
          name: 'lunch-orders',
          purpose: 'Order the Friday lunch for the whole team',
          owner: 'frank@example.com',
          audience: { department: 'marketing' },
        }),
      });
      assert.ok(moved.status < 300, moved.text);
      assert.ok(!(await names(t.alice)).includes('lunch-orders'), 'finance no longer sees it');
      assert.ok((await names(t.frank)).includes('lunch-orders'), 'marketing does');
      // The full view of a kept page shows the change too.
      const full = await call(server, 'GET', '/api/v1/apps?q=lunch-orders', { token: t.frank });
      assert.equal(full.body.items[0]?.owner, 'frank@example.com');
    });

    test('a kept scorecard shows a version published and an advisory raised by another writer', async () => {
      // Written straight into the database on another connection, as the pipeline's and the advisory
      // feed's transactions write them: the catalog must not go on showing the scorecard it kept.
      const raw = server.rawDb();
      try {
        const app = await raw.kysely
          .selectFrom('apps')
          .select('id')
          .where('name', '=', 'team-lunch-poll')
          .executeTakeFirstOrThrow();
        const checks = async () => {
          const one = await call(server, 'GET', '/api/v1/apps/team-lunch-poll', { token: t.dave });
          const listed = await call(server, 'GET', '/api/v1/apps?q=team-lunch-poll', { token: t.dave });
          assert.equal(one.status, 200, one.text);
          type Check = { id: string; ok: boolean; detail: string };
          const byId = (card: { checks: Check[] }) =>
            Object.fromEntries(card.checks.map((c) => [c.id, c])) as Record<
              'sbom' | 'no_open_high_findings',
              Check
            >;
          assert.deepEqual(listed.body.items[0].scorecard, one.body.scorecard, 'the list and the app agree');
          return byId(one.body.scorecard);
        };
        // On PostgreSQL another connection's change arrives as a notification: a few milliseconds.
        const eventually = async (
          what: string,
          holds: (c: Awaited<ReturnType<typeof checks>>) => boolean,
        ) => {
          for (let i = 0; i < 100; i++) {
            if (holds(await checks())) return;
            await new Promise((r) => setTimeout(r, 50));
          }
          assert.fail(`${what}: the scorecard never showed it`);
        };
        assert.equal((await checks()).sbom.ok, false);
        assert.equal((await checks()).sbom.ok, false, 'read again, from what the catalog kept');
        // A page is written from each kept view's JSON and its scorecard's (catalog-service.ts, pageJson):
        // the same text JSON.stringify writes, on the first read and on a kept one.
        const first = (await call(server, 'GET', '/api/v1/apps?limit=5', { token: t.dave })).text;
        const kept = (await call(server, 'GET', '/api/v1/apps?limit=5', { token: t.dave })).text;
        assert.equal(kept, first);
        assert.equal(first, JSON.stringify(JSON.parse(first)));
        assert.ok(JSON.parse(first).items.every((a: { scorecard?: unknown }) => a.scorecard));
        // Catalog rows too: the kept part from the app and its scorecard, the lifecycle facts after it.
        const rows = (await call(server, 'GET', '/api/v1/apps?limit=5&view=summary', { token: t.dave })).text;
        assert.equal(
          (await call(server, 'GET', '/api/v1/apps?limit=5&view=summary', { token: t.dave })).text,
          rows,
        );
        assert.equal(rows, JSON.stringify(JSON.parse(rows)));
        for (const row of JSON.parse(rows).items)
          assert.deepEqual(Object.keys(row).slice(-5), [
            'scorecard',
            'stage',
            'running',
            'lastUsedAt',
            'expiresAt',
          ]);
        await raw.kysely
          .insertInto('app_versions')
          .values({
            id: 'ver_scorecardcache000001',
            app_id: app.id,
            version: '1.0.0',
            digest: `sha256:${'a'.repeat(64)}`,
            sbom: '{}',
            scan: '{"findings":[]}',
            bundles: '[]',
            provenance: '{}',
            created_by: 'dave@example.com',
            created_at: new Date().toISOString(),
          })
          .execute();
        await eventually('a published version', (c) => c.sbom.ok && c.no_open_high_findings.ok);
        await raw.kysely
          .insertInto('advisory_alerts')
          .values({
            app_id: app.id,
            version: '1.0.0',
            advisory: 'GHSA-cach-edsc-0rec',
            package: 'left-pad',
            severity: 'critical',
            created_at: new Date().toISOString(),
          })
          .execute();
        await eventually(
          'a critical advisory',
          (c) =>
            !c.no_open_high_findings.ok && c.no_open_high_findings.detail.includes('GHSA-cach-edsc-0rec'),
        );
      } finally {
        await raw.destroy();
      }
    });

    test('a person disabled by an admin is refused on the next request', async () => {
      const { token: secret } = await token(t.alice);
      assert.equal(await use(secret), 503);
      const disabled = await call(server, 'POST', '/api/v1/users/alice@example.com/disable', {
        token: t.carol,
        body: { reason: 'left the company' },
      });
      assert.ok(disabled.status < 300, disabled.text);
      assert.equal(await use(secret), 401);
    });

    test('an app given to another department stops being visible to the first at once', async () => {
      const { token: secret } = await token(t.dave);
      assert.equal(await use(secret), 503);
      const moved = await call(server, 'POST', '/api/v1/apps', {
        token: t.carol,
        body: lunchPoll({ owner: 'frank@example.com', audience: { department: 'marketing' } }),
      });
      assert.ok(moved.status < 300, moved.text);
      assert.equal(moved.body.app.department, 'marketing', 'registered again for marketing, owned by frank');
      const after = await use(secret);
      assert.ok(after === 404 || after === 403, `dave now gets ${after}`);
    });
  });
}

if (engines().includes('postgres'))
  describe('two replicas on one PostgreSQL: a change on one reaches the other one’s gateway', () => {
    let a: TestServer;
    let b: RunningServer;
    before(async () => {
      a = await startTestServer('postgres');
      // A second replica of the same platform: the same database and the same data folder (its KEK).
      b = await startReplica(a);
    });
    after(async () => {
      await b?.close();
      await b?.db.destroy();
      await a?.stop();
    });

    test('a token revoked on one replica is refused by the other', async () => {
      const t = await signInEveryone(a);
      const r = await call(a, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
      assert.equal(r.status, 201, r.text);
      const made = await call(a, 'POST', '/api/v1/tokens', {
        token: t.dave,
        body: { name: 'use', scopes: ['apps:use'] },
      });
      const use = async () =>
        (await viaGateway(b, 'team-lunch-poll', '/', { authorization: `Bearer ${made.body.token}`, ...json }))
          .status;
      // Replica B has read the token, and keeps it.
      assert.equal(await use(), 503);
      assert.equal(await use(), 503);
      assert.equal(
        (await call(a, 'DELETE', `/api/v1/tokens/${made.body.id}`, { token: t.dave })).status,
        200,
      );
      // B hears of it when the revocation commits: the notification takes a moment to arrive, not a timer.
      let status = await use();
      for (let i = 0; i < 100 && status !== 401; i++) {
        await new Promise((r) => setTimeout(r, 20));
        status = await use();
      }
      assert.equal(status, 401);
    });

    test('the API and the catalog on one replica hear of the other’s changes', async () => {
      const t = await signInEveryone(a);
      const listed = async () =>
        (
          (await call(b, 'GET', '/api/v1/apps?q=expense', { token: t.dave })).body.items as { name: string }[]
        ).map((x) => x.name);
      assert.deepEqual(await listed(), []);
      assert.deepEqual(await listed(), [], 'kept by B');
      const made = await call(a, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'expense-claims', purpose: 'Claim travel expenses with receipts attached' }),
      });
      assert.equal(made.status, 201, made.text);
      const token = await call(a, 'POST', '/api/v1/tokens', {
        token: t.dave,
        body: { name: 'read', scopes: ['apps:read'] },
      });
      const read = async () =>
        (await call(b, 'GET', '/api/v1/apps?limit=1', { token: token.body.token })).status;
      assert.equal(await read(), 200);
      assert.equal(
        (await call(a, 'DELETE', `/api/v1/tokens/${token.body.id}`, { token: t.dave })).status,
        200,
      );
      let names = await listed();
      let status = await read();
      for (let i = 0; i < 100 && (status !== 401 || !names.includes('expense-claims')); i++) {
        await new Promise((r) => setTimeout(r, 20));
        names = await listed();
        status = await read();
      }
      assert.deepEqual(names, ['expense-claims']);
      assert.equal(status, 401);
    });
  });
