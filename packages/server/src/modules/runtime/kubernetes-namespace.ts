import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import { stringify } from 'yaml';
import type { KubernetesSettings } from './kubernetes-settings.ts';

export type RenderedFile = { path: string; content: string; object: object };

/** Written out in full, without YAML anchors, so a reviewer reads each object as it is applied. */
export const yamlOf = (header: string, object: object) =>
  header + stringify(object, { lineWidth: 0, aliasDuplicateObjects: false });

/**
 * The apps' namespace, under `namespace/`: Pod Security `restricted` enforced (and warned and audited), so
 * the cluster itself refuses a pod that would run as root or keep a capability, whatever renders it; and a
 * NetworkPolicy that denies every connection in and out of every pod there, so an app has only what its
 * own policy opens (its app's NetworkPolicy: in from the platform, out to the broker, the platform, DNS).
 */
export function renderAppsNamespace(settings: KubernetesSettings): RenderedFile[] {
  const header = `# The namespace microapp runs apps in: rendered by microapp; do not edit, render again.\n`;
  const namespace: INamespace = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: settings.namespace,
      labels: {
        'app.kubernetes.io/managed-by': 'microapp',
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/enforce-version': 'latest',
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/warn-version': 'latest',
        'pod-security.kubernetes.io/audit': 'restricted',
        'pod-security.kubernetes.io/audit-version': 'latest',
      },
    },
  };
  const denyAll: INetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: 'default-deny',
      namespace: settings.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'microapp' },
    },
    spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
  };
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: ['namespace.yaml', 'default-deny.yaml'],
  };
  return [
    { path: 'namespace/namespace.yaml', content: yamlOf(header, namespace), object: namespace },
    { path: 'namespace/default-deny.yaml', content: yamlOf(header, denyAll), object: denyAll },
    {
      path: 'namespace/kustomization.yaml',
      content: header + stringify(kustomization),
      object: kustomization,
    },
  ];
}
