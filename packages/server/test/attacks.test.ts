import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { devSignIn } from '../../cli/src/login-flow.ts';
import { safeReturnTo } from '../src/modules/identity/login-service.ts';
import {
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone as signIn,
  type signInEveryone,
  startTestServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

/**
 * The security suite for boundaries that need no sandbox: each test is an attack that worked once, aimed
 * at this server only, and asserts that it fails now (docs/security.md lists them by boundary).
 */
describe('sign-in return URLs', () => {
  test('only paths on the same origin survive, and any control character refuses the value', () => {
    for (const evil of [
      '/\t/evil.example',
      '/%09/evil.example',
      '/\n/evil.example',
      '/%0a/evil.example',
      '/\r\n/evil.example',
      '//evil.example',
      '/\\evil.example',
      '/%5cevil.example',
      'https://evil.example/',
      '/\u0000/evil.example',
      '/\u0085/evil.example',
      'javascript:alert(1)',
      '/%zz',
    ])
      assert.equal(safeReturnTo(evil), '/', JSON.stringify(evil));
    assert.equal(safeReturnTo('/apps/new?x=1#top'), '/apps/new?x=1#top');
    assert.equal(safeReturnTo('/apps/../audit'), '/audit');
  });
});

for (const engine of engines()) {
  describe(`attacks on sign-in and tokens (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signIn(server);
    });
    after(() => server.stop());

    test('a tab in return_to does not land the browser on another host after sign-in', async () => {
      const origin = new URL(server.url);
      const start = `${server.url}/auth/login?return_to=${encodeURIComponent('/\t/evil.example/phish')}`;
      const { url } = await devSignIn(
        start,
        people.alice,
        (u) =>
          (u.host === origin.host && !u.pathname.startsWith('/auth/')) || u.hostname.endsWith('evil.example'),
      );
      assert.equal(url.host, origin.host, `landed on ${url.href}`);
      assert.equal(url.pathname, '/');
    });

    test('a token without apps:use cannot use apps through the gateway', async () => {
      await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
      const narrow = await call(server, 'POST', '/api/v1/tokens', {
        token: t.dave,
        body: { name: 'audit-export', scopes: ['audit:read'] },
      });
      assert.equal(narrow.status, 201, narrow.text);
      const refused = await viaGateway(server, 'team-lunch-poll', '/', {
        authorization: `Bearer ${narrow.body.token}`,
        accept: 'application/json',
      });
      assert.equal(refused.status, 403);
      assert.match(refused.body, /apps:use/);
      const post = await viaGateway(server, 'team-lunch-poll', '/submit', {
        authorization: `Bearer ${narrow.body.token}`,
      });
      assert.equal(post.status, 403);
      // The same person with a token that has the scope gets past the gateway's sign-in (the app is not
      // running, so it answers 503 from behind it).
      const wide = await call(server, 'POST', '/api/v1/tokens', {
        token: t.dave,
        body: { name: 'use-apps', scopes: ['apps:use'] },
      });
      const admitted = await viaGateway(server, 'team-lunch-poll', '/', {
        authorization: `Bearer ${wide.body.token}`,
        accept: 'application/json',
      });
      assert.equal(admitted.status, 503, admitted.body);
      // The CLI's sign-in token carries every scope, apps:use included.
      const cli = await viaGateway(server, 'team-lunch-poll', '/', {
        authorization: `Bearer ${t.dave}`,
        accept: 'application/json',
      });
      assert.equal(cli.status, 503, cli.body);
    });
  });
}
