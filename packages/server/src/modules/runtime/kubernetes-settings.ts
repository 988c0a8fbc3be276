/** Where the rendered apps run and where the platform is, inside the cluster. */
export type KubernetesSettings = {
  /** The namespace the apps run in. */
  namespace: string;
  /** The platform's namespace: its gateway forwards to the apps, its broker is their only way out. */
  platformNamespace: string;
  /**
   * The image apps run on, pinned by digest (`registry/node@sha256:…`: Node.js and tar; the egress preload
   * works on any Node.js the local driver runs). Null until it is set: nothing is rendered on a moving tag.
   */
  runtimeImage: string | null;
  /** The egress broker's Service in the platform namespace, and its port. */
  brokerService: string;
  brokerPort: number;
  /**
   * Where this server itself serves the broker to the cluster's pods, over TLS (MICROAPP_EGRESS_LISTEN,
   * `0.0.0.0:3128` in the broker's Deployment); null: it serves only the local driver's sockets.
   */
  brokerListen: { host: string; port: number } | null;
  /** The platform's Service: its pods are the only ones the apps take requests from. */
  platformService: string;
  /** The port the platform's pods listen on (the apps' NetworkPolicy lets them reach it for the artifact). */
  platformPort: number;
  /**
   * Where the init container fetches the artifact from, over TLS: the platform's in-cluster https address
   * (MICROAPP_KUBERNETES_ARTIFACT_URL). It presents a service-account token of the app's own, never a
   * person's.
   */
  artifactUrl: string;
  /**
   * How the platform checks those tokens: the cluster's service-account issuer
   * (MICROAPP_KUBERNETES_TOKEN_ISSUER) and its public keys, a JWKS file or https URL
   * (MICROAPP_KUBERNETES_TOKEN_JWKS; `kubectl get --raw /openid/v1/jwks`). Without both, no pod is let in.
   */
  tokenIssuer: string | null;
  tokenJwks: string | null;
  /**
   * Where the gateway reaches an app's Service (MICROAPP_KUBERNETES_SERVICE_URL), with `{site}` and
   * `{namespace}` filled in: `http://{site}.{namespace}.svc.cluster.local`. Null: the gateway serves local
   * instances only (a platform outside the cluster).
   */
  serviceUrl: string | null;
};

/** The audience of the service-account tokens the apps' init containers present for their artifact. */
export const artifactTokenAudience = 'microapp-artifacts';

/** How long such a token lives (Kubernetes' shortest): the kubelet writes a new one before it ends. */
export const artifactTokenSeconds = 600;

/**
 * The audience of the tokens the apps' egress sidecars present to the broker, another than the artifact's:
 * a token the init container held cannot send calls, and the sidecar's cannot fetch code.
 */
export const egressTokenAudience = 'microapp-egress';

export const defaultKubernetesSettings: KubernetesSettings = {
  namespace: 'microapps',
  platformNamespace: 'microapp-system',
  runtimeImage: null,
  brokerService: 'microapp-egress',
  brokerPort: 3128,
  brokerListen: null,
  platformService: 'microapp',
  platformPort: 8443,
  artifactUrl: 'https://microapp.microapp-system.svc',
  tokenIssuer: null,
  tokenJwks: null,
  serviceUrl: null,
};

const namespaceName = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** `registry[:port]/path/name[:tag]@sha256:<64 hex>`: a tag alone moves, a digest does not. */
const pinnedImage = /^[a-z0-9][a-z0-9._/:-]{0,200}@sha256:[a-f0-9]{64}$/;

/** The Kubernetes driver's settings (MICROAPP_KUBERNETES_*), each checked; problems name the setting. */
export function kubernetesSettingsFrom(env: NodeJS.ProcessEnv, problems: string[]): KubernetesSettings {
  const namespace = env.MICROAPP_KUBERNETES_NAMESPACE || defaultKubernetesSettings.namespace;
  const platformNamespace =
    env.MICROAPP_KUBERNETES_PLATFORM_NAMESPACE || defaultKubernetesSettings.platformNamespace;
  for (const [variable, value] of [
    ['MICROAPP_KUBERNETES_NAMESPACE', namespace],
    ['MICROAPP_KUBERNETES_PLATFORM_NAMESPACE', platformNamespace],
  ] as const)
    if (!namespaceName.test(value))
      problems.push(`${variable} must be a Kubernetes namespace name such as microapps, got "${value}"`);
  const runtimeImage = env.MICROAPP_KUBERNETES_RUNTIME_IMAGE || null;
  if (runtimeImage && !pinnedImage.test(runtimeImage))
    problems.push(
      `MICROAPP_KUBERNETES_RUNTIME_IMAGE must be an image pinned by digest, such as registry.example.com/node@sha256:<64 hex digits> (a tag can change under a signed app), got "${runtimeImage.slice(0, 120)}"`,
    );
  const artifactUrl = (
    env.MICROAPP_KUBERNETES_ARTIFACT_URL || `https://microapp.${platformNamespace}.svc`
  ).replace(/\/$/, '');
  let url: URL | null = null;
  try {
    url = new URL(artifactUrl);
  } catch {}
  if (url?.protocol !== 'https:' || url.username || url.password || url.search || url.hash)
    problems.push(
      `MICROAPP_KUBERNETES_ARTIFACT_URL must be the platform's https address inside the cluster, such as https://microapp.microapp-system.svc (the artifact never travels in clear), got "${artifactUrl.slice(0, 120)}"`,
    );
  const tokenIssuer = env.MICROAPP_KUBERNETES_TOKEN_ISSUER || null;
  const tokenJwks = env.MICROAPP_KUBERNETES_TOKEN_JWKS || null;
  if (Boolean(tokenIssuer) !== Boolean(tokenJwks))
    problems.push(
      "MICROAPP_KUBERNETES_TOKEN_ISSUER and MICROAPP_KUBERNETES_TOKEN_JWKS go together: the cluster's service-account issuer and its keys (a JWKS file, or its https URL)",
    );
  if (tokenJwks && /^[a-z]+:/i.test(tokenJwks) && !tokenJwks.startsWith('https://'))
    problems.push(
      `MICROAPP_KUBERNETES_TOKEN_JWKS must be a file or an https URL, got "${tokenJwks.slice(0, 120)}"`,
    );
  const brokerListen = brokerListenFrom(env.MICROAPP_EGRESS_LISTEN, problems);
  if (brokerListen && !(tokenIssuer && tokenJwks))
    problems.push(
      "MICROAPP_EGRESS_LISTEN serves the cluster's pods, which present their service-account tokens: set MICROAPP_KUBERNETES_TOKEN_ISSUER and MICROAPP_KUBERNETES_TOKEN_JWKS too",
    );
  const serviceUrl = env.MICROAPP_KUBERNETES_SERVICE_URL || null;
  if (serviceUrl) {
    let ok = false;
    try {
      const u = new URL(serviceUrl.replaceAll('{site}', 'app').replaceAll('{namespace}', namespace));
      ok = u.protocol === 'http:' && !u.username && !u.password && u.pathname === '/' && !u.search;
    } catch {}
    if (!ok)
      problems.push(
        `MICROAPP_KUBERNETES_SERVICE_URL is where the gateway reaches an app's Service, such as http://{site}.{namespace}.svc.cluster.local (http, no path), got "${serviceUrl.slice(0, 120)}"`,
      );
  }
  return {
    ...defaultKubernetesSettings,
    serviceUrl,
    brokerListen,
    tokenIssuer,
    tokenJwks,
    namespace,
    platformNamespace,
    runtimeImage: runtimeImage && pinnedImage.test(runtimeImage) ? runtimeImage : null,
    artifactUrl,
  };
}

/** MICROAPP_EGRESS_LISTEN: `HOST:PORT` (`0.0.0.0:3128`, `[::]:3128`) or a port alone (on every address). */
function brokerListenFrom(
  raw: string | undefined,
  problems: string[],
): { host: string; port: number } | null {
  if (!raw) return null;
  const m = /^(?:(\[[0-9a-f:.]+\]|[0-9.]+|[a-z0-9.-]+):)?(\d{1,5})$/i.exec(raw.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535) {
    problems.push(
      `MICROAPP_EGRESS_LISTEN is where the broker takes the cluster's pods' calls, such as 0.0.0.0:3128, got "${raw.slice(0, 120)}"`,
    );
    return null;
  }
  return { host: (m[1] ?? '0.0.0.0').replace(/^\[|\]$/g, ''), port };
}
