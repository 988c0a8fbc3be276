import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { stringify } from 'yaml';
import type { Manifest } from '../catalog/manifest-schema.ts';
import { defaultLimits } from './cgroups.ts';
import { fetchArtifact } from './kubernetes-fetch.ts';
import { type RenderedFile, renderAppsNamespace, yamlOf } from './kubernetes-namespace.ts';
import {
  artifactTokenAudience,
  artifactTokenSeconds,
  egressTokenAudience,
  type KubernetesSettings,
} from './kubernetes-settings.ts';
import { egressShim, egressSidecar, waitForSocket, writeShim } from './kubernetes-sidecar.ts';
import { startCommand } from './start-command.ts';

export type { RenderedFile } from './kubernetes-namespace.ts';
export { defaultKubernetesSettings, type KubernetesSettings } from './kubernetes-settings.ts';

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
  /** The public key the app checks each request's X-Microapp-Identity with (PEM): the gateway's. */
  identityPublicKey: string;
};

/** The port the app listens on inside its pod (`PORT`); the template apps read it from the environment. */
const appPort = 8080;

/** The preload writer's and the egress sidecar's: a relay, small beside any app. */
const sidecarResources = {
  requests: { cpu: '20m', memory: '32Mi' },
  limits: { cpu: '200m', memory: '96Mi' },
};

/** A volume with the pod's own service-account token for `audience`, ten minutes long, renewed by the kubelet. */
const projectedToken = (name: string, audience: string) => ({
  name,
  projected: {
    defaultMode: 0o440,
    sources: [{ serviceAccountToken: { audience, expirationSeconds: artifactTokenSeconds, path: 'token' } }],
  },
});

/** `0.5` cores → `500m`. */
const cpuQuantity = (cores: number) => `${Math.round(cores * 1000)}m`;

/**
 * The Kubernetes driver: an app version as the objects Argo CD or Flux applies from a GitOps directory — a
 * Deployment (non-root, read-only root, no privilege escalation, all capabilities dropped, seccomp
 * RuntimeDefault, the manifest's memory and CPU as requests and limits, the image pinned by digest, the
 * gateway's identity key; an init container fetches the artifact over TLS with the pod's own short-lived
 * service-account token and checks it against its signed digest; an egress sidecar takes the app's calls
 * on the local driver's socket and passes them to the broker with a token of its own), a Service, a
 * NetworkPolicy (in from the platform's gateway only; out to the broker, the platform and DNS only), the
 * data volume's claim, the app's service account, a disruption budget, and references to the app's Secret
 * (values never go into the repository), with a kustomization listing them; and the apps' namespace
 * (kubernetes-namespace.ts).
 */
export function renderKubernetes(input: RenderInput, settings: KubernetesSettings): RenderedFile[] {
  const { site, manifest } = input;
  const image = settings.runtimeImage;
  if (!image)
    throw new Error(
      'MICROAPP_KUBERNETES_RUNTIME_IMAGE is not set: apps are rendered only on an image pinned by digest',
    );
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
  const broker = `https://${settings.brokerService}.${settings.platformNamespace}.svc:${settings.brokerPort}`;
  const runtime = manifest.runtime;
  const start = startCommand(runtime);
  // The port the app asked for, else the default; in a pod PORT is always a TCP port.
  const port = runtime?.port ?? appPort;
  // The kubelet calls the pod itself, not through the gateway, so a probe carries no signed identity: a
  // path the manifest names as its readiness check (which must answer without one: the templates'
  // `/_microapp/health`), or else whether the app's port takes connections.
  const readinessPath = runtime?.readiness?.path;
  const probe = {
    ...(readinessPath ? { httpGet: { path: readinessPath, port: 'http' } } : { tcpSocket: { port: 'http' } }),
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
        // `kubectl logs` and `exec` go to the app, not to the egress sidecar that starts before it.
        metadata: {
          labels,
          annotations: { ...annotations, 'kubectl.kubernetes.io/default-container': 'app' },
        },
        spec: {
          // The app's own account, whose token only the init container sees (projected, for the artifact).
          serviceAccountName: site,
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
              // The preload that sends the app's fetch, http and https to the egress socket, as locally.
              name: 'egress-preload',
              image,
              command: ['node', '-e', writeShim],
              env: [{ name: 'EGRESS_SHIM', value: egressShim() }],
              securityContext: containerSecurity,
              resources: sidecarResources,
              volumeMounts: [{ name: 'egress', mountPath: '/run/egress' }],
            },
            {
              name: 'fetch-artifact',
              image,
              command: ['node', '-e', fetchArtifact],
              env: [
                {
                  name: 'ARTIFACT_URL',
                  value: `${settings.artifactUrl}/api/v1/kubernetes/artifacts/${input.digest}`,
                },
                { name: 'ARTIFACT_DIGEST', value: input.digest },
                { name: 'ARTIFACT_TOKEN_FILE', value: '/var/run/secrets/microapp/token' },
                // The cluster's CA for the platform's certificate, when it is not a public one.
                { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/microapp-ca/ca.crt' },
              ],
              securityContext: containerSecurity,
              resources: {
                requests: { cpu: '50m', memory: '64Mi' },
                limits: { cpu: '500m', memory: '128Mi' },
              },
              volumeMounts: [
                { name: 'app', mountPath: '/app' },
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'artifact-token', mountPath: '/var/run/secrets/microapp', readOnly: true },
                { name: 'platform-ca', mountPath: '/etc/microapp-ca', readOnly: true },
              ],
            },
          ],
          containers: [
            {
              // First, so the kubelet starts the app once its start hook saw the egress socket.
              name: 'egress',
              image,
              command: ['node', '-e', egressSidecar],
              env: [
                { name: 'BROKER_URL', value: broker },
                { name: 'EGRESS_SOCKET', value: '/run/egress/proxy.sock' },
                { name: 'EGRESS_TOKEN_FILE', value: '/var/run/secrets/microapp-egress/token' },
                { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/microapp-ca/ca.crt' },
              ],
              lifecycle: { postStart: { exec: { command: ['node', '-e', waitForSocket] } } },
              securityContext: containerSecurity,
              resources: sidecarResources,
              volumeMounts: [
                { name: 'egress', mountPath: '/run/egress' },
                { name: 'egress-token', mountPath: '/var/run/secrets/microapp-egress', readOnly: true },
                { name: 'platform-ca', mountPath: '/etc/microapp-ca', readOnly: true },
              ],
            },
            {
              name: 'app',
              image,
              command: [
                'node',
                // Every outbound call goes to the egress socket, and through the sidecar to the broker, which
                // applies the approved egress, the organization's policy and DLP.
                '--require',
                '/run/egress/shim.cjs',
                ...start.nodeOptions,
                `/app/${start.entry}`,
                ...start.args,
              ],
              workingDir: '/app',
              ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
              env: [
                ...Object.entries(runtime?.env ?? {}).map(([name, value]) => ({ name, value })),
                { name: 'PORT', value: String(port) },
                { name: 'NODE_ENV', value: 'production' },
                { name: 'MICROAPP_APP', value: input.name },
                { name: 'MICROAPP_OWNER', value: input.owner },
                // The app checks each request's X-Microapp-Identity against the gateway's key.
                { name: 'MICROAPP_IDENTITY_PUBLIC_KEY', value: input.identityPublicKey },
                { name: 'MICROAPP_DATA_DIR', value: '/data' },
                { name: 'HOME', value: '/tmp' },
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
                { name: 'egress', mountPath: '/run/egress', readOnly: true },
                ...(secrets.length ? [{ name: 'secrets', mountPath: '/run/secrets', readOnly: true }] : []),
              ],
            },
          ],
          volumes: [
            { name: 'app', emptyDir: { sizeLimit: '256Mi' } },
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
            { name: 'data', persistentVolumeClaim: { claimName: `${site}-data` } },
            projectedToken('artifact-token', artifactTokenAudience),
            // The egress sidecar's own token, another audience than the artifact's (seen by the sidecar only).
            projectedToken('egress-token', egressTokenAudience),
            { name: 'egress', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
            { name: 'platform-ca', configMap: { name: 'microapp-ca', optional: true, defaultMode: 0o444 } },
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

  const account: IServiceAccount = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata,
    automountServiceAccountToken: false,
  };

  // A drain waits for the app's one pod instead of evicting it while it serves; an unhealthy one may go.
  // `kubectl rollout restart` moves it (Recreate), which a budget does not hold up.
  const budget: IPodDisruptionBudget = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata,
    spec: { minAvailable: 1, selector: { matchLabels: selector }, unhealthyPodEvictionPolicy: 'AlwaysAllow' },
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
    ['serviceaccount.yaml', account],
    ['poddisruptionbudget.yaml', budget],
  ];
  const header = `# ${input.name}@${input.version} (${input.env}), ${input.digest}: rendered by microapp; do not edit, render again.\n`;
  const files: RenderedFile[] = objects.map(([file, object]) => ({
    path: `apps/${site}/${file}`,
    content: yamlOf(header, object),
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
  return [...renderAppsNamespace(settings), ...files];
}
