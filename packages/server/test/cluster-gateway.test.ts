// The gateway in front of apps the Kubernetes driver runs: once a version is rendered, requests for the app
// go to its Service with the same sign-in, access policy and holds as a local app, and with an identity the
// app checks with the key its Deployment carries. A stand-in Service on loopback plays the app's pods.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { importSPKI, jwtVerify } from 'jose';
import { parse } from 'yaml';
import { createClusterRoutes } from '../src/modules/runtime/cluster-routes.ts';
import {
  call,
  engines,
  people,
  signInEveryone,
  startTestServer,
  type TestServer,
  viaGateway,
} from './harness.ts';
import { importEmptySnapshot, pollApp } from './replica-helpers.ts';

for (const engine of engines())
  describe(`the gateway forwards to an app's Service on the cluster (${engine})`, () => {
    let server: TestServer;
    let service: Server;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    let publicKeyPem: string;
    const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
    // The stand-in closes a kept connection as the next request arrives on it, as an app whose idle
    // timeout ran out at that moment does: the request is lost without an answer.
    let dropKept = false;
    const served = new WeakMap<object, number>();

    before(async () => {
      service = createServer((req, res) => {
        const before = served.get(req.socket) ?? 0;
        served.set(req.socket, before + 1);
        if (dropKept && before > 0) return req.socket.destroy();
        seen.push({ path: req.url ?? '', headers: req.headers });
        res.setHeader('content-type', 'text/plain');
        res.end('from the pod');
      });
      await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
      server = await startTestServer(engine, {
        env: {
          MICROAPP_KUBERNETES_RUNTIME_IMAGE: `registry.example.com/node@sha256:${'cd'.repeat(32)}`,
          MICROAPP_KUBERNETES_SERVICE_URL: `http://127.0.0.1:${(service.address() as AddressInfo).port}`,
        },
      });
      t = await signInEveryone(server);
      await importEmptySnapshot(server, t.carol);
      await pollApp(server, t.dave, 'cluster-poll');
    });
    after(async () => {
      await server?.stop();
      service?.close();
    });

    test('before a render the app is not running; after it, a signed-in colleague reaches the pod', async () => {
      const before = await viaGateway(server, 'cluster-poll', '/', { authorization: `Bearer ${t.alice}` });
      assert.equal(before.status, 503, before.body);
      assert.equal(seen.length, 0);

      const rendered = await call(server, 'POST', '/api/v1/apps/cluster-poll/kubernetes-manifests', {
        token: t.dave,
        body: { version: '1.0.0' },
      });
      assert.equal(rendered.status, 200, rendered.text);
      const deployment = parse(
        (rendered.body.files as { path: string; content: string }[]).find(
          (f) => f.path === 'apps/cluster-poll/deployment.yaml',
        )!.content,
      );
      publicKeyPem = deployment.spec.template.spec.containers
        .find((c: { name: string }) => c.name === 'app')
        .env.find((e: { name: string }) => e.name === 'MICROAPP_IDENTITY_PUBLIC_KEY').value;

      const res = await viaGateway(server, 'cluster-poll', '/lunch?day=friday', {
        authorization: `Bearer ${t.alice}`,
        // A caller cannot name itself: the gateway replaces whatever identity it sends.
        'x-microapp-identity': 'forged.by.alice',
      });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.body, 'from the pod');
      const got = seen.at(-1)!;
      assert.equal(got.path, '/lunch?day=friday');
      assert.equal(got.headers.authorization, undefined, 'the caller’s token stays at the gateway');
      // The identity verifies with the key the Deployment gives the app, for this app only.
      const { payload } = await jwtVerify(
        String(got.headers['x-microapp-identity']),
        await importSPKI(publicKeyPem, 'ES256'),
        { audience: 'cluster-poll' },
      );
      assert.equal(payload.email, people.alice);
      assert.equal(payload.department, 'finance');
    });

    test('nobody signed in, another department, or a preview nobody rendered: refused at the gateway', async () => {
      const count = seen.length;
      const anonymous = await viaGateway(server, 'cluster-poll', '/');
      assert.equal(anonymous.status, 401);
      const marketing = await viaGateway(server, 'cluster-poll', '/', { authorization: `Bearer ${t.frank}` });
      // An app restricted to finance is not even shown to marketing.
      assert.equal(marketing.status, 404, marketing.body);
      const preview = await viaGateway(server, 'cluster-poll--preview', '/', {
        authorization: `Bearer ${t.dave}`,
      });
      assert.equal(preview.status, 503, preview.body);
      assert.equal(seen.length, count, 'none of them reached the pod');
    });

    test('the Service address names the app and its namespace', async () => {
      const app = await call(server, 'GET', '/api/v1/apps/cluster-poll', { token: t.dave });
      const routes = createClusterRoutes({
        db: server.db.kysely,
        namespace: 'microapps',
        serviceUrl: 'http://{site}.{namespace}.svc.cluster.local',
      });
      const found = await routes.find(app.body.id, 'cluster-poll', 'live');
      assert.deepEqual(found?.cluster, { host: 'cluster-poll.microapps.svc.cluster.local', port: 80 });
      assert.equal(found?.version, '1.0.0');
      assert.equal(await routes.find(app.body.id, 'cluster-poll--preview', 'preview'), null);
    });

    test('a kept connection the app closed: a GET goes again on a new one, a POST is never sent twice', async () => {
      const bearer = { authorization: `Bearer ${t.alice}` };
      // A request that leaves its connection kept, for the next one to go out on.
      const warm = async () => {
        dropKept = false;
        const res = await viaGateway(server, 'cluster-poll', '/warm', bearer);
        assert.equal(res.status, 200, res.body);
        dropKept = true;
      };
      try {
        await warm();
        const count = seen.length;
        const again = await viaGateway(server, 'cluster-poll', '/again', bearer);
        assert.equal(again.status, 200, again.body);
        assert.equal(seen.length, count + 1);
        assert.equal(seen.at(-1)!.path, '/again');
        // The app may have acted on a request with a body before it closed: the caller hears so.
        await warm();
        const posted = await viaGateway(
          server,
          'cluster-poll',
          '/orders',
          { ...bearer, 'content-type': 'application/json' },
          { method: 'POST', body: '{"lunch":"soup"}' },
        );
        assert.equal(posted.status, 502, posted.body);
        assert.equal(seen.at(-1)!.path, '/warm', 'the POST was not sent a second time');
      } finally {
        dropKept = false;
      }
    });

    test('a retired app is held at the gateway: its pods get no request', async () => {
      const count = seen.length;
      const gone = await call(server, 'POST', '/api/v1/apps/cluster-poll/decommission', {
        token: t.dave,
        body: { reason: 'the team lunch moved to Thursdays' },
      });
      assert.equal(gone.status, 200, gone.text);
      const res = await viaGateway(server, 'cluster-poll', '/', { authorization: `Bearer ${t.alice}` });
      assert.ok(res.status === 410 || res.status === 503, `${res.status} ${res.body}`);
      assert.equal(seen.length, count);
    });
  });
