import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createAppHosts } from '../src/modules/runtime/app-hosts.ts';
import { call, startTestServer, type TestServer, tokenFor } from './harness.ts';

/** A request with a chosen Host header to the test server. */
function withHost(server: TestServer, host: string, path: string, headers: Record<string, string> = {}) {
  const url = new URL(server.url);
  return new Promise<{ status: number; body: string; location?: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: url.port, path, headers: { host, ...headers } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('app hosts', () => {
  test('a site is one label under the apps domain; the URL keeps the platform’s scheme and port', () => {
    const local = createAppHosts({ domain: null, platformUrl: () => 'http://localhost:8080' });
    assert.equal(local.domain(), 'apps.localhost');
    assert.equal(local.siteOf('survey.apps.localhost:8080'), 'survey');
    assert.equal(local.siteOf('Survey--Preview.APPS.localhost'), 'survey--preview');
    assert.equal(local.siteOf('a.b.apps.localhost'), null, 'one label only');
    assert.equal(local.siteOf('apps.localhost'), null);
    assert.equal(local.siteOf('localhost:8080'), null);
    assert.equal(local.siteOf('survey.apps.localhost.evil.example'), null);
    assert.equal(local.urlOf('survey'), 'http://survey.apps.localhost:8080/');
    const bank = createAppHosts({
      domain: 'apps.bank.example',
      platformUrl: () => 'https://microapp.bank.example',
    });
    assert.equal(bank.siteOf('recon.apps.bank.example'), 'recon');
    assert.equal(bank.siteOf('recon.apps.localhost'), null);
    assert.equal(bank.urlOf('recon--preview'), 'https://recon--preview.apps.bank.example/');
  });

  describe('a platform with its own apps domain', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer('sqlite', { env: { MICROAPP_APPS_DOMAIN: 'apps.test.internal' } });
    });
    after(() => server.stop());

    test('the gateway answers under the configured domain only; a browser is sent to the platform to sign in', async () => {
      const port = new URL(server.url).port;
      const meta = await call(server, 'GET', '/api/v1/meta');
      assert.equal(meta.body.appsDomain, 'apps.test.internal');
      const app = await withHost(server, `survey.apps.test.internal:${port}`, '/');
      assert.equal(app.status, 401, 'the gateway asks for sign-in on an app host');
      const browser = await withHost(server, `survey.apps.test.internal:${port}`, '/', {
        accept: 'text/html',
      });
      assert.equal(browser.status, 302);
      assert.match(browser.location ?? '', new RegExp(`^${server.url}/auth/apps/survey\\?state=`));
      const other = await withHost(server, `survey.apps.localhost:${port}`, '/api/v1/meta');
      assert.equal(other.status, 200, 'apps.localhost is not an app host here: the platform answers');
      const token = await tokenFor(server, 'alice@example.com');
      assert.equal(
        (
          await withHost(server, `nothing.apps.test.internal:${port}`, '/', {
            authorization: `Bearer ${token}`,
          })
        ).status,
        404,
      );
    });

    test('a bad domain stops the server from starting, with the reason', async () => {
      await assert.rejects(
        startTestServer('sqlite', { env: { MICROAPP_APPS_DOMAIN: 'apps..bad/' } }),
        /MICROAPP_APPS_DOMAIN must be a DNS name/,
      );
    });
  });
});

test('in the moment between listening and knowing its own URL, a request is for the platform, not an error', () => {
  // Found by running the platform's image: the first readiness probe came before the URL was set, and the
  // gateway failed on `new URL(null)`.
  let url: string | null = null;
  const hosts = createAppHosts({ domain: null, platformUrl: () => url });
  assert.equal(hosts.siteOf('poll.apps.localhost:8080'), null);
  assert.equal(hosts.domain(), null);
  url = 'http://localhost:8080';
  assert.equal(hosts.siteOf('poll.apps.localhost:8080'), 'poll');
});
