import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { type GitHostConfig, gitHostFrom } from './config-git-host.ts';
import {
  blobRegistryFrom,
  gitStoreFrom,
  metricsTokenFileFrom,
  replicaIdFrom,
  replicaLeaseSecondsFrom,
  replicaUrlFrom,
  type TlsFiles,
  tlsFrom,
} from './config-scale.ts';
import {
  buildSettingsFrom,
  lifecycleFrom,
  notificationsFrom,
  parseDevEgressHosts,
  parseGroupRoles,
  parsePort,
  positiveInt,
  vaultSettings,
} from './config-sections.ts';
import { type DatabaseOptions, databaseOptionsFrom } from './db/database.ts';
import type { OciRegistrySettings } from './modules/blobs/oci-blob-store.ts';
import type { OidcSettings } from './modules/identity/oidc-settings.ts';
import type { LifecycleSettings } from './modules/lifecycle/lifecycle-rules.ts';
import type { NotificationChannels } from './modules/notifications/notification-service.ts';
import { defaultLogRetention, type LogRetention } from './modules/runtime/app-logs.ts';
import type { ResourceLimits } from './modules/runtime/cgroups.ts';
import { type KubernetesSettings, kubernetesSettingsFrom } from './modules/runtime/kubernetes-settings.ts';
import type { VaultSettings } from './modules/secrets/vault.ts';

export { devGroupRoles, type GroupGrant, type OidcSettings } from './modules/identity/oidc-settings.ts';

/** Everything the server needs to start; built once by `loadConfig` and passed down. */
export type ServerConfig = {
  dev: boolean;
  host: string;
  port: number;
  /** Served over HTTPS with this certificate (MICROAPP_TLS_CERT_FILE, MICROAPP_TLS_KEY_FILE), or plain HTTP. */
  tls: TlsFiles | null;
  /** What the broker serves the cluster's pods with (MICROAPP_EGRESS_TLS_*, else the platform's `tls`). */
  egressTls: TlsFiles | null;
  /** The file with the metrics scraper's token (MICROAPP_METRICS_TOKEN_FILE), read at each scrape. */
  metricsTokenFile: string | null;
  publicUrl: string | null;
  dataDir: string;
  database: DatabaseOptions;
  devIdpPort: number;
  /** null in dev mode: the embedded IdP fills it in once it listens. */
  oidc: OidcSettings | null;
  sessionTtlHours: number;
  /** Minutes without a request after which an app is stopped, to start again on its next request (0: never). */
  idleMinutes: number;
  logLevel: string;
  /** A log line per HTTP request (method, path without its query, status, time); off unless asked. */
  requestLog: boolean;
  lifecycle: LifecycleSettings;
  jobs: { enabled: boolean; leaseSeconds: number; lifecycleHours: number };
  notifications: NotificationChannels;
  /** Where the audit trail streams to (RFC 5424 syslog over TCP), or null. */
  siemSyslog: string | null;
  /** The npm registry platform builds install from (through the egress broker); null is the public one. */
  npmRegistry: string | null;
  /** A PEM bundle of the CA(s) the registry's certificate chains to, which builds trust; null: the usual ones. */
  npmCaFile: string | null;
  /** Proxies whose X-Forwarded-For is believed (MICROAPP_TRUSTED_PROXIES); none by default. */
  trustedProxies: string[];
  /** A file holding the registry's read token (MICROAPP_NPM_TOKEN_FILE): handed to install steps only. */
  npmTokenFile: string | null;
  /** Days app log lines are kept, by tier. */
  logRetention: LogRetention;
  /** OpenTelemetry traces over OTLP/HTTP: the collector's base URL and its headers; null endpoint is off. */
  otlp: { endpoint: string | null; headers: Record<string, string> };
  /** The built web console (packages/console/dist); null serves the platform's default build. */
  consoleDir: string | null;
  /** The vetted templates apps start from (MICROAPP_TEMPLATES_DIR); null: the ones shipped in templates/. */
  templatesDir: string | null;
  /** The DNS domain app hosts live under (`NAME.DOMAIN`); null: `apps.` + the public URL's host name. */
  appsDomain: string | null;
  /** The Kubernetes driver's namespaces and runtime image (it renders objects; it needs no cluster access). */
  kubernetes: KubernetesSettings;
  /** `--dev` only: names the egress broker resolves to fixed addresses (local stand-ins for outside APIs). */
  devEgressHosts: Map<string, { address: string; port: number }>;
  /** Whether apps may open CONNECT tunnels through the broker (opaque to DLP); off by default. */
  egressTunnels: boolean;
  /** Days request rows are kept (last use per app is kept apart, for good). */
  usageRetentionDays: number;
  /**
   * HashiCorp Vault, when the platform uses one: app secrets in its KV version 2 engine (`secretsBackend:
   * vault`), and database connectors whose roles come from its database secrets engine. null: no Vault.
   */
  vault: (VaultSettings & { secretsBackend: 'local' | 'vault' }) | null;
  /** What one platform build (its pipeline and every step) may use, through cgroups when the host has them. */
  buildLimits: ResourceLimits;
  /** Only versions a merged change request built are signed (MICROAPP_SHIP_ONLY_MERGED_CHANGES); off by default. */
  shipOnlyMergedChanges: boolean;
  /** The most an app may ask for in its manifest (`runtime.memoryMb`, `runtime.cpu`); more is refused. */
  appMaximums: { memoryMb: number; cpu: number };
  /** Per-person quotas: new apps registered per day, platform builds requested per hour (admins are exempt). */
  quotas: { registrationsPerDay: number; buildsPerHour: number };
  /** The first host uid of the range apps run as, each app one of the 60,000 after it (never 0). */
  sandboxUidBase: number;
  /** Each app's data quota in MB: its data lives on a filesystem of that size (needs root); 0: no quota. */
  appDataMb: number;
  /** The OCI registry every replica keeps blobs in (MICROAPP_BLOB_REGISTRY); null: the data folder. */
  blobRegistry: OciRegistrySettings | null;
  /** The company's GitHub or GitLab, where apps' repositories live (MICROAPP_GIT_HOST); null: the platform's own. */
  gitHost: GitHostConfig | null;
  /**
   * Where the platform's own repositories live (MICROAPP_GIT_STORE): `shared`, in the database and the blob
   * store, each replica keeping a copy as a cache; `folder`, in the data folder's `repos/` alone.
   */
  gitStore: 'shared' | 'folder';
  /** This replica's name and lease: it owns the builds and app instances it runs (MICROAPP_REPLICA_ID). */
  replica: { id: string; leaseSeconds: number; url: string | null };
};

/** Flags from the command line; each wins over the environment, which wins over the config file. */
export type ConfigFlags = {
  dev?: boolean;
  host?: string;
  port?: number;
  dataDir?: string;
  config?: string;
  devIdpPort?: number;
};

/** Thrown when the server cannot start; the message lists every problem and how to fix it. */
export class ConfigError extends Error {
  constructor(problems: string[]) {
    super(`microapp server cannot start:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type FileConfig = {
  host?: string;
  port?: number;
  publicUrl?: string;
  dataDir?: string;
  databaseUrl?: string;
  sessionTtlHours?: number;
  appsDomain?: string;
  oidc?: Partial<OidcSettings>;
};

function readConfigFile(path: string | undefined, problems: string[]): FileConfig {
  if (!path) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as FileConfig;
  } catch (error) {
    problems.push(`config file ${path} could not be read as JSON: ${(error as Error).message}`);
    return {};
  }
}

/**
 * Builds the server configuration from flags, environment and an optional JSON config file.
 * @example loadConfig({ dev: true, port: 0 }, process.env)
 */
export function loadConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv): ServerConfig {
  const problems: string[] = [];
  const file = readConfigFile(flags.config ?? env.MICROAPP_CONFIG, problems);
  const dev = flags.dev ?? env.MICROAPP_DEV === '1';
  const dataDir = resolve(flags.dataDir ?? env.MICROAPP_DATA_DIR ?? file.dataDir ?? './.microapp');
  const port = flags.port ?? parsePort(env.MICROAPP_PORT, 'MICROAPP_PORT', problems) ?? file.port ?? 8080;
  const devIdpPort =
    flags.devIdpPort ?? parsePort(env.MICROAPP_DEV_IDP_PORT, 'MICROAPP_DEV_IDP_PORT', problems) ?? 8081;
  const host = flags.host ?? env.MICROAPP_HOST ?? file.host ?? '127.0.0.1';
  const databaseUrl = env.DATABASE_URL ?? file.databaseUrl;
  // A URL the server does not know must not quietly become a local SQLite file. Only the scheme is
  // printed: the rest may hold a password.
  if (databaseUrl && !/^(postgres(ql)?:\/\/|sqlite:)/.test(databaseUrl))
    problems.push(
      `DATABASE_URL must be postgres://user@host:5432/database or sqlite:/path/to/file.sqlite, got a URL starting "${databaseUrl.split(/[:/]/)[0]!.slice(0, 20)}:"`,
    );
  // Development mode signs anyone in without a password: it never takes over a server set up for SSO.
  const issuerSet = env.MICROAPP_OIDC_ISSUER ?? file.oidc?.issuer;
  if (dev && issuerSet)
    problems.push(
      `${flags.dev ? '--dev' : 'MICROAPP_DEV=1'} would run a server configured for single sign-on (MICROAPP_OIDC_ISSUER is ${issuerSet}) in development mode, where anyone signs in as anyone without a password: drop ${flags.dev ? '--dev' : 'MICROAPP_DEV'}, or try the platform on a machine of your own without the SSO settings`,
    );
  const trustedProxies = (env.MICROAPP_TRUSTED_PROXIES ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const proxy of trustedProxies)
    if (!isProxyAddress(proxy))
      problems.push(
        `MICROAPP_TRUSTED_PROXIES takes addresses or CIDRs of the proxies in front of the platform, such as 10.0.0.0/8,127.0.0.1; "${proxy}" is neither`,
      );
  const publicUrl = env.MICROAPP_PUBLIC_URL ?? file.publicUrl ?? null;
  if (publicUrl !== null) {
    let ok = false;
    try {
      const u = new URL(publicUrl);
      ok = ['http:', 'https:'].includes(u.protocol) && !u.username && !u.password && !u.search && !u.hash;
    } catch {}
    if (!ok)
      problems.push(
        `MICROAPP_PUBLIC_URL must be the address people open, such as https://microapp.example.com (http or https, no query), got "${publicUrl}"`,
      );
  }
  const sessionTtlHours = Number(env.MICROAPP_SESSION_TTL_HOURS ?? file.sessionTtlHours ?? 12);
  if (!Number.isFinite(sessionTtlHours) || sessionTtlHours <= 0 || sessionTtlHours > 24 * 30)
    problems.push('MICROAPP_SESSION_TTL_HOURS must be between 0 and 720');

  const lifecycle = lifecycleFrom(env, problems);
  const notifications = notificationsFrom(env, dev, problems);
  const siemSyslog = env.MICROAPP_SIEM_SYSLOG || null;
  if (siemSyslog && !/^tcp:\/\/[^/:]+:\d{1,5}\/?$/.test(siemSyslog))
    problems.push(`MICROAPP_SIEM_SYSLOG must look like tcp://siem.internal:6514, got "${siemSyslog}"`);
  const build = buildSettingsFrom(env, problems);
  const logRetention = { ...defaultLogRetention };
  if (env.MICROAPP_LOG_RETENTION_DAYS) {
    const days = env.MICROAPP_LOG_RETENTION_DAYS.split(',').map((d) => Number(d.trim()));
    if (days.length !== 3 || days.some((d) => !Number.isInteger(d) || d < 1 || d > 3650))
      problems.push(
        `MICROAPP_LOG_RETENTION_DAYS is days for low, medium and high tier apps, such as 7,30,90; got "${env.MICROAPP_LOG_RETENTION_DAYS}"`,
      );
    else [logRetention.low, logRetention.medium, logRetention.high] = days as [number, number, number];
  }
  const otlpEndpoint = env.MICROAPP_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || null;
  if (otlpEndpoint && !/^https?:\/\/[^\s]+$/.test(otlpEndpoint))
    problems.push(
      `MICROAPP_OTLP_ENDPOINT must be the collector's URL, such as http://collector:4318, got "${otlpEndpoint}"`,
    );
  const otlpHeaders: Record<string, string> = {};
  for (const pair of (env.MICROAPP_OTLP_HEADERS || env.OTEL_EXPORTER_OTLP_HEADERS || '')
    .split(',')
    .filter(Boolean)) {
    const at = pair.indexOf('=');
    // The value may be an API key: the problem names the header, never the value.
    if (at < 1) problems.push('MICROAPP_OTLP_HEADERS is name=value pairs separated by commas');
    else otlpHeaders[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  const usageRetentionDays = positiveInt(env, 'MICROAPP_USAGE_RETENTION_DAYS', 400, problems);
  if (usageRetentionDays < 367)
    problems.push('MICROAPP_USAGE_RETENTION_DAYS must be at least 367: usage summaries reach back 366 days');
  const requestLog = env.MICROAPP_REQUEST_LOG ?? 'off';
  if (requestLog !== 'on' && requestLog !== 'off')
    problems.push(`MICROAPP_REQUEST_LOG is on or off, got "${requestLog.slice(0, 20)}"`);
  const jobs = {
    enabled: env.MICROAPP_JOBS !== 'off',
    leaseSeconds: positiveInt(env, 'MICROAPP_JOB_LEASE_SECONDS', 60, problems),
    lifecycleHours: positiveInt(env, 'MICROAPP_LIFECYCLE_JOB_HOURS', 24, problems),
  };

  let oidc: OidcSettings | null = null;
  if (!dev) {
    const f = file.oidc ?? {};
    const issuer = env.MICROAPP_OIDC_ISSUER ?? f.issuer;
    const clientId = env.MICROAPP_OIDC_CLIENT_ID ?? f.clientId;
    const clientSecret = env.MICROAPP_OIDC_CLIENT_SECRET ?? f.clientSecret;
    const groupRoles = parseGroupRoles(env.MICROAPP_OIDC_GROUP_ROLES ?? f.groupRoles, problems);
    if (!issuer)
      problems.push('no OIDC issuer: set MICROAPP_OIDC_ISSUER (or oidc.issuer in the config file)');
    if (!clientId) problems.push('no OIDC client id: set MICROAPP_OIDC_CLIENT_ID (or oidc.clientId)');
    if (!clientSecret)
      problems.push('no OIDC client secret: set MICROAPP_OIDC_CLIENT_SECRET (or oidc.clientSecret)');
    if (!env.MICROAPP_KEK && !env.MICROAPP_KEK_FILE)
      problems.push(
        'no key-encryption key for the signing key: set MICROAPP_KEK (base64 of 32 random bytes, e.g. `openssl rand -base64 32`) or MICROAPP_KEK_FILE',
      );
    if (!groupRoles || Object.keys(groupRoles).length === 0)
      problems.push(
        'no group-to-role mapping: set MICROAPP_OIDC_GROUP_ROLES, e.g. {"finance-builders":{"roles":["creator"]}}',
      );
    if (problems.length === 0) {
      oidc = {
        issuer: issuer!,
        clientId: clientId!,
        clientSecret: clientSecret!,
        groupsClaim: env.MICROAPP_OIDC_GROUPS_CLAIM ?? f.groupsClaim ?? 'groups',
        departmentClaim: env.MICROAPP_OIDC_DEPARTMENT_CLAIM ?? f.departmentClaim ?? 'department',
        managerClaim: env.MICROAPP_OIDC_MANAGER_CLAIM ?? f.managerClaim ?? 'manager',
        groupRoles: groupRoles!,
      };
    }
  }
  const devEgressHosts = parseDevEgressHosts(env.MICROAPP_DEV_EGRESS_HOSTS, dev, problems);
  const appsDomain = env.MICROAPP_APPS_DOMAIN?.toLowerCase() ?? file.appsDomain ?? null;
  if (
    appsDomain &&
    !/^(?=.{1,200}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(
      appsDomain,
    )
  )
    problems.push(`MICROAPP_APPS_DOMAIN must be a DNS name such as apps.example.com, got "${appsDomain}"`);
  const tunnels = (env.MICROAPP_EGRESS_TUNNELS ?? 'off').toLowerCase();
  if (!['on', 'off'].includes(tunnels))
    problems.push(`MICROAPP_EGRESS_TUNNELS must be on or off, got "${env.MICROAPP_EGRESS_TUNNELS}"`);
  const kubernetes = kubernetesSettingsFrom(env, problems);
  const vault = vaultSettings(env, problems);
  const appMaximums = {
    memoryMb: positiveInt(env, 'MICROAPP_APP_MAX_MEMORY_MB', 2048, problems),
    cpu: Number(env.MICROAPP_APP_MAX_CPU ?? 2),
  };
  if (!Number.isFinite(appMaximums.cpu) || appMaximums.cpu <= 0 || appMaximums.cpu > 64)
    problems.push(
      `MICROAPP_APP_MAX_CPU must be a number above 0 and at most 64, got "${env.MICROAPP_APP_MAX_CPU}"`,
    );
  const sandboxUidBase = positiveInt(env, 'MICROAPP_SANDBOX_UID_BASE', 200_000, problems);
  const appDataMb =
    env.MICROAPP_APP_DATA_MB === 'off' ? 0 : positiveInt(env, 'MICROAPP_APP_DATA_MB', 1024, problems);
  if (appDataMb && appDataMb < 16)
    problems.push(
      `MICROAPP_APP_DATA_MB must be at least 16 (an ext4 filesystem's smallest useful size) or off, got ${appDataMb}`,
    );
  if (sandboxUidBase + 60_000 > 2 ** 31 - 2)
    problems.push(
      `MICROAPP_SANDBOX_UID_BASE must leave room for 60,000 uids below 2^31, got ${sandboxUidBase}`,
    );
  const quotas = {
    registrationsPerDay: positiveInt(env, 'MICROAPP_QUOTA_REGISTRATIONS_PER_DAY', 20, problems),
    buildsPerHour: positiveInt(env, 'MICROAPP_QUOTA_BUILDS_PER_HOUR', 30, problems),
  };
  const blobRegistry = blobRegistryFrom(env, problems);
  const gitHost = gitHostFrom(env, problems);
  const gitStore = gitStoreFrom(env, blobRegistry !== null, problems);
  const tls = tlsFrom(env, problems);
  // The broker's own certificate (for its Service's name), or else the platform's.
  const egressTls = tlsFrom(env, problems, 'MICROAPP_EGRESS_TLS') ?? tls;
  // (A certificate that was given but does not load is already a problem of its own.)
  if (kubernetes.brokerListen && !env.MICROAPP_TLS_CERT_FILE && !env.MICROAPP_EGRESS_TLS_CERT_FILE)
    problems.push(
      "MICROAPP_EGRESS_LISTEN serves the cluster's pods over TLS only (their tokens and data cross the network): set MICROAPP_EGRESS_TLS_CERT_FILE and MICROAPP_EGRESS_TLS_KEY_FILE (or the platform's MICROAPP_TLS_*) to a certificate valid for the broker's Service name (microapp-egress.microapp-system.svc)",
    );
  const metricsTokenFile = metricsTokenFileFrom(env, problems);
  const replica = {
    id: replicaIdFrom(env, `${hostname()}:${dataDir}`, problems),
    leaseSeconds: replicaLeaseSecondsFrom(env, problems),
    url: replicaUrlFrom(env, problems),
  };
  const templatesDir = templatesDirFrom(env.MICROAPP_TEMPLATES_DIR, problems);
  if (problems.length > 0) {
    if (!dev)
      problems.push('or run `microapp server --dev` for a local trial with a built-in identity provider');
    throw new ConfigError(problems);
  }
  return {
    dev,
    host,
    port,
    tls,
    egressTls,
    metricsTokenFile,
    publicUrl,
    trustedProxies,
    dataDir,
    database: databaseOptionsFrom(databaseUrl, resolve(dataDir, 'microapp.sqlite')),
    devIdpPort,
    oidc,
    sessionTtlHours,
    idleMinutes: Number(env.MICROAPP_IDLE_MINUTES ?? 30),
    logLevel: env.MICROAPP_LOG_LEVEL ?? 'info',
    requestLog: requestLog === 'on',
    lifecycle,
    jobs,
    notifications,
    siemSyslog,
    otlp: { endpoint: otlpEndpoint, headers: otlpHeaders },
    logRetention,
    npmRegistry: build.npmRegistry,
    npmCaFile: build.npmCaFile,
    npmTokenFile: build.npmTokenFile,
    usageRetentionDays,
    consoleDir: env.MICROAPP_CONSOLE_DIR ? resolve(env.MICROAPP_CONSOLE_DIR) : null,
    templatesDir,
    devEgressHosts,
    egressTunnels: tunnels === 'on',
    appsDomain,
    kubernetes,
    vault,
    buildLimits: build.limits,
    shipOnlyMergedChanges: build.shipOnlyMergedChanges,
    appMaximums,
    quotas,
    sandboxUidBase,
    appDataMb,
    blobRegistry,
    gitHost,
    gitStore,
    replica,
  };
}

/** An IPv4 or IPv6 address, or one with a prefix length (a CIDR). */
function isProxyAddress(value: string): boolean {
  const [address, bits, extra] = value.split('/');
  const version = isIP(address ?? '');
  if (!version || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128);
}

/** MICROAPP_TEMPLATES_DIR: a folder of template folders (each with its template.json) and their `_shared`. */
function templatesDirFrom(value: string | undefined, problems: string[]): string | null {
  if (!value) return null;
  const dir = resolve(value);
  const templates = existsSync(dir)
    ? readdirSync(dir).filter((d) => !d.startsWith('_') && existsSync(join(dir, d, 'template.json')))
    : [];
  if (templates.length && existsSync(join(dir, '_shared'))) return dir;
  problems.push(
    `MICROAPP_TEMPLATES_DIR (${dir}) must be a folder of templates, each a folder with its template.json, beside their _shared folder (copy the platform's templates/ folder to start)`,
  );
  return null;
}
