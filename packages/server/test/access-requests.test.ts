import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { accessRequestsPerDay } from '../src/modules/catalog/access-requests.ts';
import {
  call,
  engines,
  lunchPoll,
  signInEveryone,
  startTestServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

/**
 * Asking for access to an app you cannot use: the owner of an app that exists hears of it; the one who asks
 * learns nothing about whether it exists; the owner lets them in through a reviewed change to the audience.
 */
for (const engine of engines()) {
  describe(`asking for access (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      // A finance app (dave's): frank, in marketing, can neither see nor use it.
      const m = lunchPoll({ name: 'close-checklist', audience: { department: 'finance', maxUsers: 30 } });
      assert.equal((await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: m })).status, 201);
    });
    after(async () => server?.stop());

    const ask = (token: string, app: string, reason = 'I prepare the marketing accruals at month end') =>
      call(server, 'POST', '/api/v1/access-requests', { token, body: { app, reason } });
    const inbox = async (token: string) =>
      (await call(server, 'GET', '/api/v1/notifications', { token })).body.items as {
        kind: string;
        subject: string;
        body: string;
        action: string;
      }[];

    test('the refusal leads somewhere: the gateway page links to asking, and the answer never says whether the app exists', async () => {
      const page = await viaGateway(server, 'close-checklist', '/', {
        authorization: `Bearer ${t.frank}`,
        accept: 'text/html',
      });
      assert.equal(page.status, 404);
      assert.match(
        page.body,
        /<a href="http:\/\/[^"]+\/apps\/close-checklist\?ask=1">ask its owner for access<\/a>/,
      );

      const real = await ask(t.frank, 'close-checklist');
      const none = await ask(t.frank, 'no-such-app-anywhere');
      assert.equal(real.status, 202, real.text);
      assert.equal(none.status, 202, none.text);
      assert.equal(
        real.body.message.replace('close-checklist', 'X'),
        none.body.message.replace('no-such-app-anywhere', 'X'),
        'the same answer for an app that exists and one that does not',
      );
      // dave hears of it with frank's reason and the way to let him in; once, however often frank asks today.
      assert.equal((await ask(t.frank, 'close-checklist')).status, 202);
      const told = (await inbox(t.dave)).filter((n) => n.kind === 'access_requested');
      assert.equal(told.length, 1, JSON.stringify(told));
      assert.equal(told[0]!.subject, 'frank@example.com asks to use close-checklist');
      assert.match(
        told[0]!.body,
        /frank@example\.com \(marketing\) asks to use close-checklist: "I prepare the marketing accruals at month end"/,
      );
      assert.match(told[0]!.action, /\/new\?edit=close-checklist$/);
      // Every request is in the trail, for auditors: the ones for names that do not exist too.
      const trail = await call(server, 'GET', '/api/v1/audit/events?action=access.requested', {
        token: t.ivan,
      });
      assert.deepEqual(
        trail.body.items.map((e: { target: string; actor: string }) => [e.target, e.actor]).sort(),
        [
          ['close-checklist', 'frank@example.com'],
          ['close-checklist', 'frank@example.com'],
          ['no-such-app-anywhere', 'frank@example.com'],
        ],
      );
    });

    test('someone who may already use the app asks nobody; bad input is refused and changes nothing', async () => {
      const before = (await inbox(t.dave)).length;
      assert.equal((await ask(t.alice, 'close-checklist')).status, 202, 'alice is in finance');
      assert.equal((await inbox(t.dave)).length, before);
      for (const body of [
        { app: 'close-checklist', reason: 'short' },
        { app: 'Close Checklist!', reason: 'a good enough reason' },
        { app: 'close-checklist' },
        { app: 'close-checklist', reason: 'a good enough reason', owner: 'frank@example.com' },
        { app: 'close-checklist', reason: 'x'.repeat(501) },
      ]) {
        const r = await call(server, 'POST', '/api/v1/access-requests', { token: t.frank, body });
        assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
      }
      assert.equal(
        (
          await call(server, 'POST', '/api/v1/access-requests', {
            body: { app: 'close-checklist', reason: 'a good enough reason' },
          })
        ).status,
        401,
      );
      assert.equal((await inbox(t.dave)).length, before);
    });

    test('the owner lets frank in through a reviewed change to the audience; then he sees and may use it', async () => {
      const before = await call(server, 'GET', '/api/v1/apps/close-checklist', { token: t.frank });
      assert.equal(before.status, 404);
      const current = (await call(server, 'GET', '/api/v1/apps/close-checklist', { token: t.dave })).body;
      const changed = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: {
          ...current.manifest,
          audience: { ...current.manifest.audience, people: ['frank@example.com'] },
        },
      });
      assert.equal(changed.status, 200, changed.text);
      // A change to who uses it is a risk-relevant change: it is not carried over silently.
      assert.deepEqual(
        (await call(server, 'GET', '/api/v1/apps/close-checklist/revisions', { token: t.dave })).body.items[0]
          .inputs.audience.people,
        ['frank@example.com'],
      );
      const seen = await call(server, 'GET', '/api/v1/apps/close-checklist', { token: t.frank });
      assert.equal(seen.status, 200, seen.text);
      const access = await call(server, 'GET', '/api/v1/apps/close-checklist/access', { token: t.frank });
      assert.equal(access.body.allowed, true, access.text);
      // Only the person named: someone else outside finance still gets nothing.
      const other = await call(server, 'GET', '/api/v1/apps/close-checklist/access?user=ivan@example.com', {
        token: t.bob,
      });
      assert.equal(other.body.allowed, false, other.text);
      // A malformed e-mail in the list is refused at registration.
      const bad = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: {
          ...current.manifest,
          audience: { ...current.manifest.audience, people: ['frank at example'] },
        },
      });
      assert.equal(bad.status, 400, bad.text);
    });

    test(`one person may ask ${accessRequestsPerDay} times a day, whatever they name`, async () => {
      const sent = (
        await call(server, 'GET', '/api/v1/audit/events?action=access.requested', { token: t.ivan })
      ).body.items.filter((e: { actor: string }) => e.actor === 'frank@example.com').length;
      for (let i = sent; i < accessRequestsPerDay; i++)
        assert.equal((await ask(t.frank, `probe-${i}`)).status, 202);
      const over = await ask(t.frank, 'probe-over');
      assert.equal(over.status, 429, over.text);
      assert.match(over.body.detail, /wait until tomorrow/);
      // Another person is not held by frank's count.
      assert.equal((await ask(t.erin, 'close-checklist')).status, 202);
    });
  });
}
