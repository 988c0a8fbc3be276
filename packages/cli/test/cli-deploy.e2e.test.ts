import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { parse } from 'yaml';
import {
  call,
  lineFrom,
  startTestServer,
  type TestServer,
  tokenFor,
  upgradeVia,
  viaGateway,
} from '../../server/test/harness.ts';
import { devSignIn } from '../src/login-flow.ts';
import { cli, importAdvisories } from './cli-harness.ts';

// An app that shows what reaches it: the check that the gateway strips credentials.
const echoApp = {
  'microapp.yaml':
    'name: echo\nowner: dave@example.com\npurpose: Show the request headers an app receives\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 20 }\n',
  'package.json': JSON.stringify({
    name: 'echo',
    version: '1.0.0',
    private: true,
    type: 'module',
    scripts: { test: 'node --test' },
  }),
  'package-lock.json': JSON.stringify({
    name: 'echo',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: 'echo', version: '1.0.0' } },
  }),
  'server.js':
    "import { createServer } from 'node:http';\ncreateServer((req, res) => { res.setHeader('set-cookie', 'app=1'); res.end(JSON.stringify({ headers: req.headers, secret: process.env.MICROAPP_IDENTITY_PUBLIC_KEY ? 'has-key' : 'no-key' })); })\n" +
    "  .on('upgrade', (req, socket) => { socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n' + JSON.stringify({ identity: Boolean(req.headers['x-microapp-identity']), cookie: req.headers.cookie ?? null, authorization: req.headers.authorization ?? null }) + '\\n'); socket.pipe(socket); })\n" +
    '  .listen(process.env.PORT);\n',
  'test/ok.test.js': "import { test } from 'node:test';\ntest('ok', () => {});\n",
};

describe('deploy and use an app behind the gateway', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  let dave: string;
  before(async () => {
    server = await startTestServer('sqlite', {
      env: { MICROAPP_KUBERNETES_RUNTIME_IMAGE: `registry.example.com/node@sha256:${'cd'.repeat(32)}` },
    });
    dir = mkdtempSync(join(tmpdir(), 'microapp-deploy-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
    dave = await tokenFor(server, 'dave@example.com');
    await cli(env, 'login', '--dev-user', 'dave@example.com');
    for (const [name, files] of [
      ['poll', null],
      ['echo', echoApp],
    ] as const) {
      const app = join(dir, name);
      if (files) {
        mkdirSync(join(app, 'test'), { recursive: true });
        for (const [f, text] of Object.entries(files)) writeFileSync(join(app, f), text);
      } else assert.equal((await cli(env, 'init', app, '-t', 'form', '--department', 'finance')).code, 0);
      assert.equal((await cli(env, 'register', '-f', join(app, 'microapp.yaml'))).code, 0);
      const ci = await cli(env, 'ci', '--dir', app);
      assert.equal(ci.code, 0, ci.stderr);
      const deployed = await cli(env, 'deploy', name);
      assert.equal(deployed.code, 0, deployed.stderr);
      assert.match(deployed.stdout, new RegExp(`http://${name}\\.apps\\.localhost:\\d+/`));
    }
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a signed-in colleague reaches the app; the app verifies who is calling', async () => {
    const page = await viaGateway(server, 'poll', '/', { authorization: `Bearer ${dave}` });
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /<form method="post"/);
  });

  test('no sign-in, another department, an unknown app: refused before the app sees anything', async () => {
    assert.equal((await viaGateway(server, 'poll', '/')).status, 401);
    const frank = await tokenFor(server, 'frank@example.com');
    const other = await viaGateway(server, 'poll', '/', { authorization: `Bearer ${frank}` });
    assert.equal(other.status, 404, 'another department does not even learn the app exists');
    const erin = await tokenFor(server, 'erin@example.com');
    const denied = await viaGateway(server, 'poll', '/', { authorization: `Bearer ${erin}` });
    assert.equal(denied.status, 200, 'reviewers may use apps');
    const ivan = await tokenFor(server, 'ivan@example.com');
    const auditor = await viaGateway(server, 'poll', '/', { authorization: `Bearer ${ivan}` });
    assert.equal(auditor.status, 403, 'the access policy does not admit auditors to finance apps');
    const page = await viaGateway(server, 'poll', '/', {
      authorization: `Bearer ${ivan}`,
      accept: 'text/html',
    });
    assert.equal(page.status, 403);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /<h1>A policy denied the request<\/h1>|<h1>You are not allowed to do this<\/h1>/);
    assert.match(page.body, /ivan@example\.com may not use poll/);
    assert.match(page.body, /send this reference to your platform team: \S+/);
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
    const missing = await viaGateway(server, 'poll', '/', {
      authorization: `Bearer ${frank}`,
      accept: 'text/html',
    });
    assert.equal(missing.status, 404);
    assert.match(missing.body, /there is no app poll/);
    const audit = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: ivan });
    assert.ok(
      audit.body.items.some(
        (e: { action: string; actor: string }) =>
          e.action === 'gateway.denied' && e.actor === 'ivan@example.com',
      ),
    );
    assert.equal((await viaGateway(server, 'nope', '/', { authorization: `Bearer ${dave}` })).status, 404);
  });

  test("the app never receives the user's token or cookies, only a signed identity", async () => {
    const res = await viaGateway(server, 'echo', '/', {
      authorization: `Bearer ${dave}`,
      cookie: 'microapp_session=stolen; other=1',
    });
    assert.equal(res.status, 200, res.body);
    const seen = JSON.parse(res.body) as { headers: Record<string, string>; secret: string };
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers.cookie, undefined);
    assert.match(seen.headers['x-microapp-identity'] ?? '', /^eyJ/);
    const claims = JSON.parse(
      Buffer.from(seen.headers['x-microapp-identity']!.split('.')[1]!, 'base64url').toString('utf8'),
    );
    assert.equal(claims.email, 'dave@example.com');
    assert.equal(claims.aud, 'echo');
    assert.equal(res.headers['set-cookie'], undefined, 'apps cannot set cookies on the platform');
    const jwks = await (await fetch(`${server.url}/api/v1/keys/identity`)).json();
    assert.equal((jwks as { keys: { alg: string }[] }).keys[0]!.alg, 'ES256');
  });

  test('a browser signs in through the platform once; the app session is good for that app only', async () => {
    const cookieOf = (headers: Record<string, unknown>, name: string) => {
      const line = ((headers['set-cookie'] as string[] | undefined) ?? []).find((c) =>
        c.startsWith(`${name}=`),
      );
      assert.ok(line, `${name} is set`);
      assert.match(line, /HttpOnly/i);
      assert.match(line, /SameSite=Lax/i);
      return line.split(';')[0]!.slice(name.length + 1);
    };
    const html = { accept: 'text/html' };
    const first = await viaGateway(server, 'echo', '/report?x=1', html);
    assert.equal(first.status, 302, 'a browser is sent to sign in, not shown a 401');
    const toPlatform = new URL(first.headers.location as string);
    assert.equal(toPlatform.pathname, '/auth/apps/echo');
    const state = cookieOf(first.headers, 'microapp_app_state');

    // The platform signs dave in (dev IdP) and sends the browser back to the app with a one-time code.
    const { url: back, jar } = await devSignIn(toPlatform.href, 'dave@example.com', (u) =>
      u.hostname.endsWith('.apps.localhost'),
    );
    assert.equal(back.hostname, 'echo.apps.localhost');
    assert.equal(back.pathname, '/_microapp/callback');
    assert.equal(back.searchParams.get('path'), '/report?x=1');
    const callback = back.pathname + back.search;

    // An attacker cannot plant the sign-in in another browser, nor carry it to another app.
    assert.equal((await viaGateway(server, 'echo', callback)).status, 400);
    assert.equal(
      (await viaGateway(server, 'echo', callback, { cookie: `microapp_app_state=${'x'.repeat(43)}` })).status,
      400,
    );
    assert.equal(
      (await viaGateway(server, 'poll', callback, { cookie: `microapp_app_state=${state}` })).status,
      400,
    );
    const done = await viaGateway(server, 'echo', callback, { cookie: `microapp_app_state=${state}` });
    assert.equal(done.status, 302, done.body);
    assert.equal(done.headers.location, '/report?x=1');
    const session = cookieOf(done.headers, 'microapp_app_session');
    assert.equal(
      (await viaGateway(server, 'echo', callback, { cookie: `microapp_app_state=${state}` })).status,
      400,
      'a code works once',
    );

    const page = await viaGateway(server, 'echo', '/report?x=1', {
      cookie: `microapp_app_session=${session}`,
    });
    assert.equal(page.status, 200, page.body);
    const seen = JSON.parse(page.body) as { headers: Record<string, string> };
    assert.equal(seen.headers.cookie, undefined, 'the app never sees its session cookie');
    const claims = JSON.parse(
      Buffer.from(seen.headers['x-microapp-identity']!.split('.')[1]!, 'base64url').toString('utf8'),
    );
    assert.equal(claims.email, 'dave@example.com');

    // The app session is neither a platform session nor a session for another app.
    const asPlatform = await call(server, 'GET', '/api/v1/auth/session', {
      headers: { cookie: `microapp_session=${session}` },
    });
    assert.equal(asPlatform.status, 401);
    assert.equal(
      (await viaGateway(server, 'poll', '/', { cookie: `microapp_app_session=${session}` })).status,
      401,
    );

    // The platform only ever sends a browser back to a path on the app, never elsewhere.
    const platform = new URL(server.url);
    const platformCookie = [...(jar.get(`localhost:${platform.port}`) ?? jar.get(platform.host) ?? new Map())]
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');
    const evil = await fetch(
      `${server.url}/auth/apps/echo?state=${'s'.repeat(43)}&path=${encodeURIComponent('//evil.example.com/x')}`,
      { redirect: 'manual', headers: { cookie: platformCookie } },
    );
    assert.equal(evil.status, 302);
    const evilBack = new URL(evil.headers.get('location')!);
    assert.equal(evilBack.hostname, 'echo.apps.localhost');
    assert.equal(evilBack.searchParams.get('path'), '/');

    // A WebSocket with the app's cookie opens from the app's own pages only (no cross-site hijacking).
    const appOrigin = `http://echo.apps.localhost:${platform.port}`;
    const hijack = await upgradeVia(server, 'echo', {
      cookie: `microapp_app_session=${session}`,
      origin: 'http://evil.example.com',
    });
    assert.equal(hijack.status, 403);
    const own = await upgradeVia(server, 'echo', {
      cookie: `microapp_app_session=${session}`,
      origin: appOrigin,
    });
    assert.equal(own.status, 101);
    own.socket!.destroy();

    // Signing out of the platform signs the browser out of its apps too.
    const who = await call(server, 'GET', '/api/v1/auth/session', { headers: { cookie: platformCookie } });
    const out = await call(server, 'POST', '/auth/logout', {
      headers: { cookie: platformCookie, 'x-csrf-token': who.body.csrfToken },
    });
    assert.equal(out.status, 204, out.text);
    assert.equal(
      (await viaGateway(server, 'echo', '/', { cookie: `microapp_app_session=${session}` })).status,
      401,
    );
  });

  test('WebSockets: the same sign-in and policy; the app gets an identity, never credentials', async () => {
    assert.equal((await upgradeVia(server, 'echo')).status, 401);
    const frank = await tokenFor(server, 'frank@example.com');
    assert.equal((await upgradeVia(server, 'echo', { authorization: `Bearer ${frank}` })).status, 404);
    const ivan = await tokenFor(server, 'ivan@example.com');
    assert.equal((await upgradeVia(server, 'echo', { authorization: `Bearer ${ivan}` })).status, 403);
    const platform = await upgradeVia(server, 'nope-not-an-app', { authorization: `Bearer ${dave}` });
    assert.equal(platform.status, 404);

    const open = await upgradeVia(server, 'echo', { authorization: `Bearer ${dave}`, cookie: 'a=b' });
    assert.equal(open.status, 101);
    const socket = open.socket!;
    assert.deepEqual(JSON.parse(await lineFrom(socket)), {
      identity: true,
      cookie: null,
      authorization: null,
    });
    socket.write('hello through the gateway\n');
    assert.equal(await lineFrom(socket), 'hello through the gateway');
    socket.destroy();

    // Each connection is usage once it closes (status 101); this one and the browser's above.
    let scraped = '';
    for (
      let i = 0;
      i < 100 && !/microapp_app_requests_total\{app="echo",code="1xx"\} 2\n/.test(scraped);
      i++
    ) {
      await new Promise((r) => setTimeout(r, 50));
      const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ivan}` } });
      scraped = await res.text();
    }
    assert.match(scraped, /microapp_app_requests_total\{app="echo",code="1xx"\} 2\n/);
  });

  test('forwarded requests are usage, in the database and in Prometheus metrics; refusals are not', async () => {
    const usage = async (name: string) => {
      const out = await cli(env, 'apps', 'usage', name, '--json');
      assert.equal(out.code, 0, out.stderr);
      return JSON.parse(out.stdout) as {
        requests: number;
        users: number;
        bytesOut: number;
        lastUsedAt: string | null;
        byVersion: { version: string; requests: number }[];
      };
    };
    // poll answered dave and erin; frank (another department) and ivan (policy) were refused.
    const poll = await usage('poll');
    assert.equal(poll.requests, 2);
    assert.equal(poll.users, 2);

    const before = await usage('echo');
    for (let i = 0; i < 3; i++)
      assert.equal((await viaGateway(server, 'echo', '/', { authorization: `Bearer ${dave}` })).status, 200);
    const after = await usage('echo');
    assert.equal(after.requests - before.requests, 3);
    assert.ok(after.bytesOut > before.bytesOut);
    assert.ok(Date.now() - Date.parse(after.lastUsedAt!) < 60_000);
    assert.deepEqual(after.byVersion, [{ version: '1.0.0', requests: after.requests }]);
    const human = await cli(env, 'apps', 'usage', 'echo', '--days', '7');
    assert.match(human.stdout, /requests: +\d+ from 1 person/);
    assert.equal((await cli(env, 'apps', 'usage', 'echo', '--days', '0')).code, 2);

    const frank = await tokenFor(server, 'frank@example.com');
    const hidden = await call(server, 'GET', '/api/v1/apps/echo/usage', { token: frank });
    assert.equal(hidden.status, 404, "another department cannot read an app's usage");
    assert.equal(
      (await call(server, 'GET', '/api/v1/apps/echo/usage?days=9999', { token: dave })).status,
      400,
    );

    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    const asCreator = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${dave}` } });
    assert.equal(asCreator.status, 403, 'traffic per app is for admins and auditors');
    const ivan = await tokenFor(server, 'ivan@example.com');
    const scrape = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ivan}` } });
    assert.equal(scrape.status, 200);
    const text = await scrape.text();
    assert.match(
      text,
      // Two of echo's requests were WebSocket connections (1xx).
      new RegExp(`microapp_app_requests_total\\{app="echo",code="2xx"\\} ${after.requests - 2}\\n`),
    );
    assert.match(text, /microapp_app_request_duration_seconds_bucket\{le="\+Inf",app="poll"\} 2\n/);
    assert.match(text, /microapp_process_resident_memory_bytes/);
    // Memory and CPU of each running sandbox, read over its whole process tree.
    const memory = Number(/microapp_app_memory_bytes\{app="echo"\} (\d+)/.exec(text)?.[1]);
    assert.ok(memory > 10 * 1024 * 1024, `a Node.js app holds more than 10 MiB resident, got ${memory}`);
    const cpu = Number(/microapp_app_cpu_seconds\{app="echo"\} ([\d.e-]+)/.exec(text)?.[1]);
    assert.ok(cpu > 0, `the app used some CPU to start, got ${cpu}`);
  });

  test('the Kubernetes driver writes objects that pass the Kubernetes schemas and keep the sandbox’s rules', async () => {
    const out = join(dir, 'gitops');
    const noOut = await cli(env, 'deploy', 'poll', '--driver', 'kubernetes');
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /needs --out DIR/);
    const r = await cli(env, 'deploy', 'poll', '--driver', 'kubernetes', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /poll@0\.1\.0 \(sha256:[0-9a-f]{64}\) is rendered for the namespace microapps/);
    const folder = join(out, 'apps', 'poll');
    assert.deepEqual(readdirSync(folder).sort(), [
      'deployment.yaml',
      'kustomization.yaml',
      'networkpolicy.yaml',
      'persistentvolumeclaim.yaml',
      'poddisruptionbudget.yaml',
      'service.yaml',
      'serviceaccount.yaml',
    ]);
    assert.deepEqual(readdirSync(join(out, 'namespace')).sort(), [
      'default-deny.yaml',
      'kustomization.yaml',
      'namespace.yaml',
    ]);
    const load = (f: string) => parse(readFileSync(join(folder, f), 'utf8'));
    // Validated against the Kubernetes OpenAPI schemas (kubernetes-models); validate() throws on a mismatch.
    const deployment = new Deployment(load('deployment.yaml'));
    deployment.validate();
    new Service(load('service.yaml')).validate();
    const policy = new NetworkPolicy(load('networkpolicy.yaml'));
    policy.validate();
    new PersistentVolumeClaim(load('persistentvolumeclaim.yaml')).validate();
    assert.throws(
      () => new Deployment({ ...load('deployment.yaml'), spec: { replicas: 'one' } }).validate(),
      /selector|replicas/,
      'the schemas do catch a broken object',
    );

    const pod = deployment.spec!.template.spec!;
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.deepEqual(pod.securityContext?.seccompProfile, { type: 'RuntimeDefault' });
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false, c.name);
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true, c.name);
      assert.equal(c.securityContext?.privileged, false, c.name);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], c.name);
      assert.ok(c.resources?.limits?.memory && c.resources.limits.cpu, c.name);
    }
    const { items } = (await call(server, 'GET', '/api/v1/apps/poll/versions', { token: dave })).body;
    const fetcher = pod.initContainers!.find((c) => c.name === 'fetch-artifact')!;
    assert.equal(
      fetcher.env!.find((e) => e.name === 'ARTIFACT_DIGEST')?.value,
      items[0].digest,
      'the init container accepts the signed artifact only',
    );
    assert.equal(
      fetcher.env!.find((e) => e.name === 'ARTIFACT_TOKEN_FILE')?.value,
      '/var/run/secrets/microapp/token',
      "the pod's own projected token, not a person's",
    );
    // In from the gateway only; out to the platform's broker, the platform and DNS only: no address blocks.
    assert.deepEqual(policy.spec!.policyTypes, ['Ingress', 'Egress']);
    const peers = [...policy.spec!.egress!, ...policy.spec!.ingress!].flatMap((rule) => [
      ...((rule as { to?: object[] }).to ?? []),
      ...((rule as { from?: object[] }).from ?? []),
    ]) as { ipBlock?: unknown; podSelector?: { matchLabels?: Record<string, string> } }[];
    assert.ok(peers.length >= 4 && peers.every((p) => !p.ipBlock && p.podSelector?.matchLabels));
    assert.deepEqual(
      [
        ...new Set(
          peers.map(
            (p) =>
              p.podSelector!.matchLabels!['app.kubernetes.io/name'] ?? p.podSelector!.matchLabels!['k8s-app'],
          ),
        ),
      ].sort(),
      ['kube-dns', 'microapp', 'microapp-egress'],
    );

    // The same rules as a deploy: only the owner or an admin, and it is audited.
    const bob = await tokenFor(server, 'bob@example.com');
    const refused = await call(server, 'POST', '/api/v1/apps/poll/kubernetes-manifests', {
      token: bob,
      body: { version: '0.1.0' },
    });
    assert.equal(refused.status, 403);
    const ivan = await tokenFor(server, 'ivan@example.com');
    const audited = (
      await call(server, 'GET', '/api/v1/audit/events?app=poll&action=deployment.rendered', { token: ivan })
    ).body.items;
    assert.equal(audited.length, 1);
    assert.equal(audited[0].summary.driver, 'kubernetes');
  });

  test('stop takes the app off the gateway; only its owner or an admin may deploy or stop it', async () => {
    const bob = await tokenFor(server, 'bob@example.com');
    assert.equal(
      (await call(server, 'DELETE', '/api/v1/apps/poll/deployments/current', { token: bob })).status,
      403,
    );
    assert.equal(
      (
        await call(server, 'POST', '/api/v1/apps/poll/deployments', {
          token: bob,
          body: { version: '0.1.0' },
        })
      ).status,
      403,
    );
    const stopped = await cli(env, 'stop', 'poll');
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal((await viaGateway(server, 'poll', '/', { authorization: `Bearer ${dave}` })).status, 503);
  });
});
