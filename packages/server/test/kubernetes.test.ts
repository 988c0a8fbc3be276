import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { parse } from 'yaml';
import type { Manifest } from '../src/modules/catalog/manifest-schema.ts';
import { defaultKubernetesSettings, renderKubernetes } from '../src/modules/runtime/kubernetes-manifests.ts';

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
};

test('Kubernetes objects: the manifest’s limits, entry and secrets; secret values never rendered', () => {
  const files = renderKubernetes(input, { ...defaultKubernetesSettings, namespace: 'apps-prod' });
  assert.deepEqual(
    files.map((f) => f.path),
    [
      'apps/recon--preview/deployment.yaml',
      'apps/recon--preview/service.yaml',
      'apps/recon--preview/networkpolicy.yaml',
      'apps/recon--preview/persistentvolumeclaim.yaml',
      'apps/recon--preview/kustomization.yaml',
      'apps/recon--preview/SECRETS.md',
    ],
  );
  const deployment = new Deployment(parse(files[0]!.content));
  deployment.validate();
  assert.doesNotMatch(files[0]!.content, /[&*]a\d/, 'no YAML anchors: each object reads as applied');
  assert.equal(deployment.metadata?.namespace, 'apps-prod');
  assert.equal(deployment.metadata?.labels?.['microapp.dev/environment'], 'preview');
  const pod = deployment.spec!.template.spec!;
  const app = pod.containers[0]!;
  assert.deepEqual(app.command, ['node', '/app/dist/main.js']);
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
  assert.ok(!files.some((f) => f.content.includes('kind: Secret')), 'a Secret with values is never rendered');
  assert.match(files[5]!.content, /`BANK_TOKEN`, `LEDGER_KEY`/);
  const kustomization = parse(files[4]!.content);
  assert.deepEqual(kustomization.resources, [
    'deployment.yaml',
    'service.yaml',
    'networkpolicy.yaml',
    'persistentvolumeclaim.yaml',
  ]);
});
