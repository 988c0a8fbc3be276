import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Clock } from './clock.ts';
import type { ServerConfig } from './config.ts';
import type { Database } from './db/schema.ts';
import type { AdvisoryService } from './modules/advisories/advisory-service.ts';
import type { AuditService } from './modules/audit/audit-service.ts';
import type { BlobStore } from './modules/blobs/blob-store.ts';
import type { CatalogService } from './modules/catalog/catalog-service.ts';
import { registerOffboardingRoutes } from './modules/identity/offboarding-routes.ts';
import { createOffboardingService } from './modules/identity/offboarding-service.ts';
import { createGraduation } from './modules/lifecycle/graduation.ts';
import { registerLifecycleRoutes } from './modules/lifecycle/lifecycle-routes.ts';
import { createLifecycleService } from './modules/lifecycle/lifecycle-service.ts';
import { createLifecycleSteps } from './modules/lifecycle/lifecycle-steps.ts';
import { createOverview } from './modules/lifecycle/overview.ts';
import { registerOverviewRoute } from './modules/lifecycle/overview-routes.ts';
import type { NotificationService } from './modules/notifications/notification-service.ts';
import type { DeploymentService } from './modules/runtime/deployment-service.ts';
import type { Kek } from './modules/secrets/envelope.ts';
import type { SecretService } from './modules/secrets/secret-service.ts';
import type { VersionsService } from './modules/signing/versions-service.ts';

/** The part of the composition root that retires apps: lifecycle, offboarding and graduation, with routes. */
export function composeLifecycle(
  app: FastifyInstance,
  deps: {
    config: ServerConfig;
    db: Kysely<Database>;
    clock: Clock;
    audit: AuditService;
    notifications: NotificationService;
    catalog: CatalogService;
    deployments: DeploymentService;
    advisories: AdvisoryService;
    secrets: SecretService;
    versions: VersionsService;
    /** Where sealed archives go (modules/blobs). */
    blobs: BlobStore;
    /** The current KEK first, then the previous ones (archives written under them still open). */
    keks: Kek[];
    /** An app's repository as a git bundle, for the graduation bundle. */
    repositoryBundle?: (appId: string) => Promise<Buffer | null>;
  },
) {
  const { config, db, clock, audit, notifications, catalog, deployments, advisories, secrets, versions } =
    deps;
  const kek = deps.keks[0]!;
  const keks = deps.keks;
  const lifecycleSteps = createLifecycleSteps({
    db: db,
    clock,
    audit,
    notifications,
    deployments,
    secrets,
    kek,
    runtimeDir: join(config.dataDir, 'runtime'),
    archiveDir: join(config.dataDir, 'archives'),
    blobs: deps.blobs,
    settings: config.lifecycle,
  });
  const lifecycle = createLifecycleService({
    db: db,
    clock,
    audit,
    notifications,
    catalog,
    deployments,
    advisories,
    steps: lifecycleSteps,
    keks,
    settings: config.lifecycle,
  });
  registerOverviewRoute(app, { overview: createOverview({ db, clock, settings: config.lifecycle }) });
  registerOffboardingRoutes(app, {
    offboarding: createOffboardingService({
      db: db,
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
    graduation: createGraduation({
      db: db,
      clock,
      audit,
      catalog,
      versions,
      notifications,
      ...(deps.repositoryBundle ? { repositoryBundle: deps.repositoryBundle } : {}),
    }),
  });
  return lifecycle;
}
