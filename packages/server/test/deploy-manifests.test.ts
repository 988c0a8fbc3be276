// The platform's own Kubernetes manifests (deploy/kubernetes): every object valid against the Kubernetes
// schemas (kubernetes-models), the pieces fitting together (selectors, probes, the Secrets and files they
// name), and the settings they hold accepted by the server's own checks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { defaultKubernetesSettings } from '../src/modules/runtime/kubernetes-settings.ts';
import { companyCa } from './harness.ts';

const dir = resolve(import.meta.dirname, '../../../deploy/kubernetes');
const kinds: Record<string, new (data: never) => { validate(): void }> = {
  Namespace,
  ServiceAccount,
  ConfigMap,
  PersistentVolumeClaim,
  Deployment,
  Service,
  PodDisruptionBudget,
  NetworkPolicy,
};

// Objects as read from YAML, checked below.
type Any = any;

function objects(): Any[] {
  const kustomization = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]!.toJS();
  return (kustomization.resources as string[]).flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS()),
  );
}

test('every object of deploy/kubernetes is valid against the Kubernetes schemas, and they fit together', () => {
  const all = objects();
  assert.deepEqual(
    all.map((o) => o.kind),
    [
      'Namespace',
      'ServiceAccount',
      'ConfigMap',
      'Deployment',
      'Service',
      'PodDisruptionBudget',
      'NetworkPolicy',
      // The egress broker (egress.yaml).
      'Deployment',
      'Service',
      'PodDisruptionBudget',
      'NetworkPolicy',
    ],
  );
  for (const o of all) new kinds[o.kind]!(o as never).validate();
  const of = (kind: string) => all.find((o) => o.kind === kind)!;
  const deployment = of('Deployment');
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  assert.equal(deployment.spec.replicas, 3);
  assert.equal(of('PodDisruptionBudget').spec.minAvailable, 2, 'a drain takes one replica at a time');
  for (const selector of [of('Service').spec.selector, of('PodDisruptionBudget').spec.selector.matchLabels])
    assert.deepEqual(selector, deployment.spec.selector.matchLabels);
  assert.deepEqual(deployment.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'microapp' });
  // The apps' NetworkPolicy (the Kubernetes driver) lets the apps' pods reach exactly these pods and port.
  assert.equal(container.ports[0].containerPort, 8443);
  assert.equal(of('NetworkPolicy').spec.ingress[0].ports[0].port, 8443);
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  assert.equal(container.readinessProbe.httpGet.scheme, 'HTTPS');
  assert.ok(container.resources.requests.memory && container.resources.limits.memory);
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
  // Builds' sandboxes mount a /proc of their own (platform-image.e2e.test.ts runs one in the image); Kubernetes
  // accepts an unmasked /proc only in a pod with a user namespace of its own.
  assert.equal(container.securityContext.procMount, 'Unmasked');
  assert.equal(pod.hostUsers, false);
  // Replicas share nothing on disk: no claim, every volume the pod's own or a secret or a ConfigMap; the
  // repositories are shared through PostgreSQL and the blob registry.
  assert.ok(!all.some((o) => o.kind === 'PersistentVolumeClaim'));
  assert.ok(
    pod.volumes.every((v: Any) => v.emptyDir || v.secret || v.configMap),
    JSON.stringify(pod.volumes),
  );
  const settings = of('ConfigMap').data;
  assert.ok(settings.MICROAPP_BLOB_REGISTRY);
  assert.equal(settings.MICROAPP_GIT_STORE, 'shared');
  // Secrets by reference only: none is written here, and each key file is for the platform's user alone.
  assert.ok(!all.some((o) => o.kind === 'Secret'));
  for (const d of all.filter((o) => o.kind === 'Deployment'))
    for (const v of d.spec.template.spec.volumes.filter((v: Any) => v.secret))
      assert.equal(v.secret.defaultMode, 0o400, `${d.metadata.name}: ${v.name}`);
  const secretRefs = container.env.filter((e: Any) => e.valueFrom?.secretKeyRef).map((e: Any) => e.name);
  assert.deepEqual(secretRefs.sort(), ['DATABASE_URL', 'MICROAPP_OIDC_CLIENT_SECRET']);
  const docs = readFileSync(resolve(dir, '../../docs/operations.md'), 'utf8');
  const broker = all.filter((o) => o.kind === 'Deployment')[1];
  for (const name of [
    ...pod.volumes.filter((v: Any) => v.secret).map((v: Any) => v.secret.secretName),
    ...broker.spec.template.spec.volumes.filter((v: Any) => v.secret).map((v: Any) => v.secret.secretName),
    ...container.env
      .filter((e: Any) => e.valueFrom?.secretKeyRef)
      .map((e: Any) => e.valueFrom.secretKeyRef.name),
  ])
    assert.match(
      docs,
      new RegExp(`create secret \\w+ ${name}\\b`),
      `docs/operations.md shows how to create ${name}`,
    );
  // Every file a setting names is one the pod mounts.
  const mounts = container.volumeMounts.map((m: Any) => m.mountPath as string);
  for (const e of container.env.filter((e: Any) => /_FILE$/.test(e.name)))
    assert.ok(
      mounts.some((m: string) => e.value.startsWith(`${m}/`)),
      `${e.name} (${e.value}) is on a mounted volume`,
    );
});

test("the egress broker is where the apps' objects send their pods: its name, port, labels and certificate", () => {
  const all = objects();
  const named = (kind: string, name: string) =>
    all.find((o) => o.kind === kind && o.metadata.name === name) as Any;
  const settings = defaultKubernetesSettings;
  const deployment = named('Deployment', settings.brokerService);
  const service = named('Service', settings.brokerService);
  const budget = named('PodDisruptionBudget', settings.brokerService);
  const policy = named('NetworkPolicy', settings.brokerService);
  // The apps' NetworkPolicy selects the broker's pods by this label, and reaches them on this port.
  const labels = { 'app.kubernetes.io/name': settings.brokerService };
  assert.deepEqual(deployment.spec.selector.matchLabels, labels);
  assert.deepEqual(service.spec.selector, labels);
  assert.deepEqual(budget.spec.selector.matchLabels, labels);
  assert.deepEqual(service.spec.ports[0].port, settings.brokerPort);
  assert.equal(policy.spec.ingress[0].ports[0].port, settings.brokerPort);
  assert.deepEqual(policy.spec.ingress[0].from, [
    { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': settings.namespace } } },
  ]);
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  const env = Object.fromEntries(container.env.map((e: Any) => [e.name, e.value]));
  assert.equal(env.MICROAPP_EGRESS_LISTEN, `0.0.0.0:${settings.brokerPort}`);
  assert.equal(container.ports.find((p: Any) => p.name === 'egress').containerPort, settings.brokerPort);
  const mounts = container.volumeMounts.map((m: Any) => m.mountPath as string);
  for (const e of container.env.filter((e: Any) => /_FILE$/.test(e.name)))
    assert.ok(
      mounts.some((m: string) => e.value.startsWith(`${m}/`)),
      `${e.name} (${e.value}) is on a mounted volume`,
    );
  assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  assert.ok(budget.spec.minAvailable >= 1 && deployment.spec.replicas > budget.spec.minAvailable);
});

test("the settings deploy/kubernetes holds pass the server's own checks", () => {
  const work = mkdtempSync(join(tmpdir(), 'microapp-deploy-'));
  try {
    const ca = companyCa(work);
    const settings = objects().find((o) => o.kind === 'ConfigMap').data as Record<string, string>;
    const file = (name: string, content: string) => {
      writeFileSync(join(work, name), content, { mode: 0o600 });
      return join(work, name);
    };
    // What the Secrets and the ConfigMap of the cluster's keys hold, as files here.
    const secrets = {
      DATABASE_URL: 'postgres://microapp@db.internal:5432/microapp',
      MICROAPP_OIDC_CLIENT_SECRET: 'from-the-microapp-oidc-secret',
      MICROAPP_KEK_FILE: file('kek', `${Buffer.alloc(32, 7).toString('base64')}\n`),
      MICROAPP_TLS_CERT_FILE: file('tls.crt', ca.cert),
      MICROAPP_TLS_KEY_FILE: file('tls.key', ca.key),
      MICROAPP_BLOB_REGISTRY_PASSWORD_FILE: file('password', 'registry-password\n'),
      MICROAPP_KUBERNETES_TOKEN_JWKS: file('jwks.json', '{"keys":[]}'),
    };
    const config = loadConfig({}, { ...settings, ...secrets });
    assert.equal(config.dev, false);
    assert.equal(config.kubernetes.namespace, 'microapps');
    assert.match(config.kubernetes.runtimeImage ?? '', /@sha256:[0-9a-f]{64}$/);
    assert.equal(config.kubernetes.serviceUrl, 'http://{site}.{namespace}.svc.cluster.local');
    assert.ok(config.tls);
    // The broker's pods: the same settings with their own listener and certificate.
    const broker = objects().find((o) => o.kind === 'Deployment' && o.metadata.name === 'microapp-egress');
    const brokerEnv = Object.fromEntries(
      (broker.spec.template.spec.containers[0].env as Any[])
        .filter((e) => e.value)
        .map((e) => [e.name, e.value]),
    );
    const egress = loadConfig(
      {},
      {
        ...settings,
        ...secrets,
        MICROAPP_EGRESS_LISTEN: brokerEnv.MICROAPP_EGRESS_LISTEN,
        MICROAPP_JOBS: brokerEnv.MICROAPP_JOBS,
        MICROAPP_EGRESS_TLS_CERT_FILE: file('egress.crt', ca.cert),
        MICROAPP_EGRESS_TLS_KEY_FILE: file('egress.key', ca.key),
      },
    );
    assert.deepEqual(egress.kubernetes.brokerListen, { host: '0.0.0.0', port: 3128 });
    assert.equal(egress.egressTls?.certFile, join(work, 'egress.crt'));
    assert.equal(egress.jobs.enabled, false);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('kustomize builds it, with the image by digest', {
  skip: !hasKubectl() && 'kubectl is not installed',
}, () => {
  const built = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  const rendered = parseAllDocuments(built.stdout).map((d) => d.toJS());
  assert.equal(rendered.length, 11);
  for (const o of rendered.filter((o) => o.kind !== 'Namespace'))
    assert.equal(o.metadata.namespace, 'microapp-system', o.kind);
  const deployment = rendered.find((o) => o.kind === 'Deployment');
  assert.match(
    deployment.spec.template.spec.containers[0].image,
    /^registry\.example\.com\/microapp@sha256:[0-9a-f]{64}$/,
  );
});

function hasKubectl(): boolean {
  return spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
}
