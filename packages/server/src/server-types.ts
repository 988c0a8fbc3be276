import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AdjustableClock } from './clock.ts';
import type { Db } from './db/database.ts';
import type { DatabaseCredentials } from './modules/connectors/database-credentials.ts';
import type { DevIdp } from './modules/identity/dev-idp.ts';
import type { JobRunner } from './modules/jobs/job-runner.ts';
import type { RepoStore } from './modules/repos/repo-store.ts';
import type { RiskEvaluator } from './modules/risk/risk-evaluator.ts';
import type { DeploymentService } from './modules/runtime/deployment-service.ts';
import type { SecretService } from './modules/secrets/secret-service.ts';
import type { UsageService } from './modules/usage/usage-service.ts';
import type { Tracing } from './tracing.ts';

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
    /** Signs who is calling an app, as the gateway does for each request (X-Microapp-Identity). */
    identity: DeploymentService['identityToken'];
    /** The apps' repositories, as the git server and the console's Deploy write them. */
    repoStore: RepoStore;
    /** The port the cluster's pods reach the egress broker on (MICROAPP_EGRESS_LISTEN), when it is served. */
    egressPort: number | null;
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
