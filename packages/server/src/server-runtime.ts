import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { registerRequestSpans } from './api/request-spans.ts';
import type { Clock } from './clock.ts';
import type { ServerConfig } from './config.ts';
import type { Database } from './db/schema.ts';
import type { AdvisoryService } from './modules/advisories/advisory-service.ts';
import type { AuditService } from './modules/audit/audit-service.ts';
import type { BlobStore } from './modules/blobs/blob-store.ts';
import { registerBuildRoutes } from './modules/builds/build-routes.ts';
import { createBuildService } from './modules/builds/build-service.ts';
import type { CatalogService } from './modules/catalog/catalog-service.ts';
import { registerConnectorRoutes } from './modules/connectors/connector-routes.ts';
import { createConnectorService } from './modules/connectors/connector-service.ts';
import { createDatabaseCredentials } from './modules/connectors/database-credentials.ts';
import { createEgressBroker, dlpVerdictOf } from './modules/egress/egress-broker.ts';
import type { NotificationService } from './modules/notifications/notification-service.ts';
import type { PolicyEngine } from './modules/policy/policy-engine.ts';
import type { ReplicaLease } from './modules/replicas/replica-lease.ts';
import { installRepos, prepareRepos } from './modules/repos/install-repos.ts';
import type { AppHosts } from './modules/runtime/app-hosts.ts';
import { createAppLogs } from './modules/runtime/app-logs.ts';
import { detectCgroups } from './modules/runtime/cgroups.ts';
import { registerDeploymentRoutes } from './modules/runtime/deployment-routes.ts';
import { createDeploymentService } from './modules/runtime/deployment-service.ts';
import { canDropToHostUser } from './modules/runtime/host-user.ts';
import { identitySigningKey } from './modules/runtime/identity-key.ts';
import { registerKubernetesArtifactRoutes } from './modules/runtime/kubernetes-artifacts.ts';
import { createClusterEgress } from './modules/runtime/kubernetes-egress.ts';
import { sandboxAvailable } from './modules/runtime/sandbox.ts';
import { sandboxProblem } from './modules/runtime/sandbox-common.ts';
import { type Kek, kekOf } from './modules/secrets/envelope.ts';
import type { SecretService } from './modules/secrets/secret-service.ts';
import type { VaultClient } from './modules/secrets/vault.ts';
import type { VersionsService } from './modules/signing/versions-service.ts';
import type { TokenService } from './modules/tokens/token-service.ts';
import type { registerPlatformMetrics } from './modules/usage/platform-metrics.ts';
import { createTracing } from './tracing.ts';
import { version } from './version.ts';

/** The host and port of a registry URL, as the broker compares them. */
function registryAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  return {
    host: u.hostname.toLowerCase(),
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
  };
}

/**
 * The part of the composition root that runs apps and builds: connectors, the egress broker, database
 * credentials, app logs, deployments, tracing and platform builds, with their routes.
 */
export function composeRuntime(
  app: FastifyInstance,
  deps: {
    config: ServerConfig;
    logger: Logger;
    db: Kysely<Database>;
    clock: Clock;
    audit: AuditService;
    /** This replica's lease on the builds and app instances it runs. */
    lease: Pick<ReplicaLease, 'id' | 'mayTakeOver'>;
    kek: Buffer;
    previousKeks: Kek[];
    vault: VaultClient | null;
    engine: PolicyEngine | null;
    advisories: AdvisoryService;
    catalog: CatalogService;
    versions: VersionsService;
    /** Where artifacts are: the Kubernetes driver's pods fetch theirs from it through the platform. */
    blobs: BlobStore;
    secrets: SecretService;
    tokens: TokenService;
    notifications: NotificationService;
    hold: (appId: string) => Promise<{ status: number; message: string } | null>;
    hosts: AppHosts;
    publicUrl: () => string;
    metrics: () => ReturnType<typeof registerPlatformMetrics> | null;
  },
) {
  const { config, logger, db, clock, audit, kek, previousKeks, vault, engine } = deps;
  const { advisories, catalog, versions, secrets, tokens, notifications, hold, hosts } = deps;
  // Resource limits for app instances: a cgroup hierarchy this process may write (v2 or v1).
  const cgroups = sandboxAvailable() ? detectCgroups() : null;
  if (cgroups)
    logger.info({ cgroup: `v${cgroups.version}` }, 'app instances get memory, CPU and process limits');
  else
    logger.warn(
      'app instances run WITHOUT memory, CPU and process limits: no writable cgroup hierarchy (run the server as root, or delegate a cgroup v2 subtree to it; see docs/runtime.md)',
    );
  const sandboxIssue = sandboxProblem();
  if (sandboxIssue) logger.error(`no build or app can run on this replica: ${sandboxIssue}`);
  if (sandboxAvailable() && !canDropToHostUser())
    logger.warn(
      "apps run as the server's own user, without a host user of their own or a data quota: both need the server to run as root (see docs/runtime.md)",
    );
  const connectors = createConnectorService({
    db: db,
    clock,
    audit,
    current: kekOf(kek),
    previous: previousKeks,
    vault: vault !== null,
  });
  registerConnectorRoutes(app, { connectors });
  const egress = createEgressBroker({
    connectors,
    db: db,
    clock,
    audit,
    dir: join(config.dataDir, 'runtime', 'egress'),
    pinned: config.devEgressHosts,
    tunnels: config.egressTunnels,
    // The company registry builds install from may sit on a private address: builds (only) may reach it.
    ...(config.npmRegistry ? { buildRegistry: registryAddress(config.npmRegistry) } : {}),
    onBytes: (name, _host, out, inBytes) => deps.metrics()?.egressBytes(name, out, inBytes),
    policy: async (input, subject) => {
      if (!engine) return [];
      const result = await engine.admission(input);
      await engine.log(db, result.decisions, subject);
      return result.denials;
    },
    ...(engine
      ? {
          dlp: async (input, subject) => {
            const d = await engine.decide('data.microapp.dlp', input);
            await engine.log(db, [d], subject);
            return dlpVerdictOf(d.result, input);
          },
          refuseModel: async (input) => {
            const d = await engine.decide<unknown>('data.microapp.models.refuse', input);
            await engine.log(db, [d], input.app);
            return Array.isArray(d.result) ? d.result.map(String).sort() : [];
          },
        }
      : {}),
  });
  const credentials = createDatabaseCredentials({
    db: db,
    audit,
    vault,
    connectors,
    egress,
    onError: (message, error) => logger.error({ err: error }, message),
  });
  const appLogs = createAppLogs({ db: db, clock, retention: config.logRetention });
  const deployments = createDeploymentService({
    lease: deps.lease,
    identityKey: identitySigningKey(kek),
    advisories,
    sandboxUidBase: config.sandboxUidBase,
    dataVolumeMb: config.appDataMb,
    appLogs,
    db: db,
    audit,
    catalog,
    versions,
    secrets,
    engine,
    runtimeDir: join(config.dataDir, 'runtime'),
    idleMs: config.idleMinutes * 60_000,
    hold,
    notifications,
    onCrash: (name, outcome) => deps.metrics()?.crash(name, outcome),
    onOutOfMemory: (name) => deps.metrics()?.outOfMemory(name),
    appUrl: (site) => hosts.urlOf(site),
    egress,
    cgroups,
    credentials,
    kubernetes: config.kubernetes,
  });
  // App repositories and the GitOps repository: the Kubernetes driver commits what it renders there.
  const repos = prepareRepos({
    db,
    clock,
    audit,
    catalog,
    dataDir: config.dataDir,
    publicUrl: deps.publicUrl,
    ...(config.templatesDir ? { templatesDir: config.templatesDir } : {}),
    gitHost: config.gitHost,
    shared: config.gitStore === 'shared' ? deps.blobs : null,
  });
  registerDeploymentRoutes(app, { deployments, gitops: repos.gitops });
  registerKubernetesArtifactRoutes(app, { db, blobs: deps.blobs, settings: config.kubernetes, hold });
  // The broker for the cluster's pods, on its own TLS port, when this server is (also) the broker's Deployment.
  const clusterEgress = config.kubernetes.brokerListen
    ? createClusterEgress({ db, broker: egress, settings: config.kubernetes, hold, logger })
    : null;
  const tracing = createTracing({ ...config.otlp, serviceVersion: version });
  if (tracing.enabled) logger.info({ endpoint: config.otlp.endpoint }, 'traces go to the OTLP collector');
  registerRequestSpans(app, tracing);
  const builds = createBuildService({
    lease: deps.lease,
    ...(config.templatesDir ? { templatesDir: config.templatesDir } : {}),
    buildsPerHour: config.quotas.buildsPerHour,
    tracing,
    egress,
    ...(config.npmRegistry ? { npmRegistry: config.npmRegistry } : {}),
    ...(config.npmCaFile ? { npmCaFile: config.npmCaFile } : {}),
    ...(config.npmTokenFile ? { npmTokenFile: config.npmTokenFile } : {}),
    db: db,
    clock,
    audit,
    catalog,
    tokens,
    deployments,
    workDir: join(config.dataDir, 'builds'),
    cgroups,
    buildLimits: config.buildLimits,
    platformUrl: deps.publicUrl,
    appUrl: hosts.urlOf,
  });
  registerBuildRoutes(app, { builds });
  const repositories = installRepos(app, repos, { builds, tokens, notifications, logger });
  return {
    repositories,
    connectors,
    egress,
    clusterEgress,
    credentials,
    appLogs,
    deployments,
    tracing,
    builds,
  };
}
