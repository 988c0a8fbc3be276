import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { devUserLogin, newCliLogin } from '../../cli/src/login-flow.ts';
import {
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

type Tokens = Awaited<ReturnType<typeof signInEveryone>>;

for (const engine of engines()) {
  describe(`when someone leaves (${engine})`, () => {
    let server: TestServer;
    let t: Tokens;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      for (const [name, token, owner] of [
        ['alice-poll', 'alice', people.alice],
        ['dave-poll', 'dave', people.dave],
      ] as const) {
        const r = await call(server, 'POST', '/api/v1/apps', {
          token: t[token],
          body: lunchPoll({ name, owner }),
        });
        assert.equal(r.status, 201, r.text);
      }
    });
    after(() => server.stop());

    test('only admins disable accounts, with a reason; nobody disables themselves', async () => {
      const body = { reason: 'left the company on 2026-11-30' };
      assert.equal(
        (await call(server, 'POST', `/api/v1/users/${people.alice}/disable`, { token: t.bob, body })).status,
        403,
      );
      assert.equal(
        (await call(server, 'POST', `/api/v1/users/${people.alice}/disable`, { token: t.alice, body }))
          .status,
        403,
      );
      assert.equal(
        (
          await call(server, 'POST', `/api/v1/users/${people.alice}/disable`, {
            token: t.carol,
            body: { reason: 'x' },
          })
        ).status,
        400,
      );
      assert.equal(
        (await call(server, 'POST', `/api/v1/users/${people.carol}/disable`, { token: t.carol, body }))
          .status,
        409,
      );
      assert.equal(
        (await call(server, 'POST', '/api/v1/users/nobody@example.com/disable', { token: t.carol, body }))
          .status,
        404,
      );
      assert.equal(
        (await call(server, 'GET', '/api/v1/apps', { token: t.alice })).status,
        200,
        'nothing changed',
      );
    });

    test('a disabled owner’s credentials stop at once; their app is offered to their manager, who takes it over', async () => {
      const res = await call(server, 'POST', `/api/v1/users/${people.alice}/disable`, {
        token: t.carol,
        body: { reason: 'left the company on 2026-11-30' },
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.offered, ['alice-poll']);
      assert.equal(res.body.offeredTo, people.dave);
      assert.equal(
        (await call(server, 'GET', '/api/v1/apps', { token: t.alice })).status,
        401,
        'her token is dead',
      );
      const pkce = newCliLogin();
      await assert.rejects(
        devUserLogin(server.url, people.alice, pkce),
        /disabled/,
        'and she cannot sign in again',
      );

      const inbox = await call(server, 'GET', '/api/v1/notifications', { token: t.dave });
      const offer = inbox.body.items.find((n: { kind: string }) => n.kind === 'ownership_offered');
      assert.ok(offer, inbox.text);
      assert.equal(offer.action, `${server.url}/apps/alice-poll#owner-offer`);
      const view = await call(server, 'GET', '/api/v1/apps/alice-poll/lifecycle', { token: t.dave });
      assert.equal(view.body.offeredTo, people.dave);

      // Someone else cannot take what was offered to dave, nor give it to themselves.
      const grab = await call(server, 'POST', '/api/v1/apps/alice-poll/owner', {
        token: t.bob,
        body: { owner: people.bob },
      });
      assert.equal(grab.status, 403);
      const taken = await call(server, 'POST', '/api/v1/apps/alice-poll/owner', {
        token: t.dave,
        body: { owner: people.dave },
      });
      assert.equal(taken.status, 200, taken.text);
      assert.equal(taken.body.owner, people.dave);
      assert.equal(taken.body.manifest.owner, people.dave);
      const events = await call(
        server,
        'GET',
        '/api/v1/audit/events?app=alice-poll&action=app.owner_transferred',
        {
          token: t.ivan,
        },
      );
      assert.equal(events.body.items.length, 1);
      assert.equal(events.body.items[0].summary.from, people.alice);
    });

    test('an owner without a manager: the app is frozen and the admins are told; an admin gives it a new owner', async () => {
      const res = await call(server, 'POST', `/api/v1/users/${people.dave}/disable`, {
        token: t.carol,
        body: { reason: 'moved to another company' },
      });
      assert.equal(res.status, 200, res.text);
      assert.ok(res.body.frozen.includes('dave-poll'), res.text);
      const view = await call(server, 'GET', '/api/v1/apps/dave-poll/lifecycle', { token: t.carol });
      assert.equal(view.body.stage, 'stopped');
      assert.equal(view.body.reason, 'owner_left');
      const admin = await call(server, 'GET', '/api/v1/notifications', { token: t.carol });
      assert.ok(
        admin.body.items.some(
          (n: { kind: string; app: string }) => n.kind === 'owner_left' && n.app === 'dave-poll',
        ),
      );

      const toGhost = await call(server, 'POST', '/api/v1/apps/dave-poll/owner', {
        token: t.carol,
        body: { owner: 'ghost@example.com' },
      });
      assert.equal(toGhost.status, 409, 'only someone with an active account can own an app');
      const toDisabled = await call(server, 'POST', '/api/v1/apps/dave-poll/owner', {
        token: t.carol,
        body: { owner: people.alice },
      });
      assert.equal(toDisabled.status, 409);
      const moved = await call(server, 'POST', '/api/v1/apps/dave-poll/owner', {
        token: t.carol,
        body: { owner: people.frank },
      });
      assert.equal(moved.status, 200, moved.text);
      const after = await call(server, 'GET', '/api/v1/apps/dave-poll/lifecycle', { token: t.frank });
      assert.equal(after.body.stage, 'active', 'a new owner answers for it: it runs again');
    });
  });
}
