import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import type { AdvisoryService } from '../advisories/advisory-service.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { DatabaseCredentials } from '../connectors/database-credentials.ts';
import type { EgressBroker } from '../egress/egress-broker.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import type { ReplicaLease } from '../replicas/replica-lease.ts';
import type { SecretService } from '../secrets/secret-service.ts';
import type { UnpackLimits } from '../signing/artifact-contents.ts';
import type { VersionsService } from '../signing/versions-service.ts';
import type { AppLogs } from './app-logs.ts';
import type { CgroupDriver } from './cgroups.ts';
import type { IdentityKey } from './identity-key.ts';
import type { KubernetesSettings } from './kubernetes-settings.ts';
import type { SandboxedProcess, SandboxSpec } from './sandbox.ts';

// What the deployment service's parts share: environments and sites, a running instance, the app a
// deployment is for, and the services the platform hands the runtime.

/** Where a version runs: `preview` for the owner and reviewers, `live` for the app's audience. */
export type Env = 'live' | 'preview';
export const envs: Env[] = ['live', 'preview'];

/** The host label and instance key of an app's environment: `NAME` for live, `NAME--preview` for preview. */
export const siteOf = (name: string, env: Env) => (env === 'live' ? name : `${name}--preview`);
export function parseSite(site: string): { name: string; env: Env } {
  return site.endsWith('--preview')
    ? { name: site.slice(0, -'--preview'.length), env: 'preview' }
    : { name: site, env: 'live' };
}

/** A running instance of a version in one environment. */
export type Instance = {
  deploymentId: string;
  app: string;
  /** The instance key and host label (see `siteOf`). */
  site: string;
  env: Env;
  appId: string;
  version: string;
  process: SandboxedProcess;
  spec: SandboxSpec;
  stopping: boolean;
  crashes: number[];
  /** Requests the gateway is forwarding to this instance; an upgrade drains them before stopping it. */
  inflight: number;
  lastRequestAt: number;
};

/** The app a deployment is for, as the runtime needs it. */
export type Target = { appId: string; name: string; owner: string; tier: string; manifest: Manifest };

/** Restarts after a crash wait 0.5 s, 1 s, 2 s … up to 30 s; more than five crashes in five minutes is a failure. */
export const restartPolicy = { firstDelayMs: 500, maxDelayMs: 30_000, maxCrashes: 5, windowMs: 5 * 60_000 };

/** What the platform hands the runtime. */
export type DeploymentDeps = {
  db: Kysely<Database>;
  /** This replica's lease: it runs the deployments it started, and takes over only a dead replica's. */
  lease?: Pick<ReplicaLease, 'id' | 'mayTakeOver'>;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  versions: Pick<VersionsService, 'get' | 'verifyStored'>;
  secrets: Pick<SecretService, 'valuesFor'>;
  engine: Pick<PolicyEngine, 'admission' | 'log'> | null;
  runtimeDir: string;
  /** How far an artifact may expand when it is unpacked to run. */
  unpackLimits?: UnpackLimits;
  /** The first of the host uids apps run as (each app gets one of the 60,000 after it). */
  sandboxUidBase?: number;
  /** Each app's data quota in MB (a filesystem of its own); 0 or absent: no quota. */
  dataVolumeMb?: number;
  /** Stop apps after this long without a request; 0 keeps them running. */
  idleMs?: number;
  /** Why an app may not run now (stopped for inactivity, decommissioned), or null. */
  hold?: (appId: string) => Promise<{ message: string } | null>;
  /** Tells an owner when the supervisor gives up on a crashing app. */
  notifications?: Pick<NotificationService, 'notify'>;
  /** Counts crashes for metrics: `restarted` or `gave_up`. */
  onCrash?: (app: string, outcome: 'restarted' | 'gave_up') => void;
  /** Counts instances the kernel killed for going over their memory limit. */
  onOutOfMemory?: (app: string) => void;
  /** Where a site (an app, or `NAME--preview`) answers. */
  appUrl?: (site: string) => string;
  /** The egress broker: each instance's only way out. */
  egress?: Pick<EgressBroker, 'open' | 'close' | 'closeAll'>;
  /** Where instances get their memory, CPU and process limits; null runs them unlimited (and says so). */
  cgroups?: CgroupDriver | null;
  /** Where instances' output is stored, redacted of their secrets. */
  appLogs?: Pick<AppLogs, 'writer' | 'read'>;
  /** Where the Kubernetes driver's objects go; without it the driver is off. */
  kubernetes?: KubernetesSettings;
  /** Per-instance database roles for the app's PostgreSQL connectors, dropped when the instance stops. */
  credentials?: Pick<DatabaseCredentials, 'issue' | 'revoke'>;
  /**
   * The advisory data, to scan a version again when a person deploys or promotes it: an exception that
   * expired or was revoked since it was published, or a new advisory, blocks it as it would block a build.
   */
  advisories?: Pick<AdvisoryService, 'scan'>;
  /** The key identities are signed with; the same on every replica and after a restart (identity-key.ts). */
  identityKey?: IdentityKey;
};
