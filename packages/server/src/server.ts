import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { buildHttpApp } from './api/build-app.ts';
import { type AdjustableClock, adjustableClock } from './clock.ts';
import type { OidcSettings, ServerConfig } from './config.ts';
import { devGroupRoles } from './config.ts';
import { type Db, isReachable, openDatabase } from './db/database.ts';
import { migrateToLatest } from './db/migrations.ts';
import { createReadCache } from './db/read-cache.ts';
import { createAdvisoryAlerts } from './modules/advisories/advisory-alerts.ts';
import { registerAdvisoryRoutes } from './modules/advisories/advisory-routes.ts';
import { createAdvisoryService } from './modules/advisories/advisory-service.ts';
import { createAgentSessionRecord } from './modules/agents/agent-session.ts';
import { installAgents } from './modules/agents/install-agents.ts';
import { registerApprovalRoutes } from './modules/approvals/approval-routes.ts';
import { interimRouting } from './modules/approvals/approval-rules.ts';
import { createApprovalService } from './modules/approvals/approval-service.ts';
import { createReviewDigest } from './modules/approvals/review-digest.ts';
import { checkpointKey, createAuditCheckpoints } from './modules/audit/audit-checkpoints.ts';
import { registerAuditRoutes } from './modules/audit/audit-routes.ts';
import { createAuditService } from './modules/audit/audit-service.ts';
import { createSiemExport } from './modules/audit/siem-export.ts';
import { registerBuildRoutes } from './modules/builds/build-routes.ts';
import { createBuildService } from './modules/builds/build-service.ts';
import { createCatalogRepository } from './modules/catalog/catalog-repository.ts';
import { registerCatalogRoutes } from './modules/catalog/catalog-routes.ts';
import { createCatalogService } from './modules/catalog/catalog-service.ts';
import { registerTemplateRoutes } from './modules/catalog/template-routes.ts';
import { defaultTemplatesDir } from './modules/catalog/templates.ts';
import { registerConnectorRoutes } from './modules/connectors/connector-routes.ts';
import { createConnectorService } from './modules/connectors/connector-service.ts';
import {
  createDatabaseCredentials,
  type DatabaseCredentials,
} from './modules/connectors/database-credentials.ts';
import { defaultConsoleDir, registerConsoleRoutes } from './modules/console/console-routes.ts';
import { createEgressAlerts } from './modules/egress/egress-alerts.ts';
import { createEgressBroker, dlpVerdictOf } from './modules/egress/egress-broker.ts';
import { publicRoute } from './modules/identity/access.ts';
import { registerAuthRoutes } from './modules/identity/auth-routes.ts';
import type { DevIdp } from './modules/identity/dev-idp.ts';
import { createLoginService } from './modules/identity/login-service.ts';
import { registerOffboardingRoutes } from './modules/identity/offboarding-routes.ts';
import { createOffboardingService } from './modules/identity/offboarding-service.ts';
import { registerRoleMappingRoute } from './modules/identity/role-mapping-routes.ts';
import { createDevClock } from './modules/jobs/dev-clock.ts';
import { registerJobRoutes } from './modules/jobs/job-routes.ts';
import { createJobRunner, type JobRunner } from './modules/jobs/job-runner.ts';
import { createGraduation } from './modules/lifecycle/graduation.ts';
import { registerLifecycleRoutes } from './modules/lifecycle/lifecycle-routes.ts';
import { createLifecycleService } from './modules/lifecycle/lifecycle-service.ts';
import { createLifecycleSteps } from './modules/lifecycle/lifecycle-steps.ts';
import { createScorecards } from './modules/lifecycle/scorecard.ts';
import { registerNotificationRoutes } from './modules/notifications/notification-routes.ts';
import { createNotificationService } from './modules/notifications/notification-service.ts';
import { createRegoRiskEvaluator, createRegoRouting } from './modules/policy/policy-decisions.ts';
import { createPolicyEngine, type Decision } from './modules/policy/policy-engine.ts';
import { createPolicyIsolate } from './modules/policy/policy-isolate.ts';
import { registerPolicyRoutes } from './modules/policy/policy-routes.ts';
import { createPolicyService } from './modules/policy/policy-service.ts';
import { builtinPolicyDir, readPolicyDir } from './modules/policy/policy-sources.ts';
import { createRuleEvaluator, type RiskEvaluator } from './modules/risk/risk-evaluator.ts';
import { createAppHosts } from './modules/runtime/app-hosts.ts';
import { createAppLogs } from './modules/runtime/app-logs.ts';
import { detectCgroups } from './modules/runtime/cgroups.ts';
import { registerDeploymentRoutes } from './modules/runtime/deployment-routes.ts';
import { createDeploymentService } from './modules/runtime/deployment-service.ts';
import { createGateway } from './modules/runtime/gateway.ts';
import { canDropToHostUser } from './modules/runtime/host-user.ts';
import { identitySigningKey } from './modules/runtime/identity-key.ts';
import { sandboxAvailable } from './modules/runtime/sandbox.ts';
import { kekOf } from './modules/secrets/envelope.ts';
import { registerSecretRoutes } from './modules/secrets/secret-routes.ts';
import { createSecretService, type SecretService } from './modules/secrets/secret-service.ts';
import { createVaultClient } from './modules/secrets/vault.ts';
import { createKeyRotation } from './modules/signing/key-rotation.ts';
import { createKeyStore, loadKek } from './modules/signing/key-store.ts';
import { registerSigningRoutes } from './modules/signing/signing-routes.ts';
import { createVersionsService } from './modules/signing/versions-service.ts';
import { registerTokenRoutes } from './modules/tokens/token-routes.ts';
import { createTokenService } from './modules/tokens/token-service.ts';
import { registerPlatformMetrics } from './modules/usage/platform-metrics.ts';
import { createSloAlerts } from './modules/usage/slo-alerts.ts';
import { registerUsageRoutes } from './modules/usage/usage-routes.ts';
import { createUsageService, type UsageService } from './modules/usage/usage-service.ts';
import { createTracing, type Tracing } from './tracing.ts';
import { version } from './version.ts';

/** The host and port of a registry URL, as the broker compares them. */
function registryAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  return {
    host: u.hostname.toLowerCase(),
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
  };
}

/** A running platform server. */
export type RunningServer = {
  url: string;
  /** In-process services the runtime uses directly (never over HTTP). */
  internals: {
    secrets: SecretService;
    usage: UsageService;
    clock: AdjustableClock;
    jobs: JobRunner;
    credentials: DatabaseCredentials;
    tracing: Tracing;
  };
  app: FastifyInstance;
  db: Db;
  devIdp: DevIdp | null;
  close(): Promise<void>;
};

/** Options tests and embedders may add to the configuration. */
export type StartOptions = {
  logger?: Logger;
  risk?: RiskEvaluator;
  db?: Db;
  /** Where the built-in policy packs are; null runs on the interim rules without a policy engine. */
  policyDir?: string | null;
  /** The platform clock; tests pass one they move. */
  clock?: AdjustableClock;
};

/**
 * The composition root: opens the database, migrates, builds every service and route, listens,
 * and in dev mode starts the embedded IdP.
 * @example const server = await startServer(loadConfig({ dev: true, port: 0 }, process.env));
 */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      // A request as the request log (MICROAPP_REQUEST_LOG=on) and errors show it: its path without the
      // query string, which may hold personal data or a sign-in code.
      serializers: {
        req: (req: {
          id?: string;
          method?: string;
          url?: string;
          headers?: Record<string, unknown>;
          ip?: string;
        }) => ({
          id: req.id,
          method: req.method,
          path: req.url?.split('?')[0],
          host: req.headers?.host,
          remoteAddress: req.ip,
        }),
      },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
        censor: '[redacted]',
      },
    });
  if (config.database.kind === 'sqlite') mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const db = options.db ?? openDatabase(config.database);
  await migrateToLatest(db);

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
  const repo = createCatalogRepository(db.kysely, db.dialect);
  const builtin = options.policyDir === null ? null : readPolicyDir(options.policyDir ?? builtinPolicyDir);
  // Policy work a caller controls (pushes, tests, evaluations with their input) runs in a worker thread.
  const policyIsolate = createPolicyIsolate();
  const engine = builtin ? createPolicyEngine({ db: db.kysely, builtin, isolate: policyIsolate }) : null;
  const catalog = createCatalogService({
    db: db.kysely,
    clock,
    scorecards: createScorecards({ db: db.kysely, clock, settings: config.lifecycle }),
    maxLifetimeDays: config.lifecycle.maxLifetimeDays,
    repo,
    audit,
    risk: options.risk ?? (engine ? createRegoRiskEvaluator(engine) : createRuleEvaluator()),
    appMaximums: config.appMaximums,
    registrationsPerDay: config.quotas.registrationsPerDay,
    routing: engine ? createRegoRouting(engine) : interimRouting,
    ...(engine
      ? {
          admission: async (input: unknown) => ({
            ...(await engine.admission(input)),
            revision: await engine.revision(),
          }),
          decisionLog: (trx, decisions, subject, requestId) =>
            engine.log(trx, decisions as Decision[], subject, requestId),
        }
      : {}),
  });
  const approvals = createApprovalService({ db: db.kysely, repo, audit, clock });

  // The gateway needs services built after the HTTP app; it is bound once they exist.
  let gateway: ReturnType<typeof createGateway> | null = null;
  const app = await buildHttpApp({
    logger,
    tokens,
    login,
    version,
    gateway: (request, reply) => (gateway ? gateway.handle(request, reply) : Promise.resolve(false)),
    trustedProxies: config.trustedProxies,
    https: Boolean(config.publicUrl?.startsWith('https:')),
    requestLog: config.requestLog,
  });
  // A response waits until the audit events its request recorded are in the chain (audit-service.ts): the
  // change committed with its event; whoever made it reads it in the trail at once.
  app.addHook('onSend', async (request) => {
    if (audit.mustChainBefore(request.id)) await audit.chainFor(request.id);
    // Another replica's writes reach the gateway's read cache by notification; this one's at once.
    if (request.method !== 'GET' && request.method !== 'HEAD' && !hosts.siteOf(request.headers.host))
      readCache.forget();
  });
  const secureCookies = Boolean(config.publicUrl?.startsWith('https:'));
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
  registerCatalogRoutes(app, { catalog });
  registerTemplateRoutes(app, { dir: defaultTemplatesDir });
  registerApprovalRoutes(app, { approvals });
  const advisories = createAdvisoryService({
    db: db.kysely,
    audit,
    catalog,
    clock,
    // Owners hear about an advisory that affects what they run within one job run of its import.
    afterImport: () => void jobs.trigger('advisory-alerts').catch(() => {}),
  });
  registerAdvisoryRoutes(app, { advisories });
  const kek = loadKek({ env: process.env, devFile: config.dev ? join(config.dataDir, 'kek') : null });
  const keys = createKeyStore({ db: db.kysely, kek });
  // Checkpoints are signed with a key derived from the KEK, so the database alone cannot forge one.
  const checkpoints = createAuditCheckpoints({
    db: db.kysely,
    clock,
    key: checkpointKey(kek),
    file: join(config.dataDir, 'audit', 'checkpoints.jsonl'),
    sequence: audit.sequence,
  });
  registerAuditRoutes(app, { db: db.kysely, audit, checkpoints });
  const previousKeks = (process.env.MICROAPP_KEK_PREVIOUS ?? '')
    .split(',')
    .filter(Boolean)
    .map((k) => kekOf(Buffer.from(k.trim(), 'base64')));
  const vault = config.vault ? createVaultClient(config.vault) : null;
  const secrets = createSecretService({
    db: db.kysely,
    audit,
    catalog,
    current: kekOf(kek),
    previous: previousKeks,
    vault: config.vault?.secretsBackend === 'vault' ? vault : null,
  });
  registerSecretRoutes(app, { secrets });
  const versions = createVersionsService({
    db: db.kysely,
    audit,
    catalog,
    advisories,
    keys,
    storeDir: join(config.dataDir, 'artifacts'),
    builderId: (by) => `${publicUrl}/builders/${by}/v1`,
    agentSession: createAgentSessionRecord(db.kysely),
  });
  registerSigningRoutes(app, {
    keys,
    versions,
    rotation: createKeyRotation({ db: db.kysely, audit, keys }),
  });
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
  // Lifecycle holds are read by the runtime and the gateway; the service itself needs the runtime.
  let lifecycleHold: ((appId: string) => Promise<{ status: number; message: string } | null>) | null = null;
  const hold = (appId: string) => (lifecycleHold ? lifecycleHold(appId) : Promise.resolve(null));
  // Resource limits for app instances: a cgroup hierarchy this process may write (v2 or v1).
  const cgroups = sandboxAvailable() ? detectCgroups() : null;
  if (cgroups)
    logger.info({ cgroup: `v${cgroups.version}` }, 'app instances get memory, CPU and process limits');
  else
    logger.warn(
      'app instances run WITHOUT memory, CPU and process limits: no writable cgroup hierarchy (run the server as root, or delegate a cgroup v2 subtree to it; see docs/runtime.md)',
    );
  if (sandboxAvailable() && !canDropToHostUser())
    logger.warn(
      "apps run as the server's own user, without a host user of their own or a data quota: both need the server to run as root (see docs/runtime.md)",
    );
  const connectors = createConnectorService({
    db: db.kysely,
    clock,
    audit,
    current: kekOf(kek),
    previous: previousKeks,
    vault: vault !== null,
  });
  registerConnectorRoutes(app, { connectors });
  const egress = createEgressBroker({
    connectors,
    db: db.kysely,
    clock,
    audit,
    dir: join(config.dataDir, 'runtime', 'egress'),
    pinned: config.devEgressHosts,
    tunnels: config.egressTunnels,
    // The company registry builds install from may sit on a private address: builds (only) may reach it.
    ...(config.npmRegistry ? { buildRegistry: registryAddress(config.npmRegistry) } : {}),
    onBytes: (name, _host, out, inBytes) => platformMetrics?.egressBytes(name, out, inBytes),
    policy: async (input, subject) => {
      if (!engine) return [];
      const result = await engine.admission(input);
      await engine.log(db.kysely, result.decisions, subject);
      return result.denials;
    },
    ...(engine
      ? {
          dlp: async (input, subject) => {
            const d = await engine.decide('data.microapp.dlp', input);
            await engine.log(db.kysely, [d], subject);
            return dlpVerdictOf(d.result, input);
          },
          refuseModel: async (input) => {
            const d = await engine.decide<unknown>('data.microapp.models.refuse', input);
            await engine.log(db.kysely, [d], input.app);
            return Array.isArray(d.result) ? d.result.map(String).sort() : [];
          },
        }
      : {}),
  });
  const credentials = createDatabaseCredentials({
    db: db.kysely,
    audit,
    vault,
    connectors,
    egress,
    onError: (message, error) => logger.error({ err: error }, message),
  });
  const appLogs = createAppLogs({ db: db.kysely, clock, retention: config.logRetention });
  const deployments = createDeploymentService({
    identityKey: identitySigningKey(kek),
    advisories,
    sandboxUidBase: config.sandboxUidBase,
    dataVolumeMb: config.appDataMb,
    appLogs,
    db: db.kysely,
    audit,
    catalog,
    versions,
    secrets,
    engine,
    runtimeDir: join(config.dataDir, 'runtime'),
    idleMs: config.idleMinutes * 60_000,
    hold,
    notifications,
    onCrash: (name, outcome) => platformMetrics?.crash(name, outcome),
    onOutOfMemory: (name) => platformMetrics?.outOfMemory(name),
    appUrl: (site) => hosts.urlOf(site),
    egress,
    cgroups,
    credentials,
    kubernetes: config.kubernetes,
  });
  registerDeploymentRoutes(app, { deployments });
  const tracing = createTracing({ ...config.otlp, serviceVersion: version });
  if (tracing.enabled) logger.info({ endpoint: config.otlp.endpoint }, 'traces go to the OTLP collector');
  const builds = createBuildService({
    buildsPerHour: config.quotas.buildsPerHour,
    tracing,
    egress,
    ...(config.npmRegistry ? { npmRegistry: config.npmRegistry } : {}),
    ...(config.npmCaFile ? { npmCaFile: config.npmCaFile } : {}),
    ...(config.npmTokenFile ? { npmTokenFile: config.npmTokenFile } : {}),
    db: db.kysely,
    clock,
    audit,
    catalog,
    tokens,
    deployments,
    workDir: join(config.dataDir, 'builds'),
    cgroups,
    buildLimits: config.buildLimits,
    platformUrl: () => publicUrl!,
    appUrl: hosts.urlOf,
  });
  registerBuildRoutes(app, { builds });
  const usage = createUsageService({ db: db.kysely, catalog, logger, clock });
  platformMetrics = registerPlatformMetrics({
    registry: usage.registry,
    app,
    db: db.kysely,
    instances: () => deployments.running(),
  });
  const lifecycleSteps = createLifecycleSteps({
    db: db.kysely,
    clock,
    audit,
    notifications,
    deployments,
    secrets,
    kek: kekOf(kek),
    runtimeDir: join(config.dataDir, 'runtime'),
    archiveDir: join(config.dataDir, 'archives'),
    settings: config.lifecycle,
  });
  const lifecycle = createLifecycleService({
    db: db.kysely,
    clock,
    audit,
    notifications,
    catalog,
    deployments,
    advisories,
    steps: lifecycleSteps,
    keks: [kekOf(kek), ...previousKeks],
    settings: config.lifecycle,
  });
  lifecycleHold = lifecycle.hold;
  registerRoleMappingRoute(app, { oidc: () => oidc, dev: config.dev });
  registerOffboardingRoutes(app, {
    offboarding: createOffboardingService({
      db: db.kysely,
      clock,
      audit,
      notifications,
      catalog,
      deployments,
      settings: config.lifecycle,
    }),
  });
  registerLifecycleRoutes(app, {
    lifecycle,
    graduation: createGraduation({ db: db.kysely, clock, audit, catalog, versions, notifications }),
  });
  const alerts = createAdvisoryAlerts({ db: db.kysely, clock, audit, advisories, notifications });
  await jobs.register({
    name: 'lifecycle',
    everySeconds: config.jobs.lifecycleHours * 3600,
    run: (ctx) => lifecycle.runJob(ctx),
  });
  await jobs.register({
    name: 'usage-retention',
    everySeconds: 86_400,
    run: () => usage.prune(config.usageRetentionDays),
  });
  const slo = createSloAlerts({ db: db.kysely, clock, notifications, flush: () => usage.flush() });
  await jobs.register({
    name: 'log-retention',
    everySeconds: 86_400,
    run: async () => ({ deleted: await appLogs.prune() }),
  });
  await jobs.register({
    name: 'database-credentials',
    everySeconds: 60,
    run: async () => ({ revoked: await credentials.revokeExpired() }),
  });
  await jobs.register({ name: 'slo-alerts', everySeconds: 300, run: () => slo.run() });
  const egressAlerts = createEgressAlerts({ db: db.kysely, clock, notifications });
  await jobs.register({ name: 'egress-volume-alerts', everySeconds: 900, run: () => egressAlerts.run() });
  const digest = createReviewDigest({ db: db.kysely, clock, approvals, notifications });
  await jobs.register({ name: 'review-digest', everySeconds: 86_400, run: () => digest.run() });
  await jobs.register({ name: 'advisory-alerts', everySeconds: 3600, run: () => alerts.run() });
  if (config.siemSyslog) {
    const siem = createSiemExport({
      db: db.kysely,
      audit,
      target: config.siemSyslog,
      checkpoint: () => checkpoints.make(),
    });
    await jobs.register({ name: 'siem-export', everySeconds: 30, run: () => siem.run() });
  }
  await jobs.register({
    name: 'audit-checkpoint',
    everySeconds: 60,
    run: async () => ({ seq: (await checkpoints.make())?.seq ?? null }),
  });
  await jobs.register({
    name: 'notifications',
    everySeconds: 60,
    run: () => notifications.deliverDue(),
  });
  const devClock = createDevClock({ db: db.kysely, audit, clock, jobs, dev: config.dev });
  await devClock.resume();
  registerJobRoutes(app, { jobs, devClock });
  registerUsageRoutes(app, { usage });
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
        templatesDir: defaultTemplatesDir,
        appUrl: hosts.urlOf,
      },
    });
  }

  await registerConsoleRoutes(app, { dir: config.consoleDir ?? defaultConsoleDir });
  app.get(
    '/healthz',
    { config: { access: publicRoute('liveness probe') }, schema: { hide: true } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    { config: { access: publicRoute('readiness probe') }, schema: { hide: true } },
    async (_req, reply) => {
      if (!(await isReachable(db))) return reply.status(503).send({ status: 'database unreachable' });
      // A KEK that does not open the signing key would fail the first publish: not ready.
      if (!(await keys.usable()))
        return reply.status(503).send({
          status:
            'the key-encryption key (MICROAPP_KEK) does not open the signing key in the database: it is not the key this data was written with',
        });
      return reply.status(200).send({ status: 'ready' });
    },
  );
  app.get(
    '/api/v1/meta',
    {
      config: { access: publicRoute('tells clients what kind of server this is') },
      schema: { tags: ['meta'] },
    },
    async () => ({
      name: 'microapp',
      version,
      dev: config.dev,
      database: db.dialect,
      issuer: oidc?.issuer ?? null,
      // Apps answer at NAME.appsDomain (previews at NAME--preview.appsDomain).
      appsDomain: hosts.domain(),
    }),
  );
  app.get(
    '/api/openapi.json',
    { config: { access: publicRoute('the API description holds no data') }, schema: { hide: true } },
    async () => app.swagger(),
  );

  await app.listen({ port: config.port, host: config.host });
  const { port } = app.server.address() as AddressInfo;
  const host =
    config.host === '0.0.0.0' || config.host === '::'
      ? 'localhost'
      : config.host.includes(':')
        ? `[${config.host}]`
        : config.host;
  // On loopback the public name is localhost: what the README, the CLI default and browsers use.
  const publicHost = host === '127.0.0.1' || host === '[::1]' ? 'localhost' : host;
  publicUrl = publicUrl ?? `http://${publicHost}:${port}`;

  let devIdp: DevIdp | null = null;
  if (config.dev) {
    // Loaded only in dev mode, so a production server never carries the password-less IdP.
    const { startDevIdp } = await import('./modules/identity/dev-idp.ts');
    devIdp = await startDevIdp({
      port: config.devIdpPort,
      host: '127.0.0.1',
      redirectUri: `${publicUrl}/auth/callback`,
    });
    oidc = {
      issuer: devIdp.issuer,
      clientId: devIdp.clientId,
      clientSecret: devIdp.clientSecret,
      groupsClaim: 'groups',
      departmentClaim: 'department',
      managerClaim: 'manager',
      groupRoles: devGroupRoles,
    };
  }
  const url = publicUrl;
  // Roles left by instances of a server that stopped without dropping them go first; then apps that were
  // running when the server stopped start again (each verified again, each with new roles).
  const orphans = await credentials.revokeOrphans();
  if (orphans) logger.info({ revoked: orphans }, 'dropped database roles of instances that no longer run');
  const recovery = await deployments.recover();
  const interrupted = await builds.recover();
  if (interrupted)
    logger.warn({ builds: interrupted }, 'builds interrupted by the last restart were marked failed');
  if (recovery.recovered.length || recovery.failed.length) logger.info(recovery, 'recovered running apps');
  if (config.jobs.enabled) jobs.start();
  logger.info(
    { url, dev: config.dev, database: db.dialect, issuer: oidc?.issuer },
    'microapp server listening',
  );

  return {
    url,
    internals: { secrets, usage, clock, jobs, credentials, tracing },
    app,
    db,
    devIdp,
    async close() {
      await jobs.stop();
      await builds.close();
      await policyIsolate.close();
      notifications.close();
      await deployments.shutdown();
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
      if (!options.db) await db.destroy();
    },
  };
}
