import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Namespace, ServiceAccount } from 'kubernetes-models/v1';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.ts';
import type { Manifest } from '../src/modules/catalog/manifest-schema.ts';
import { renderKubernetes } from '../src/modules/runtime/kubernetes-manifests.ts';
import { defaultKubernetesSettings } from '../src/modules/runtime/kubernetes-settings.ts';

export const pinnedImage = `registry.example.com/node@sha256:${'cd'.repeat(32)}`;
const settings = { ...defaultKubernetesSettings, runtimeImage: pinnedImage };

const manifest = {
  name: 'recon',
  owner: 'alice@example.com',
  purpose: 'Reconcile bank statements against the ledger',
  dataClasses: ['internal', 'financial'],
  secrets: ['BANK_TOKEN', 'LEDGER_KEY'],
  runtime: { kind: 'node', entry: 'dist/main.js', memoryMb: 512, cpu: 0.25 },
} as Manifest;
const input = {
  site: 'recon--preview',
  name: 'recon',
  env: 'preview' as const,
  version: '1.2.0',
  digest: `sha256:${'ab'.repeat(32)}`,
  tier: 'high',
  owner: 'alice@example.com',
  manifest,
  identityPublicKey: '-----BEGIN PUBLIC KEY-----\nMFkw…\n-----END PUBLIC KEY-----\n',
};

test('Kubernetes objects: the manifest’s limits, entry and secrets; secret values never rendered', () => {
  const files = renderKubernetes(input, { ...settings, namespace: 'apps-prod' });
  assert.deepEqual(
    files.map((f) => f.path),
    [
      'namespace/namespace.yaml',
      'namespace/default-deny.yaml',
      'namespace/kustomization.yaml',
      'apps/recon--preview/deployment.yaml',
      'apps/recon--preview/service.yaml',
      'apps/recon--preview/networkpolicy.yaml',
      'apps/recon--preview/persistentvolumeclaim.yaml',
      'apps/recon--preview/serviceaccount.yaml',
      'apps/recon--preview/poddisruptionbudget.yaml',
      'apps/recon--preview/kustomization.yaml',
      'apps/recon--preview/SECRETS.md',
    ],
  );
  const file = (name: string) => files.find((f) => f.path === `apps/recon--preview/${name}`)!.content;
  const deployment = new Deployment(parse(file('deployment.yaml')));
  deployment.validate();
  assert.doesNotMatch(file('deployment.yaml'), /[&*]a\d/, 'no YAML anchors: each object reads as applied');
  assert.equal(deployment.metadata?.namespace, 'apps-prod');
  assert.equal(deployment.metadata?.labels?.['microapp.dev/environment'], 'preview');
  const pod = deployment.spec!.template.spec!;
  const app = pod.containers.find((c) => c.name === 'app')!;
  assert.deepEqual(app.command, ['node', '--require', '/run/egress/shim.cjs', '/app/dist/main.js']);
  assert.deepEqual(app.resources, {
    requests: { cpu: '250m', memory: '512Mi' },
    limits: { cpu: '250m', memory: '512Mi' },
  });
  const secrets = pod.volumes!.find((v) => v.name === 'secrets')!.secret!;
  assert.equal(secrets.secretName, 'recon--preview-secrets');
  assert.equal(secrets.defaultMode, 0o400);
  assert.deepEqual(
    secrets.items!.map((i) => i.key),
    ['BANK_TOKEN', 'LEDGER_KEY'],
  );
  assert.ok(app.volumeMounts!.some((m) => m.mountPath === '/run/secrets' && m.readOnly));
  assert.ok(
    !files.some((f) => f.content.includes('kind: Secret\n')),
    'a Secret with values is never rendered',
  );
  assert.match(file('SECRETS.md'), /`BANK_TOKEN`, `LEDGER_KEY`/);
  assert.deepEqual(parse(file('kustomization.yaml')).resources, [
    'deployment.yaml',
    'service.yaml',
    'networkpolicy.yaml',
    'persistentvolumeclaim.yaml',
    'serviceaccount.yaml',
    'poddisruptionbudget.yaml',
  ]);
});

test('Kubernetes objects run for real: images by digest, probes without an identity, the identity key, an app-scoped artifact token', () => {
  const files = renderKubernetes(input, settings);
  const file = (name: string) => parse(files.find((f) => f.path.endsWith(`/${name}`))!.content);
  const pod = new Deployment(file('deployment.yaml')).spec!.template.spec!;
  const fetcher = pod.initContainers!.find((c) => c.name === 'fetch-artifact');
  const app = pod.containers.find((c) => c.name === 'app');
  for (const c of [...pod.initContainers!, ...pod.containers])
    assert.equal(c.image, pinnedImage, `${c.name} runs on the pinned image`);
  // The kubelet calls the pod directly, without a signed identity: no path declared, so a TCP check.
  assert.deepEqual(app!.readinessProbe?.tcpSocket, { port: 'http' });
  assert.equal(app!.readinessProbe?.httpGet, undefined);
  const declared = renderKubernetes(
    {
      ...input,
      manifest: { ...manifest, runtime: { ...manifest.runtime!, readiness: { path: '/_microapp/health' } } },
    } as typeof input,
    settings,
  );
  const probed = new Deployment(
    parse(declared.find((f) => f.path.endsWith('deployment.yaml'))!.content),
  ).spec!.template.spec!.containers.find((c) => c.name === 'app')!;
  assert.deepEqual(probed.livenessProbe?.httpGet, { path: '/_microapp/health', port: 'http' });
  const env = Object.fromEntries(app!.env!.map((e) => [e.name, e.value]));
  assert.equal(env.MICROAPP_IDENTITY_PUBLIC_KEY, input.identityPublicKey);
  assert.equal(env.MICROAPP_APP, 'recon');
  assert.equal(env.MICROAPP_OWNER, 'alice@example.com');

  // The artifact: over https, with the pod's own projected token (ten minutes, its own audience).
  const fetchEnv = Object.fromEntries(fetcher!.env!.map((e) => [e.name, e.value]));
  assert.equal(
    fetchEnv.ARTIFACT_URL,
    `https://microapp.microapp-system.svc/api/v1/kubernetes/artifacts/${input.digest}`,
  );
  assert.ok(!fetcher!.env!.some((e) => e.valueFrom), 'no token from a Secret');
  assert.equal(pod.serviceAccountName, 'recon--preview');
  assert.equal(pod.automountServiceAccountToken, false);
  const projected = pod.volumes!.find((v) => v.name === 'artifact-token')!.projected!.sources![0]!
    .serviceAccountToken!;
  assert.deepEqual(projected, { audience: 'microapp-artifacts', expirationSeconds: 600, path: 'token' });
  assert.ok(fetcher!.volumeMounts!.some((m) => m.name === 'artifact-token'));
  assert.ok(!app!.volumeMounts!.some((m) => m.name === 'artifact-token'), 'the app never sees the token');
  const account = new ServiceAccount(file('serviceaccount.yaml'));
  account.validate();
  assert.equal(account.metadata?.name, 'recon--preview');
  assert.equal(account.automountServiceAccountToken, false);

  // The namespace: Pod Security restricted enforced, and everything denied but what each app opens.
  const namespace = new Namespace(file('namespace.yaml'));
  namespace.validate();
  assert.equal(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  const deny = new NetworkPolicy(file('default-deny.yaml'));
  deny.validate();
  assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  const budget = new PodDisruptionBudget(file('poddisruptionbudget.yaml'));
  budget.validate();
  assert.equal(budget.spec?.minAvailable, 1);
  assert.deepEqual(
    budget.spec?.selector?.matchLabels,
    new Deployment(file('deployment.yaml')).spec!.selector.matchLabels,
  );

  // Without a pinned image nothing is rendered, and a tag is refused as a setting.
  assert.throws(
    () => renderKubernetes(input, defaultKubernetesSettings),
    /MICROAPP_KUBERNETES_RUNTIME_IMAGE/,
  );
  assert.throws(
    () => loadConfig({ dev: true }, { MICROAPP_KUBERNETES_RUNTIME_IMAGE: 'node:22-bookworm-slim' }),
    /MICROAPP_KUBERNETES_RUNTIME_IMAGE must be an image pinned by digest/,
  );
  assert.throws(
    () =>
      loadConfig({ dev: true }, { MICROAPP_KUBERNETES_ARTIFACT_URL: 'http://microapp.microapp-system.svc' }),
    /MICROAPP_KUBERNETES_ARTIFACT_URL must be the platform's https address/,
  );
  assert.throws(
    () => loadConfig({ dev: true }, { MICROAPP_KUBERNETES_TOKEN_ISSUER: 'https://kubernetes.default.svc' }),
    /MICROAPP_KUBERNETES_TOKEN_ISSUER and MICROAPP_KUBERNETES_TOKEN_JWKS go together/,
  );
  // The broker for the cluster's pods: an address, the pods' token issuer, and TLS, or the start stops.
  assert.throws(
    () => loadConfig({ dev: true }, { MICROAPP_EGRESS_LISTEN: 'everywhere' }),
    /MICROAPP_EGRESS_LISTEN is where the broker takes the cluster's pods' calls, such as 0.0.0.0:3128/,
  );
  assert.throws(
    () => loadConfig({ dev: true }, { MICROAPP_EGRESS_LISTEN: '0.0.0.0:3128' }),
    (e: Error) =>
      /set MICROAPP_KUBERNETES_TOKEN_ISSUER and MICROAPP_KUBERNETES_TOKEN_JWKS too/.test(e.message) &&
      /MICROAPP_EGRESS_LISTEN serves the cluster's pods over TLS only/.test(e.message),
  );
});
