import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IService } from 'kubernetes-models/v1/Service';
import { stringify } from 'yaml';
import type { Manifest } from '../catalog/manifest-schema.ts';
import { defaultLimits } from './cgroups.ts';
import { startCommand } from './start-command.ts';

/** Where the rendered apps run and where the platform is, inside the cluster. */
export type KubernetesSettings = {
  /** The namespace the apps run in. */
  namespace: string;
  /** The platform's namespace: its gateway forwards to the apps, its broker is their only way out. */
  platformNamespace: string;
  /** The image apps run on (Node.js ≥ 22.21, so `NODE_USE_ENV_PROXY` sends fetch and http through the broker). */
  runtimeImage: string;
  /** The egress broker's Service in the platform namespace, and its port. */
  brokerService: string;
  brokerPort: number;
  /** The platform's Service (the API the init container fetches the artifact from), and its port. */
  platformService: string;
  platformPort: number;
};

export const defaultKubernetesSettings: KubernetesSettings = {
  namespace: 'microapps',
  platformNamespace: 'microapp-system',
  runtimeImage: 'node:22-bookworm-slim',
  brokerService: 'microapp-egress',
  brokerPort: 3128,
  platformService: 'microapp',
  platformPort: 8080,
};

export type RenderInput = {
  /** The object name: the app, or `NAME--preview`. */
  site: string;
  name: string;
  env: 'live' | 'preview';
  version: string;
  /** The signed artifact's digest (`sha256:…`): the init container refuses anything else. */
  digest: string;
  tier: string;
  owner: string;
  manifest: Manifest;
};

export type RenderedFile = { path: string; content: string; object: object };

/** The port the app listens on inside its pod (`PORT`); the template apps read it from the environment. */
const appPort = 8080;

/**
 * Fetches the artifact from the platform, checks its digest and unpacks it into /app, in the init container.
 * The platform API token it presents comes from the `microapp-artifact-reader` Secret (an `apps:read`
 * token of a service account); a different artifact, even a signed one, is refused.
 */
const fetchArtifact = `const { createHash } = require('node:crypto');
const { writeFileSync } = require('node:fs');
const { execFileSync } = require('node:child_process');
(async () => {
  const res = await fetch(process.env.ARTIFACT_URL, { headers: { authorization: 'Bearer ' + process.env.ARTIFACT_TOKEN } });
  if (!res.ok) throw new Error('the platform answered ' + res.status + ' for the artifact');
  const bytes = Buffer.from(await res.arrayBuffer());
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  if (digest !== process.env.ARTIFACT_DIGEST) throw new Error('artifact digest ' + digest + ' is not the signed ' + process.env.ARTIFACT_DIGEST);
  writeFileSync('/tmp/artifact.tar.gz', bytes);
  execFileSync('tar', ['-xzf', '/tmp/artifact.tar.gz', '-C', '/app', '--no-same-owner', '--no-same-permissions']);
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

/** `0.5` cores → `500m`. */
const cpuQuantity = (cores: number) => `${Math.round(cores * 1000)}m`;

/**
 * The Kubernetes driver: an app version as the objects Argo CD or Flux applies from a GitOps directory — a
 * Deployment (non-root, read-only root, no privilege escalation, all capabilities dropped, seccomp
 * RuntimeDefault, no service-account token, the manifest's memory and CPU as requests and limits, the
 * artifact fetched and checked against its signed digest by an init container), a Service, a
 * NetworkPolicy (in from the platform's gateway only; out to the broker, the platform and DNS only), the
 * data volume's claim, and references to the app's Secret (values never go into the repository), with a
 * kustomization listing them.
 */
export function renderKubernetes(input: RenderInput, settings: KubernetesSettings): RenderedFile[] {
  const { site, manifest } = input;
  const selector = { 'app.kubernetes.io/name': site, 'app.kubernetes.io/managed-by': 'microapp' };
  const labels = {
    ...selector,
    'app.kubernetes.io/version': input.version,
    'app.kubernetes.io/part-of': input.name,
    'microapp.dev/environment': input.env,
    'microapp.dev/tier': input.tier,
  };
  const annotations = {
    'microapp.dev/digest': input.digest,
    'microapp.dev/owner': input.owner,
    'microapp.dev/data-classes': manifest.dataClasses.join(','),
  };
  const metadata = { name: site, namespace: settings.namespace, labels, annotations };
  const memory = `${manifest.runtime?.memoryMb ?? defaultLimits.memoryMb}Mi`;
  const cpu = cpuQuantity(manifest.runtime?.cpu ?? defaultLimits.cpu);
  const secrets = manifest.secrets ?? [];
  const containerSecurity = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
  };
  const broker = `http://${settings.brokerService}.${settings.platformNamespace}.svc:${settings.brokerPort}`;
  const platform = `http://${settings.platformService}.${settings.platformNamespace}.svc:${settings.platformPort}`;
  const runtime = manifest.runtime;
  const start = startCommand(runtime);
  // The port the app asked for, else the default; in a pod PORT is always a TCP port.
  const port = runtime?.port ?? appPort;
  const probe = {
    httpGet: { path: runtime?.readiness?.path ?? '/', port: 'http' },
    periodSeconds: 10,
    timeoutSeconds: 2,
  };

  const deployment: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata,
    spec: {
      replicas: 1,
      revisionHistoryLimit: 3,
      // One instance holds the data volume at a time, as in the local driver.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selector },
      template: {
        metadata: { labels, annotations },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65534,
            runAsGroup: 65534,
            fsGroup: 65534,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          initContainers: [
            {
              name: 'fetch-artifact',
              image: settings.runtimeImage,
              command: ['node', '-e', fetchArtifact],
              env: [
                {
                  name: 'ARTIFACT_URL',
                  value: `${platform}/api/v1/apps/${input.name}/versions/${input.version}/artifact`,
                },
                { name: 'ARTIFACT_DIGEST', value: input.digest },
                {
                  name: 'ARTIFACT_TOKEN',
                  valueFrom: { secretKeyRef: { name: 'microapp-artifact-reader', key: 'token' } },
                },
              ],
              securityContext: containerSecurity,
              resources: {
                requests: { cpu: '50m', memory: '64Mi' },
                limits: { cpu: '500m', memory: '128Mi' },
              },
              volumeMounts: [
                { name: 'app', mountPath: '/app' },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          containers: [
            {
              name: 'app',
              image: settings.runtimeImage,
              command: ['node', ...start.nodeOptions, `/app/${start.entry}`, ...start.args],
              workingDir: '/app',
              ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
              env: [
                ...Object.entries(runtime?.env ?? {}).map(([name, value]) => ({ name, value })),
                { name: 'PORT', value: String(port) },
                { name: 'NODE_ENV', value: 'production' },
                { name: 'MICROAPP_APP', value: input.name },
                { name: 'MICROAPP_DATA_DIR', value: '/data' },
                { name: 'HOME', value: '/tmp' },
                // Every outbound call goes to the broker, which applies the approved egress, policy and DLP.
                { name: 'HTTP_PROXY', value: broker },
                { name: 'HTTPS_PROXY', value: broker },
                { name: 'NO_PROXY', value: '' },
                { name: 'NODE_USE_ENV_PROXY', value: '1' },
              ],
              securityContext: containerSecurity,
              resources: { requests: { cpu, memory }, limits: { cpu, memory } },
              readinessProbe: {
                ...probe,
                failureThreshold: Math.max(3, Math.ceil((runtime?.readiness?.timeoutSeconds ?? 10) / 10)),
              },
              livenessProbe: { ...probe, initialDelaySeconds: 10, failureThreshold: 3 },
              volumeMounts: [
                { name: 'app', mountPath: '/app', readOnly: true },
                { name: 'data', mountPath: '/data' },
                { name: 'tmp', mountPath: '/tmp' },
                ...(secrets.length ? [{ name: 'secrets', mountPath: '/run/secrets', readOnly: true }] : []),
              ],
            },
          ],
          volumes: [
            { name: 'app', emptyDir: { sizeLimit: '256Mi' } },
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
            { name: 'data', persistentVolumeClaim: { claimName: `${site}-data` } },
            ...(secrets.length
              ? [
                  {
                    name: 'secrets',
                    secret: {
                      secretName: `${site}-secrets`,
                      defaultMode: 0o400,
                      items: secrets.map((s) => ({ key: s, path: s })),
                    },
                  },
                ]
              : []),
          ],
        },
      },
    },
  };

  const service: IService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata,
    spec: {
      type: 'ClusterIP',
      selector,
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
    },
  };

  const inPlatform = (name: string) => ({
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': settings.platformNamespace } },
    podSelector: { matchLabels: { 'app.kubernetes.io/name': name } },
  });
  const networkPolicy: INetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata,
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress', 'Egress'],
      // In: the platform's gateway only (it checks the sign-in and the access policy first).
      ingress: [
        {
          from: [inPlatform(settings.platformService)],
          ports: [{ protocol: 'TCP', port }],
        },
      ],
      // Out: the broker (every outbound call), the platform (the artifact, at start) and DNS; nothing else.
      egress: [
        { to: [inPlatform(settings.brokerService)], ports: [{ protocol: 'TCP', port: settings.brokerPort }] },
        {
          to: [inPlatform(settings.platformService)],
          ports: [{ protocol: 'TCP', port: settings.platformPort }],
        },
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    },
  };

  const claim: IPersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { ...metadata, name: `${site}-data` },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  };

  const objects: [string, object][] = [
    ['deployment.yaml', deployment],
    ['service.yaml', service],
    ['networkpolicy.yaml', networkPolicy],
    ['persistentvolumeclaim.yaml', claim],
  ];
  const header = `# ${input.name}@${input.version} (${input.env}), ${input.digest}: rendered by microapp; do not edit, render again.\n`;
  const files: RenderedFile[] = objects.map(([file, object]) => ({
    path: `apps/${site}/${file}`,
    // Written out in full, without YAML anchors, so a reviewer reads each object as it is applied.
    content: header + stringify(object, { lineWidth: 0, aliasDuplicateObjects: false }),
    object,
  }));
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    namespace: settings.namespace,
    resources: objects.map(([file]) => file),
  };
  files.push({
    path: `apps/${site}/kustomization.yaml`,
    content: header + stringify(kustomization),
    object: kustomization,
  });
  if (secrets.length) {
    // The Secret itself is not rendered: its values must never reach the repository. Say what it must hold.
    const note = `# Secrets of ${site}\n\nThe Deployment reads the Secret \`${site}-secrets\` in the namespace \`${settings.namespace}\`, with the keys ${secrets.map((k) => `\`${k}\``).join(', ')}, as files in /run/secrets. Create it with your secret operator (External Secrets, Sealed Secrets, Vault) or kubectl; its values never belong in this repository, and microapp never writes them here.\n`;
    files.push({
      path: `apps/${site}/SECRETS.md`,
      content: note,
      object: { secretName: `${site}-secrets`, keys: secrets },
    });
  }
  return files;
}
