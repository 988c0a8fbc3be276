import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { devSignIn, newCliLogin } from '../../cli/src/login-flow.ts';
import { call, engines, lunchPoll, people, startTestServer, type TestServer, tokenFor } from './harness.ts';

/** Signs in through the browser flow and returns the session cookie header value. */
async function browserSession(server: TestServer, email: string, returnTo = '/welcome') {
  const start = `${server.url}/auth/login?return_to=${encodeURIComponent(returnTo)}`;
  const origin = new URL(server.url);
  const { url, jar } = await devSignIn(
    start,
    email,
    (u) => u.host === origin.host && !u.pathname.startsWith('/auth/'),
  );
  const cookie = jar.get(origin.host)?.get('microapp_session');
  assert.ok(cookie, 'a session cookie was set');
  return { cookie: `microapp_session=${cookie}`, landed: url };
}

for (const engine of engines()) {
  describe(`authentication boundaries (${engine})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(engine);
    });
    after(() => server.stop());

    test('browser sign-in sets an HttpOnly SameSite=Lax session and returns where the user was going', async () => {
      const origin = new URL(server.url);
      const res = await fetch(`${server.url}/auth/login`, { redirect: 'manual' });
      assert.equal(res.status, 302);
      const loginCookie = res.headers.getSetCookie().find((c) => c.startsWith('microapp_login='));
      assert.match(loginCookie!, /HttpOnly/);
      assert.match(loginCookie!, /SameSite=Lax/);
      assert.match(res.headers.get('location')!, /code_challenge_method=S256/);

      const { cookie, landed } = await browserSession(server, people.alice, '/apps/new?x=1');
      assert.equal(landed.host, origin.host);
      assert.equal(`${landed.pathname}${landed.search}`, '/apps/new?x=1');
      const session = await call(server, 'GET', '/api/v1/auth/session', { headers: { cookie } });
      assert.equal(session.status, 200);
      assert.equal(session.body.user.email, people.alice);
      assert.equal(session.body.via, 'session');
      assert.ok(session.body.csrfToken);
    });

    test('cookie-authenticated writes need the CSRF token; bearer tokens do not', async () => {
      const { cookie } = await browserSession(server, people.dave);
      const noCsrf = await call(server, 'POST', '/api/v1/apps', { headers: { cookie }, body: lunchPoll() });
      assert.equal(noCsrf.status, 403);
      assert.equal(noCsrf.body.code, 'csrf_failed');
      const wrong = await call(server, 'POST', '/api/v1/apps', {
        headers: { cookie, 'x-csrf-token': 'guess' },
        body: lunchPoll(),
      });
      assert.equal(wrong.status, 403);
      const { body } = await call(server, 'GET', '/api/v1/auth/session', { headers: { cookie } });
      const ok = await call(server, 'POST', '/api/v1/apps', {
        headers: { cookie, 'x-csrf-token': body.csrfToken },
        body: lunchPoll(),
      });
      assert.equal(ok.status, 201, ok.text);

      const logout = await call(server, 'POST', '/auth/logout', {
        headers: { cookie, 'x-csrf-token': body.csrfToken },
      });
      assert.equal(logout.status, 204);
      assert.equal((await call(server, 'GET', '/api/v1/auth/session', { headers: { cookie } })).status, 401);
    });

    test('signing in through another name of the same server (127.0.0.1 for localhost) still works', async () => {
      const canonical = new URL(server.url);
      const other = `http://127.0.0.1:${canonical.port}`;
      const first = await fetch(`${other}/auth/login?return_to=/x`, { redirect: 'manual' });
      assert.equal(first.status, 302);
      assert.equal(
        new URL(first.headers.get('location')!).host,
        canonical.host,
        'sent to the canonical host first',
      );
      const { landed } = await browserSession(server, people.dave, '/x');
      assert.equal(landed.pathname, '/x');
    });

    test('an open redirect after sign-in goes home instead', async () => {
      const { landed } = await browserSession(server, people.alice, '//evil.example.com/phish');
      assert.equal(landed.pathname, '/');
      assert.equal(landed.host, new URL(server.url).host);
    });

    test('a callback not started in this browser is refused (login CSRF)', async () => {
      const res = await call(server, 'GET', '/auth/callback?code=abc&state=def');
      assert.equal(res.status, 400);
      assert.match(res.body.detail, /not started in this browser/);
    });

    test('CLI codes go only to loopback, once, and only with the right PKCE verifier', async () => {
      const pkce = newCliLogin();
      const evil = await call(
        server,
        'GET',
        `/auth/login?cli_redirect=${encodeURIComponent('https://evil.example.com/cb')}&cli_challenge=${pkce.challenge}&cli_state=${pkce.state}`,
      );
      assert.equal(evil.status, 400);

      const redirect = 'http://127.0.0.1:9/callback';
      const start = `${server.url}/auth/login?${new URLSearchParams({ cli_redirect: redirect, cli_challenge: pkce.challenge, cli_state: pkce.state })}`;
      const { url } = await devSignIn(start, people.erin, (u) => u.href.startsWith(redirect));
      const code = url.searchParams.get('code')!;
      const wrongVerifier = await call(server, 'POST', '/api/v1/auth/cli/token', {
        body: { code, codeVerifier: newCliLogin().verifier },
      });
      assert.equal(wrongVerifier.status, 401);
      const good = await call(server, 'POST', '/api/v1/auth/cli/token', {
        body: { code, codeVerifier: pkce.verifier },
      });
      assert.equal(good.status, 201, good.text);
      assert.match(good.body.token, /^mat_/);
      const replay = await call(server, 'POST', '/api/v1/auth/cli/token', {
        body: { code, codeVerifier: pkce.verifier },
      });
      assert.equal(replay.status, 401);
      assert.equal(createHash('sha256').update(pkce.verifier).digest('base64url'), pkce.challenge);
    });

    test('tokens: shown once, stored hashed, scoped, no escalation, revocable, expiring', async () => {
      const alice = await tokenFor(server, people.alice);
      const created = await call(server, 'POST', '/api/v1/tokens', {
        token: alice,
        body: { name: 'read only', scopes: ['apps:read'], expiresInDays: 1 },
      });
      assert.equal(created.status, 201);
      const readOnly = created.body.token as string;
      const listed = await call(server, 'GET', '/api/v1/tokens', { token: alice });
      assert.ok(!listed.text.includes(readOnly), 'list never shows a token value');
      assert.ok(!listed.text.includes('mat_'));

      const raw = server.rawDb();
      try {
        const rows = await raw.kysely.selectFrom('api_tokens').selectAll().execute();
        assert.ok(!JSON.stringify(rows).includes(readOnly), 'the database holds only a hash');
      } finally {
        await raw.destroy();
      }

      assert.equal((await call(server, 'GET', '/api/v1/apps', { token: readOnly })).status, 200);
      const write = await call(server, 'POST', '/api/v1/apps', {
        token: readOnly,
        body: lunchPoll({ name: 'ro-app', owner: people.alice }),
      });
      assert.equal(write.status, 403);
      assert.match(write.body.detail, /scope apps:write/);
      const escalate = await call(server, 'POST', '/api/v1/tokens', { token: readOnly, body: { name: 'x' } });
      assert.equal(escalate.status, 403);

      const dave = await tokenFor(server, people.dave);
      const notYours = await call(server, 'DELETE', `/api/v1/tokens/${created.body.id}`, { token: dave });
      assert.equal(notYours.status, 404);
      const revoked = await call(server, 'DELETE', `/api/v1/tokens/${created.body.id}`, { token: alice });
      assert.equal(revoked.status, 200);
      assert.equal((await call(server, 'GET', '/api/v1/apps', { token: readOnly })).status, 401);
      assert.equal(
        (await call(server, 'DELETE', `/api/v1/tokens/${created.body.id}`, { token: alice })).status,
        409,
      );

      const short = await call(server, 'POST', '/api/v1/tokens', { token: alice, body: { name: 'short' } });
      const raw2 = server.rawDb();
      try {
        await raw2.kysely
          .updateTable('api_tokens')
          .set({ expires_at: '2020-01-01T00:00:00.000Z' })
          .where('id', '=', short.body.id)
          .execute();
      } finally {
        await raw2.destroy();
      }
      assert.equal((await call(server, 'GET', '/api/v1/apps', { token: short.body.token })).status, 401);
    });

    test('forged, malformed and foreign credentials are refused', async () => {
      for (const header of [
        'Bearer mat_forged',
        'Bearer',
        'Basic YWxpY2U6cGFzcw==',
        `Bearer ${'a'.repeat(5000)}`,
      ]) {
        const res = await call(server, 'GET', '/api/v1/apps', { headers: { authorization: header } });
        assert.equal(res.status, 401, header.slice(0, 30));
      }
      const forgedCookie = await call(server, 'GET', '/api/v1/apps', {
        headers: { cookie: 'microapp_session=forged' },
      });
      assert.equal(forgedCookie.status, 401);
      // A token can be used only by bearer; as a cookie it is nothing.
      const alice = await tokenFor(server, people.alice);
      assert.equal(
        (await call(server, 'GET', '/api/v1/apps', { headers: { cookie: `microapp_session=${alice}` } }))
          .status,
        401,
      );
    });

    test('the group-to-role mapping is for admins and auditors to read, with no secret in it', async () => {
      const auditor = await tokenFor(server, people.ivan);
      const r = await call(server, 'GET', '/api/v1/identity/role-mapping', { token: auditor });
      assert.equal(r.status, 200, r.text);
      const groups = Object.fromEntries(
        r.body.groups.map((g: { group: string; roles: string[] }) => [g.group, g.roles]),
      );
      assert.deepEqual(groups['microapp-creators'], ['creator']);
      assert.equal(r.body.claims.groups, 'groups');
      assert.doesNotMatch(r.text, /secret/i);
      const creator = await tokenFor(server, people.alice);
      assert.equal(
        (await call(server, 'GET', '/api/v1/identity/role-mapping', { token: creator })).status,
        403,
      );
    });

    test('security headers on every answer', async () => {
      const res = await call(server, 'GET', '/healthz');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.match(res.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
    });
  });
}
