import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { clusterIssuer, clusterIssuerUrl as issuer, type PodTokenClaims } from './cluster-issuer.ts';
import { call, engines, lunchPoll, signInEveryone, startTestServer, type TestServer } from './harness.ts';
import { importEmptySnapshot, pollApp } from './replica-helpers.ts';

for (const engine of engines())
  describe(`a pod fetches its artifact with its own service-account token (${engine})`, () => {
    let server: TestServer;
    let dir: string;
    let digest: string;
    let bytes: Buffer;
    let sign: (claims?: PodTokenClaims) => Promise<string>;
    let foreign: (claims?: PodTokenClaims) => Promise<string>;
    const fetchArtifact = (token: string | null, d = digest) =>
      fetch(`${server.url}/api/v1/kubernetes/artifacts/${d}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'microapp-k8s-'));
      ({ sign, foreign } = await clusterIssuer(dir, {
        sub: 'system:serviceaccount:microapps:kept-poll',
        aud: 'microapp-artifacts',
      }));
      server = await startTestServer(engine, {
        env: {
          MICROAPP_KUBERNETES_TOKEN_ISSUER: issuer,
          MICROAPP_KUBERNETES_TOKEN_JWKS: join(dir, 'jwks.json'),
        },
      });
      const t = await signInEveryone(server);
      await importEmptySnapshot(server, t.carol);
      await pollApp(server, t.dave, 'other-poll', { publish: false });
      const published = (await pollApp(server, t.dave, 'kept-poll'))!;
      bytes = Buffer.from(published.artifact, 'base64');
      digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      assert.equal(published.digest, digest);
    });
    after(async () => {
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test("the app's own pod gets its signed artifact, in live and in preview", async () => {
      const res = await fetchArtifact(await sign());
      assert.equal(res.status, 200, await res.clone().text());
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
      const preview = await fetchArtifact(
        await sign({ sub: 'system:serviceaccount:microapps:kept-poll--preview' }),
      );
      assert.equal(preview.status, 200);
    });

    test('no token, a forged one, another audience, issuer or a long-lived one: refused and explained', async () => {
      const none = await fetchArtifact(null);
      assert.equal(none.status, 401);
      assert.match(((await none.json()) as { detail: string }).detail, /service-account token as Bearer/);
      for (const [token, why] of [
        [await foreign(), /signature/],
        [await sign({ aud: 'https://kubernetes.default.svc' }), /aud/],
        [await sign({ iss: 'https://evil.example' }), /iss/],
        [await sign({ lifetime: 365 * 86400 }), /only short-lived projected tokens/],
        [`${(await sign()).slice(0, -4)}AAAA`, /signature/],
      ] as const) {
        const res = await fetchArtifact(token);
        assert.equal(res.status, 401, String(why));
        assert.match(((await res.json()) as { detail: string }).detail, why);
      }
    });

    test("a pod of another app, or outside the apps' namespace, gets nothing of this one", async () => {
      const other = await fetchArtifact(await sign({ sub: 'system:serviceaccount:microapps:other-poll' }));
      assert.equal(other.status, 404, 'another app’s pod cannot read this artifact');
      const elsewhere = await fetchArtifact(await sign({ sub: 'system:serviceaccount:default:kept-poll' }));
      assert.equal(elsewhere.status, 403);
      assert.match(((await elsewhere.json()) as { detail: string }).detail, /namespace microapps/);
      const person = await fetchArtifact(await sign({ sub: 'dave@example.com' }));
      assert.equal(person.status, 403);
      const bad = await fetchArtifact(await sign(), 'sha256:ZZ');
      assert.equal(bad.status, 400);
    });

    test('a person’s API token is not a pod’s', async () => {
      const t = await signInEveryone(server);
      const res = await fetchArtifact(t.dave);
      assert.equal(res.status, 401);
    });

    test('a retired app’s pods get no artifact', async () => {
      const t = await signInEveryone(server);
      const gone = await call(server, 'POST', '/api/v1/apps/kept-poll/decommission', {
        token: t.dave,
        body: { reason: 'the team lunch moved to Thursdays' },
      });
      assert.equal(gone.status, 200, gone.text);
      const res = await fetchArtifact(await sign());
      assert.equal(res.status, 409);
      assert.match(
        ((await res.json()) as { detail: string }).detail,
        /^its pods get no artifact: kept-poll was retired/,
      );
    });
  });

test('a platform without the cluster’s issuer takes no pod token, and renders nothing on a moving image', async () => {
  const server = await startTestServer('sqlite');
  try {
    const res = await fetch(`${server.url}/api/v1/kubernetes/artifacts/sha256:${'a'.repeat(64)}`, {
      headers: { authorization: `Bearer ${'x'.repeat(40)}` },
    });
    assert.equal(res.status, 409);
    assert.match(((await res.json()) as { detail: string }).detail, /MICROAPP_KUBERNETES_TOKEN_ISSUER/);
    const t = await signInEveryone(server);
    await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll({ name: 'tagged-poll' }) });
    const rendered = await call(server, 'POST', '/api/v1/apps/tagged-poll/kubernetes-manifests', {
      token: t.dave,
      body: { version: '1.0.0' },
    });
    assert.equal(rendered.status, 409);
    assert.match(rendered.body.detail, /MICROAPP_KUBERNETES_RUNTIME_IMAGE/);
  } finally {
    await server.stop();
  }
});
