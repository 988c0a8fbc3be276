// Behind a company's proxy: whose address the audit trail records, which request id follows a request,
// and what browsers are told about HTTPS. An attacker's X-Forwarded-For is never believed.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import {
  call,
  lunchPoll,
  signInEveryone as signIn,
  type signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

async function registeredFrom(
  server: TestServer,
  t: Awaited<ReturnType<typeof signInEveryone>>,
  name: string,
  headers: Record<string, string>,
) {
  const reg = await call(server, 'POST', '/api/v1/apps', {
    token: t.dave,
    body: lunchPoll({ name }),
    headers,
  });
  assert.equal(reg.status, 201, reg.text);
  const events = await call(server, 'GET', `/api/v1/audit/events?app=${name}&action=app.registered`, {
    token: t.ivan,
  });
  const [event] = events.body.items as { sourceIp: string | null; requestId: string | null }[];
  return { reg, event: event! };
}

describe('a server reached directly', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  before(async () => {
    server = await startTestServer('sqlite');
    t = await signIn(server);
  });
  after(() => server.stop());

  test("a caller's X-Forwarded-For is not believed; a well-formed request id is kept and returned, another replaced", async () => {
    const { reg, event } = await registeredFrom(server, t, 'direct-poll', {
      'x-forwarded-for': '203.0.113.9',
      'x-request-id': 'edge-7f3a9c21-0001',
    });
    assert.match(event.sourceIp ?? '', /127\.0\.0\.1|::1/, 'the connection’s own address');
    assert.equal(reg.headers.get('x-request-id'), 'edge-7f3a9c21-0001');
    assert.equal(
      event.requestId,
      'edge-7f3a9c21-0001',
      'one id in the response, the logs and the audit trail',
    );
    const odd = await call(server, 'GET', '/healthz', {
      headers: { 'x-request-id': 'has spaces; and=more' },
    });
    assert.match(odd.headers.get('x-request-id') ?? '', /^req_/);
    assert.match((await call(server, 'GET', '/healthz')).headers.get('x-request-id') ?? '', /^req_/);
    assert.equal(odd.headers.get('strict-transport-security'), null, 'plain HTTP: no HSTS');
  });
});

describe('a server behind a trusted proxy', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  before(async () => {
    server = await startTestServer('sqlite', { env: { MICROAPP_TRUSTED_PROXIES: '127.0.0.1,::1' } });
    t = await signIn(server);
  });
  after(() => server.stop());

  test('the audit trail records the client the proxy names', async () => {
    const { event } = await registeredFrom(server, t, 'proxied-poll', { 'x-forwarded-for': '203.0.113.9' });
    assert.equal(event.sourceIp, '203.0.113.9');
  });

  test('on an HTTPS public address, browsers are told to use nothing else (HSTS)', async () => {
    const https = await startTestServer('sqlite', { env: { MICROAPP_PUBLIC_URL: 'https://localhost:9443' } });
    try {
      // Its public address is the proxy's; the test speaks to the port it listens on.
      const { port } = https.app.server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000');
    } finally {
      await https.stop();
    }
  });

  test('a proxy list that is not addresses stops the start', () => {
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_TRUSTED_PROXIES: '10.0.0.0/8,everyone' }),
      (e: Error) =>
        e instanceof ConfigError && /MICROAPP_TRUSTED_PROXIES .* "everyone" is neither/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ dev: true }, { MICROAPP_TRUSTED_PROXIES: '10.0.0.0/33' }),
      /"10\.0\.0\.0\/33" is neither/,
    );
    assert.deepEqual(
      loadConfig({ dev: true }, { MICROAPP_TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8' }).trustedProxies,
      ['10.0.0.0/8', 'fd00::/8'],
    );
  });
});
