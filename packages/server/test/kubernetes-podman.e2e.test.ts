// The Kubernetes driver's objects run a real app: the tracker template (Fastify, and better-sqlite3, a native
// module), its dependencies installed by the platform's build from a company npm mirror (on loopback, behind
// the company CA), built and signed by the platform, rendered for Kubernetes, played by podman (`podman kube
// play`) on a runtime image built here with buildah (node and the libraries it links, nothing else). The init
// container fetches the artifact over TLS with a service-account token as a kubelet would project it,
// checks its digest and unpacks it; the app, as user 65534 on a read-only root, answers only requests that
// carry an identity the platform signed, whether a request comes through the platform's gateway (which
// forwards to the app's Service) or straight to the pod. Its outbound calls go through the egress sidecar
// to the platform's broker, which lets through the API the app is approved for and nothing else.
//
// What podman cannot be here, and is patched in the played copy (each named below, nothing else changes):
// no cluster DNS or Services (the pod shares the host's network, so its init container reaches the
// platform's TLS address, and its egress sidecar the broker's, on loopback), no kubelet to project
// service-account tokens (the two the cluster's issuer would sign, the artifact's and the egress sidecar's,
// are written to folders the pod mounts, and its key is the one the platform trusts), no ConfigMaps without a cluster (the CA comes from a folder the same way), and the app listens on
// a socket in a folder instead of a port of the host, so nothing here listens beyond loopback (its probes,
// on that port, go with it). Podman 4.3 removes a finished init container while it still counts it as
// running, and then fails the pod (containers/podman#18477, fixed in 4.6): the played copy keeps it instead
// (`io.podman.annotations.init.container.type: always`). NetworkPolicies, the namespace's Pod Security admission and the disruption
// budget need a cluster: they are checked against the Kubernetes schemas in kubernetes.test.ts.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  request as httpRequest,
} from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  connect as netConnect,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { parse, stringify } from 'yaml';
import { packClosure, startRegistry } from '../../cli/test/npm-registry.ts';
import {
  buildFinished,
  call,
  companyCa,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';
import { buildRuntimeImage, contained } from './podman.ts';
import { trackerFromMirror } from './tracker-source.ts';

const name = 'kube-points';
const issuer = 'https://kubernetes.default.svc.cluster.local';

/** A request to the pod's socket, as the platform's gateway would make it. */
function ask(
  socketPath: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = httpRequest({ socketPath, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

describe('the Kubernetes objects run a real app, npm dependencies and a native module included (podman kube play)', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let front: Server;
  let relay: NetServer;
  let dir: string;
  let played: string;
  let socket: string;
  let digest: string;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let rates: HttpServer;
  const calls: { path: string; authorization: string | undefined }[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-kube-play-'));
    socket = join(dir, 'run', 'app.sock');
    // What a run stopped half-way left behind.
    await contained('podman', ['pod', 'rm', '--force', '--ignore', `${name}-pod-0`]);
    await contained('podman', ['volume', 'rm', '--force', `${name}-data`]);
    const image = await buildRuntimeImage();

    // The platform's TLS address inside the cluster: a certificate from the company CA, on loopback.
    const ca = companyCa(dir);
    let platform = '';
    front = createHttpsServer({ key: ca.key, cert: ca.cert }, (req, res) => {
      const upstream = httpRequest(
        `${platform}${req.url}`,
        { method: req.method, headers: { ...req.headers, host: new URL(platform).host } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));

    // The app's Service, as the gateway reaches it: a port on loopback relayed to the pod's socket.
    relay = createNetServer((client) => {
      const pod = netConnect(socket);
      client.pipe(pod).pipe(client);
      const close = () => {
        client.destroy();
        pod.destroy();
      };
      client.on('error', close);
      pod.on('error', close);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));

    // An outside API the app is approved to call.
    rates = createHttpServer((req, res) => {
      calls.push({ path: req.url ?? '', authorization: req.headers['proxy-authorization'] });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ eur: 1.08 }));
    });
    await new Promise<void>((r) => rates.listen(0, '127.0.0.1', r));
    writeFileSync(join(dir, 'egress.crt'), ca.cert);
    writeFileSync(join(dir, 'egress.key'), ca.key, { mode: 0o600 });

    // The cluster's service-account issuer: its public keys are what the platform checks pods' tokens with.
    const cluster = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(cluster.publicKey)), kid: 'cluster', alg: 'RS256', use: 'sig' };
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));

    // The company's npm mirror, behind the company CA: fastify and better-sqlite3 with their whole trees.
    registry = await startRegistry(await packClosure(['fastify', 'better-sqlite3']), {
      tls: { key: ca.key, cert: ca.cert },
      urlHost: 'localhost',
    });

    ({ server, t, stop } = await startBuildServer({
      MICROAPP_NPM_REGISTRY: `${registry.url}/`,
      MICROAPP_NPM_CA_FILE: ca.ca,
      MICROAPP_KUBERNETES_RUNTIME_IMAGE: image,
      MICROAPP_KUBERNETES_ARTIFACT_URL: `https://127.0.0.1:${(front.address() as AddressInfo).port}`,
      MICROAPP_KUBERNETES_TOKEN_ISSUER: issuer,
      MICROAPP_KUBERNETES_TOKEN_JWKS: join(dir, 'jwks.json'),
      MICROAPP_KUBERNETES_SERVICE_URL: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
      // The platform is its own egress broker's Deployment here, on loopback, with a company-issued certificate.
      MICROAPP_EGRESS_LISTEN: '127.0.0.1:0',
      MICROAPP_EGRESS_TLS_CERT_FILE: join(dir, 'egress.crt'),
      MICROAPP_EGRESS_TLS_KEY_FILE: join(dir, 'egress.key'),
      MICROAPP_DEV_EGRESS_HOSTS: `api.rates.example.com=127.0.0.1:${(rates.address() as AddressInfo).port}`,
    }));
    platform = server.url;

    // The tracker as its developer has it: made from the template, locked against the company mirror.
    const files = await trackerFromMirror(dir, name, { url: registry.url, caFile: ca.ca });
    // The app calls one outside API, which its registration names.
    files['microapp.yaml'] += 'integrations: { egress: [api.rates.example.com] }\n';
    // Registered, then built and signed by the platform's own pipeline, which installs from the mirror.
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: parse(files['microapp.yaml']!),
    });
    assert.equal(reg.status, 201, reg.text);
    if (reg.body.app.state !== 'approved') {
      const review = await call(server, 'POST', `/api/v1/apps/${name}/reviews`, {
        token: t.bob,
        body: { decision: 'approve' },
      });
      assert.equal(review.status, 200, review.text);
    }
    const started = await call(server, 'POST', `/api/v1/apps/${name}/builds`, {
      token: t.alice,
      body: { source: await sourceArchive(files) },
    });
    assert.equal(started.status, 202, started.text);
    const build = await buildFinished(server, name, started.body.id, t.alice);
    assert.equal(build.state, 'passed', JSON.stringify(build.steps, null, 2));
    assert.ok(
      registry.requests.some((r) => r.includes('better-sqlite3') && r.endsWith('.tgz')),
      'from the mirror',
    );
    const versions = await call(server, 'GET', `/api/v1/apps/${name}/versions`, { token: t.alice });
    const version = versions.body.items[0].version as string;
    digest = versions.body.items[0].digest;

    // The driver's objects, as Argo CD would apply them from the GitOps repository.
    const rendered = await call(server, 'POST', `/api/v1/apps/${name}/kubernetes-manifests`, {
      token: t.alice,
      body: { version },
    });
    assert.equal(rendered.status, 200, rendered.text);
    const objects = rendered.body.files as { path: string; content: string }[];
    const object = (file: string) => parse(objects.find((f) => f.path === `apps/${name}/${file}`)!.content);
    const deployment = object('deployment.yaml');
    const claim = object('persistentvolumeclaim.yaml');

    // What a kubelet would write: a projected token of the app's own service account, for ten minutes.
    const now = Math.floor(Date.now() / 1000);
    const projected = (audience: string) =>
      new SignJWT({
        'kubernetes.io': { namespace: 'microapps', serviceaccount: { name } },
      })
        .setProtectedHeader({ alg: 'RS256', kid: 'cluster' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(`system:serviceaccount:microapps:${name}`)
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(cluster.privateKey);
    for (const [folder, file, content] of [
      ['token', 'token', await projected('microapp-artifacts')],
      // The egress sidecar's own, for another audience.
      ['egress-token', 'token', await projected('microapp-egress')],
      ['ca', 'ca.crt', readFileSync(ca.ca, 'utf8')],
    ] as const) {
      mkdirSync(join(dir, folder), { mode: 0o755 });
      writeFileSync(join(dir, folder, file), content, { mode: 0o644 });
    }
    // The app (65534) makes its socket there; the folder's mode is set after the umask.
    mkdirSync(join(dir, 'run'));
    chmodSync(join(dir, 'run'), 0o777);

    // The patches podman needs (see the top of this file), and nothing else.
    const pod = deployment.spec.template.spec;
    pod.hostNetwork = true;
    deployment.metadata.annotations['io.podman.annotations.init.container.type'] = 'always';
    const byName = (volume: string) => pod.volumes.find((v: { name: string }) => v.name === volume);
    Object.assign(byName('artifact-token'), { projected: undefined, hostPath: { path: join(dir, 'token') } });
    Object.assign(byName('egress-token'), {
      projected: undefined,
      hostPath: { path: join(dir, 'egress-token') },
    });
    // The broker's Service, as the pod (on the host's network) reaches it here.
    const sidecar = pod.containers.find((c: { name: string }) => c.name === 'egress');
    sidecar.env.find((e: { name: string }) => e.name === 'BROKER_URL').value =
      `https://localhost:${server.internals.egressPort}`;
    Object.assign(byName('platform-ca'), { configMap: undefined, hostPath: { path: join(dir, 'ca') } });
    pod.volumes.push({ name: 'run', hostPath: { path: join(dir, 'run') } });
    const app = pod.containers.find((c: { name: string }) => c.name === 'app');
    app.env.find((e: { name: string }) => e.name === 'PORT').value = '/run/app/app.sock';
    app.volumeMounts.push({ name: 'run', mountPath: '/run/app' });
    app.ports = undefined;
    app.readinessProbe = undefined;
    app.livenessProbe = undefined;
    played = join(dir, `${name}.yaml`);
    writeFileSync(played, `${stringify(claim)}---\n${stringify(deployment)}`);
  });

  after(async () => {
    if (played) await contained('podman', ['kube', 'down', played]);
    await contained('podman', ['volume', 'rm', '--force', `${name}-data`]);
    await stop?.();
    await registry?.close();
    front?.close();
    relay?.close();
    rates?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the pod fetches its signed artifact over TLS with its own token, loads its native module and serves signed-in people only', async () => {
    const play = await contained('podman', ['kube', 'play', played]);
    if (play.code !== 0) {
      // What each of the pod's containers said, to know which one failed and why.
      const listed = await contained('podman', ['ps', '--all', '--pod', '--format', '{{.ID}} {{.Names}}']);
      const said = [];
      for (const line of listed.stdout
        .trim()
        .split('\n')
        .filter((l) => l.includes(name))) {
        const logs = await contained('podman', ['logs', line.split(' ')[0]!]);
        said.push(`${line}:\n${logs.stdout}${logs.stderr}`);
      }
      assert.fail(`${play.stdout}\n${play.stderr}\n${said.join('\n')}`);
    }
    // The app can only start once the init container has fetched, checked and unpacked its artifact.
    let first = { status: 0, body: '' };
    for (let i = 0; i < 120 && first.status === 0; i++) {
      first = await ask(socket, 'GET', '/').catch(() => ({ status: 0, body: '' }));
      if (first.status === 0) await new Promise((r) => setTimeout(r, 500));
    }
    const logs = await contained('podman', ['pod', 'logs', `${name}-pod-0`]);
    assert.equal(first.status, 401, `the app did not answer: ${logs.stdout}${logs.stderr}`);
    assert.match(first.body, /Sign in through the platform/);
    assert.match(logs.stdout + logs.stderr, new RegExp(`fetched and checked ${digest}`));

    // The native module loaded in the pod: SQLite answers (its health needs no identity).
    const health = await ask(socket, 'GET', '/healthz');
    assert.equal(health.status, 200, health.body);
    assert.match(JSON.parse(health.body).sqlite, /^3\.\d+/);
    // With the identity the platform's gateway signs for this app: an item kept in SQLite on the pod's volume.
    const user = { email: people.dave, name: 'Dave', department: 'finance', roles: ['user'] };
    const identity = await server.internals.identity(user, name);
    const saved = await ask(
      socket,
      'POST',
      '/items',
      {
        'x-microapp-identity': identity,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      'title=INV-20931+to+match',
    );
    assert.equal(saved.status, 201, saved.body);
    assert.equal(JSON.parse(saved.body).created_by, people.dave, 'the identity the platform signed');
    const listed = await ask(socket, 'GET', '/items.json', { 'x-microapp-identity': identity });
    assert.deepEqual(
      (JSON.parse(listed.body) as { title: string }[]).map((i) => i.title),
      ['INV-20931 to match'],
    );

    // An identity signed for another app, or by anyone but the platform, is not one.
    const foreign = await server.internals.identity(user, 'other-app');
    assert.equal((await ask(socket, 'GET', '/', { 'x-microapp-identity': foreign })).status, 401);
    const forged = `${identity.slice(0, identity.lastIndexOf('.'))}.${Buffer.alloc(64).toString('base64url')}`;
    assert.equal((await ask(socket, 'GET', '/', { 'x-microapp-identity': forged })).status, 401);

    // Through the platform's gateway, as people use it: signed in, allowed by the access policy, and the
    // identity the gateway signs is the one the app checks with the key its Deployment carries.
    const viaPlatform = await viaGateway(server, name, '/', { authorization: `Bearer ${t.dave}` });
    assert.equal(viaPlatform.status, 200, viaPlatform.body);
    assert.match(viaPlatform.body, /INV-20931 to match/);
    assert.equal((await viaGateway(server, name, '/')).status, 401, 'nobody signed in');

    // The container is what the Deployment says: user 65534, a read-only root.
    const who = await contained('podman', [
      'exec',
      `${name}-pod-0-app`,
      'node',
      '-e',
      "const fs=require('fs');console.log(process.getuid());try{fs.writeFileSync('/usr/bin/x','')}catch(e){console.log(e.code)}",
    ]);
    assert.equal(who.code, 0, who.stderr);
    assert.deepEqual(who.stdout.trim().split('\n'), ['65534', 'EROFS']);
  });
  test("the pod's calls go out through its egress sidecar and the broker, under the app's approvals", async () => {
    const since = new Date().toISOString();
    // As the app's own code calls out: Node with the preload the Deployment loads.
    const out = (script: string) =>
      contained('podman', [
        'exec',
        `${name}-pod-0-app`,
        'node',
        '--require',
        '/run/egress/shim.cjs',
        '-e',
        `(async () => { ${script} })().catch((e) => console.log('error', e.message))`,
      ]);
    const approved = await out(
      "const r = await fetch('http://api.rates.example.com/rates?currency=eur'); console.log(r.status, await r.text());",
    );
    assert.equal(approved.stdout.trim(), '200 {"eur":1.08}', approved.stderr);
    assert.equal(calls.at(-1)?.path, '/rates?currency=eur');
    assert.equal(calls.at(-1)?.authorization, undefined, "the pod's token stays with the broker");
    const count = calls.length;
    const refused = await out(
      "const r = await fetch('http://evil.example.net/collect'); console.log(r.status, r.headers.get('x-microapp-egress'));",
    );
    assert.equal(refused.stdout.trim(), '403 denied', refused.stderr);
    // The app's container holds no token, and the broker refuses a call that skips the sidecar (on a raw
    // TLS socket: the preload sends http and https themselves to the sidecar).
    const skipped = await out(
      `const fs = require('node:fs');
       console.log(fs.existsSync('/var/run/secrets/microapp-egress'));
       const s = require('node:tls').connect({ host: '127.0.0.1', port: ${server.internals.egressPort}, servername: 'localhost', rejectUnauthorized: false }, () =>
         s.write('GET /rates HTTP/1.1\\r\\nhost: api.rates.example.com\\r\\nconnection: close\\r\\n\\r\\n'));
       let answer = '';
       s.on('data', (d) => (answer += d));
       await new Promise((done) => s.on('end', done));
       console.log(answer.split(' ')[1]);`,
    );
    assert.deepEqual(skipped.stdout.trim().split('\n'), ['false', '407'], skipped.stderr);
    assert.equal(calls.length, count, 'nothing else reached the outside');
    // Recorded as the app's calls (the build's, to the npm mirror, came before).
    const rows = await server.db.kysely
      .selectFrom('app_egress')
      .select(['host', 'decision'])
      .where('at', '>=', since)
      .orderBy('at')
      .execute();
    assert.deepEqual(
      rows.map((r) => `${r.host} ${r.decision}`),
      ['api.rates.example.com allowed', 'evil.example.net denied'],
    );
  });
});
