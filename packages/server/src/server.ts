import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { buildHttpApp } from './api/build-app.ts';
import { registerMetaRoutes } from './api/meta-routes.ts';
import { readTls } from './api/tls.ts';
import { adjustableClock } from './clock.ts';
import type { OidcSettings, ServerConfig } from './config.ts';
import { openDatabase } from './db/database.ts';
import { migrateToLatest } from './db/migrations.ts';
import { createReadCache } from './db/read-cache.ts';
import { installAgents } from './modules/agents/install-agents.ts';
import { registerApprovalRoutes } from './modules/approvals/approval-routes.ts';
import { createAuditService } from './modules/audit/audit-service.ts';
import { registerAccessRequestRoutes } from './modules/catalog/access-request-routes.ts';
import { createAccessRequests } from './modules/catalog/access-requests.ts';
import { registerCatalogRoutes } from './modules/catalog/catalog-routes.ts';
import { registerTemplateRoutes } from './modules/catalog/template-routes.ts';
import { defaultTemplatesDir } from './modules/catalog/templates.ts';
import { defaultConsoleDir, registerConsoleRoutes } from './modules/console/console-routes.ts';
import { registerAuthRoutes } from './modules/identity/auth-routes.ts';
import { createLoginService } from './modules/identity/login-service.ts';
import { registerRoleMappingRoute } from './modules/identity/role-mapping-routes.ts';
import { createDevClock } from './modules/jobs/dev-clock.ts';
import { registerJobRoutes } from './modules/jobs/job-routes.ts';
import { createJobRunner } from './modules/jobs/job-runner.ts';
import { registerNotificationRoutes } from './modules/notifications/notification-routes.ts';
import { createNotificationService } from './modules/notifications/notification-service.ts';
import { registerPolicyRoutes } from './modules/policy/policy-routes.ts';
import { createPolicyService } from './modules/policy/policy-service.ts';
import { startSharedRepositories } from './modules/repos/install-repos.ts';
import { createAppHosts } from './modules/runtime/app-hosts.ts';
import { createGateway } from './modules/runtime/gateway.ts';
import { createReplicaForwarding } from './modules/runtime/replica-forwarding.ts';
import { kekOf } from './modules/secrets/envelope.ts';
import { registerTokenRoutes } from './modules/tokens/token-routes.ts';
import { createTokenService } from './modules/tokens/token-service.ts';
import { registerPlatformMetrics } from './modules/usage/platform-metrics.ts';
import { registerUsageRoutes } from './modules/usage/usage-routes.ts';
import { createUsageService } from './modules/usage/usage-service.ts';
import { composeCatalog, mayUse } from './server-catalog.ts';
import { registerPlatformJobs } from './server-jobs.ts';
import { composeLifecycle } from './server-lifecycle.ts';
import { checkIssuer, listen, listenEgress } from './server-listen.ts';
import { platformLogger } from './server-logger.ts';
import { blobStoreCheck, issuerCheck, sandboxCheck, startupCheck } from './server-readiness.ts';
import { advertiseReplica, joinReplicas, recoverWork, replicaTls, usageWal } from './server-replica.ts';
import { composeRuntime } from './server-runtime.ts';
import { answerAfterChain, composeTrust } from './server-trust.ts';
import type { RunningServer, StartOptions } from './server-types.ts';
import { version } from './version.ts';

/** The host and port of a registry URL, as the broker compares them. */
function _registryAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  return {
    host: u.hostname.toLowerCase(),
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
  };
}

export type { RunningServer, StartOptions } from './server-types.ts';

/**
 * The composition root: opens the database, migrates, builds every service and route, listens,
 * and in dev mode starts the embedded IdP.
 * @example const server = await startServer(loadConfig({ dev: true, port: 0 }, process.env));
 */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? platformLogger(config);
  await checkIssuer(config, logger);
  if (config.database.kind === 'sqlite') mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const db = options.db ?? openDatabase(config.database);
  await migrateToLatest(db);
  const lease = await joinReplicas(config, db.kysely, version, logger);

  let oidc: OidcSettings | null = config.oidc;
  let publicUrl = config.publicUrl;
  const clock = options.clock ?? adjustableClock();
  const audit = createAuditService({ db: db.kysely, dialect: db.dialect, clock, database: db.options });
  const readCache = createReadCache(db, {
    onError: (error) =>
      logger.warn(
        { err: error },
        'the read cache stopped listening for changes; reading every time until it listens again',
      ),
  });
  const tokens = createTokenService({ db: db.kysely, audit });
  const login = createLoginService({
    db: db.kysely,
    audit,
    oidc: () => {
      if (!oidc) throw new Error('identity provider not configured');
      return oidc;
    },
    redirectUri: () => `${publicUrl}/auth/callback`,
    sessionTtlHours: config.sessionTtlHours,
    clock,
  });
  const { repo, builtin, policyIsolate, engine, catalog, approvals } = composeCatalog({
    config,
    db: db.kysely,
    dialect: db.dialect,
    clock,
    audit,
    ...(options.policyDir !== undefined ? { policyDir: options.policyDir } : {}),
    ...(options.risk ? { risk: options.risk } : {}),
  });

  // People reach it over https: the public URL says so, or, without one, it serves TLS itself.
  const servedOverHttps = config.publicUrl ? config.publicUrl.startsWith('https:') : Boolean(config.tls);
  // The gateway needs services built after the HTTP app; it is bound once they exist.
  let gateway: ReturnType<typeof createGateway> | null = null;
  const app = await buildHttpApp({
    logger,
    tokens,
    login,
    cache: readCache,
    version,
    gateway: (request, reply) => (gateway ? gateway.handle(request, reply) : Promise.resolve(false)),
    trustedProxies: config.trustedProxies,
    https: servedOverHttps,
    requestLog: config.requestLog,
    tls: config.tls ? readTls(config.tls) : null,
  });
  answerAfterChain(app, { audit, readCache, isAppHost: (host) => Boolean(hosts.siteOf(host)) });
  const secureCookies = servedOverHttps;
  const hosts = createAppHosts({ domain: config.appsDomain, platformUrl: () => publicUrl! });
  registerAuthRoutes(app, {
    db: db.kysely,
    login,
    tokens,
    secureCookies,
    publicUrl: () => publicUrl!,
    appUrl: hosts.urlOf,
  });
  registerTokenRoutes(app, { tokens });
  registerCatalogRoutes(app, { catalog, cache: readCache });
  registerTemplateRoutes(app, { dir: config.templatesDir ?? defaultTemplatesDir });
  registerApprovalRoutes(app, { approvals });
  const { advisories, kek, keys, checkpoints, previousKeks, vault, secrets, versions, blobs } = composeTrust(
    app,
    {
      config,
      db: db.kysely,
      clock,
      audit,
      catalog,
      // Owners hear about an advisory that affects what they run within one job run of its import.
      afterImport: () => void jobs.trigger('advisory-alerts').catch(() => {}),
      publicUrl: () => publicUrl!,
    },
  );
  let platformMetrics: ReturnType<typeof registerPlatformMetrics> | null = null;
  const jobs = createJobRunner({
    db: db.kysely,
    clock,
    logger,
    leaseMs: config.jobs.leaseSeconds * 1000,
    onRun: (job, ok) => platformMetrics?.jobRun(job, ok),
  });
  const notifications = createNotificationService({
    db: db.kysely,
    clock,
    logger,
    channels: config.notifications,
    platformUrl: () => publicUrl!,
  });
  registerNotificationRoutes(app, { notifications });
  registerAccessRequestRoutes(app, {
    requests: createAccessRequests({
      db: db.kysely,
      clock,
      repo,
      audit,
      notifications,
      mayUse: (principal, row) => mayUse(engine, principal, row),
      publicUrl: () => publicUrl!,
    }),
  });
  // Lifecycle holds are read by the runtime and the gateway; the service itself needs the runtime.
  let lifecycleHold: ((appId: string) => Promise<{ status: number; message: string } | null>) | null = null;
  const hold = (appId: string) => (lifecycleHold ? lifecycleHold(appId) : Promise.resolve(null));
  const { credentials, appLogs, deployments, tracing, builds, repositories, clusterEgress } = composeRuntime(
    app,
    {
      config,
      logger,
      db: db.kysely,
      clock,
      audit,
      lease,
      kek,
      previousKeks,
      vault,
      engine,
      advisories,
      catalog,
      versions,
      blobs,
      secrets,
      tokens,
      notifications,
      hold,
      hosts,
      publicUrl: () => publicUrl!,
      metrics: () => platformMetrics,
    },
  );
  const usage = createUsageService({ db: db.kysely, catalog, logger, clock, wal: usageWal(config) });
  const replayed = await usage.replay();
  if (replayed)
    logger.info({ rows: replayed }, 'wrote usage rows the last run of this replica left in its log');
  platformMetrics = registerPlatformMetrics({
    registry: usage.registry,
    app,
    db: db.kysely,
    instances: () => deployments.running(),
  });
  const lifecycle = composeLifecycle(app, {
    blobs,
    config,
    db: db.kysely,
    clock,
    audit,
    notifications,
    catalog,
    deployments,
    advisories,
    secrets,
    versions,
    keks: [kekOf(kek), ...previousKeks],
    repositoryBundle: repositories.store.bundle,
  });
  lifecycleHold = lifecycle.hold;
  registerRoleMappingRoute(app, { oidc: () => oidc, dev: config.dev });
  await registerPlatformJobs(jobs, {
    config,
    db: db.kysely,
    clock,
    audit,
    advisories,
    notifications,
    lifecycle,
    usage,
    appLogs,
    credentials,
    approvals,
    checkpoints,
  });
  const devClock = createDevClock({ db: db.kysely, audit, clock, jobs, dev: config.dev });
  await devClock.resume();
  registerJobRoutes(app, { jobs, devClock });
  registerUsageRoutes(app, { usage, metricsTokenFile: config.metricsTokenFile });
  gateway = createGateway({
    tokens,
    login,
    catalog,
    engine,
    deployments,
    audit,
    usage,
    db: db.kysely,
    platformUrl: () => publicUrl!,
    hosts,
    secureCookies,
    hold,
    clock,
    tracing,
    cache: readCache,
    forwarding: createReplicaForwarding({
      db: db.kysely,
      lease,
      ...(config.tls ? { tls: replicaTls(config.tls) } : {}),
    }),
  });
  // WebSockets to apps arrive as HTTP upgrades, which Fastify's routes never see.
  app.server.on('upgrade', (req, socket, head) => {
    const g = gateway;
    if (!g) return socket.destroy();
    g.upgrade(req, socket, head).then(
      (handled) => {
        if (!handled) socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
      },
      () => socket.destroy(),
    );
  });
  if (engine && builtin) {
    const policies = createPolicyService({
      db: db.kysely,
      audit,
      engine,
      builtin,
      catalog,
      isolate: policyIsolate,
    });
    registerPolicyRoutes(app, { policies });
    // Compile the packs now: a broken policy must stop the start, not the first registration.
    await engine.current();
    await installAgents(app, {
      db: db.kysely,
      clock,
      audit,
      engine,
      notifications,
      login,
      jobs,
      publicUrl: () => publicUrl!,
      version,
      services: {
        catalog,
        builds,
        deployments,
        lifecycle,
        templatesDir: config.templatesDir ?? defaultTemplatesDir,
        appUrl: hosts.urlOf,
      },
      repositories,
    });
  }

  await registerConsoleRoutes(app, { dir: config.consoleDir ?? defaultConsoleDir });
  const startup = startupCheck();
  registerMetaRoutes(app, {
    db,
    keys,
    dev: config.dev,
    issuer: () => oidc?.issuer ?? null,
    appsDomain: () => hosts.domain(),
    version,
    checks: [startup.check, blobStoreCheck(blobs), issuerCheck(() => oidc?.issuer ?? null), sandboxCheck()],
  });
  await startSharedRepositories(repositories.store, jobs, logger); // before serving: see install-repos.ts
  const listening = await listen(app, config, publicUrl);
  publicUrl = listening.publicUrl;
  oidc = listening.devOidc ?? oidc;
  const devIdp = listening.devIdp;
  await advertiseReplica(lease, config, (app.server.address() as AddressInfo).port);
  const egressListener = await listenEgress(clusterEgress, config, logger);
  const url = publicUrl;
  const takeover = await recoverWork({
    lease,
    leaseSeconds: config.replica.leaseSeconds,
    logger,
    credentials,
    deployments,
    builds,
  });
  if (config.jobs.enabled) jobs.start();
  startup.started();
  logger.info(
    { url, dev: config.dev, database: db.dialect, issuer: oidc?.issuer },
    'microapp server listening',
  );

  return {
    url,
    internals: {
      secrets,
      usage,
      clock,
      jobs,
      credentials,
      tracing,
      identity: deployments.identityToken,
      repoStore: repositories.store,
      /** The port the cluster's pods reach the broker on (MICROAPP_EGRESS_LISTEN), when it is served. */
      egressPort: egressListener?.port ?? null,
    },
    app,
    db,
    devIdp,
    async close() {
      await takeover.stop();
      await jobs.stop();
      await builds.close();
      await policyIsolate.close();
      notifications.close();
      await deployments.shutdown();
      await clusterEgress?.close();
      await credentials.close();
      await appLogs.close();
      await tracing.shutdown().catch(() => {});
      await app.close();
      await usage.close();
      await devIdp?.close();
      // What is queued now is chained before the database closes (or by another replica, or at the next start).
      audit.stop();
      await audit.sequence().catch(() => {});
      await readCache.stop();
      // Last: a replica that stopped cleanly hands its apps to the others at once.
      await lease.stop();
      if (!options.db) await db.destroy();
    },
  };
}
