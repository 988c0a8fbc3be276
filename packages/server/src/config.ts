import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type DatabaseOptions, databaseOptionsFrom } from './db/database.ts';
import type { Role, Specialty } from './modules/identity/principal.ts';
import { roles, specialties } from './modules/identity/principal.ts';
import { defaultLifecycleSettings, type LifecycleSettings } from './modules/lifecycle/lifecycle-rules.ts';
import type { NotificationChannels } from './modules/notifications/notification-service.ts';
import { defaultLogRetention, type LogRetention } from './modules/runtime/app-logs.ts';
import { defaultBuildLimits, type ResourceLimits } from './modules/runtime/cgroups.ts';
import {
  defaultKubernetesSettings,
  type KubernetesSettings,
} from './modules/runtime/kubernetes-manifests.ts';
import type { VaultSettings } from './modules/secrets/vault.ts';

/** What an IdP group grants. */
export type GroupGrant = { roles: Role[]; specialties: Specialty[] };

export type OidcSettings = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  groupsClaim: string;
  departmentClaim: string;
  /** The claim holding the user's manager's e-mail: who hears about an app its owner does not answer for. */
  managerClaim: string;
  groupRoles: Record<string, GroupGrant>;
};

/** Everything the server needs to start; built once by `loadConfig` and passed down. */
export type ServerConfig = {
  dev: boolean;
  host: string;
  port: number;
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
  lifecycle: LifecycleSettings;
  jobs: { enabled: boolean; leaseSeconds: number; lifecycleHours: number };
  notifications: NotificationChannels;
  /** Where the audit trail streams to (RFC 5424 syslog over TCP), or null. */
  siemSyslog: string | null;
  /** The npm registry platform builds install from (through the egress broker); null is the public one. */
  npmRegistry: string | null;
  /** A PEM bundle of the CA(s) the registry's certificate chains to, which builds trust; null: the usual ones. */
  npmCaFile: string | null;
  /** Days app log lines are kept, by tier. */
  logRetention: LogRetention;
  /** OpenTelemetry traces over OTLP/HTTP: the collector's base URL and its headers; null endpoint is off. */
  otlp: { endpoint: string | null; headers: Record<string, string> };
  /** The built web console (packages/console/dist); null serves the platform's default build. */
  consoleDir: string | null;
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
  /** The most an app may ask for in its manifest (`runtime.memoryMb`, `runtime.cpu`); more is refused. */
  appMaximums: { memoryMb: number; cpu: number };
  /** Per-person quotas: new apps registered per day, platform builds requested per hour (admins are exempt). */
  quotas: { registrationsPerDay: number; buildsPerHour: number };
  /** The first host uid of the range apps run as, each app one of the 60,000 after it (never 0). */
  sandboxUidBase: number;
  /** Each app's data quota in MB: its data lives on a filesystem of that size (needs root); 0: no quota. */
  appDataMb: number;
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

function parsePort(value: string | number | undefined, name: string, problems: string[]): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    problems.push(`${name} must be a port number from 0 to 65535, got "${value}"`);
    return undefined;
  }
  return port;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    problems.push(`${name} must be a whole number above 0, got "${raw}"`);
    return fallback;
  }
  return n;
}

/** The lifecycle schedule from MICROAPP_INACTIVITY_* and friends; see docs/operations.md. */
function lifecycleFrom(env: NodeJS.ProcessEnv, problems: string[]): LifecycleSettings {
  const d = defaultLifecycleSettings;
  const s: LifecycleSettings = {
    idleDays: positiveInt(env, 'MICROAPP_INACTIVITY_DAYS', d.idleDays, problems),
    stopAfterDays: positiveInt(env, 'MICROAPP_INACTIVITY_STOP_DAYS', d.stopAfterDays, problems),
    escalateAfterDays: positiveInt(env, 'MICROAPP_INACTIVITY_ESCALATE_DAYS', d.escalateAfterDays, problems),
    graceDays: positiveInt(env, 'MICROAPP_DECOMMISSION_GRACE_DAYS', d.graceDays, problems),
    archiveRetentionDays: positiveInt(
      env,
      'MICROAPP_ARCHIVE_RETENTION_DAYS',
      d.archiveRetentionDays,
      problems,
    ),
    maxLifetimeDays: { ...d.maxLifetimeDays },
    expiryNoticeDays: d.expiryNoticeDays,
  };
  if (s.escalateAfterDays <= s.stopAfterDays)
    problems.push(
      'MICROAPP_INACTIVITY_ESCALATE_DAYS must be more than MICROAPP_INACTIVITY_STOP_DAYS (both count from the warning)',
    );
  const lifetimes = env.MICROAPP_MAX_LIFETIME_DAYS;
  if (lifetimes) {
    for (const part of lifetimes.split(',')) {
      const m = /^\s*(low|medium|high)\s*=\s*(\d{1,5})\s*$/.exec(part);
      if (!m || Number(m[2]) === 0) {
        problems.push(
          `MICROAPP_MAX_LIFETIME_DAYS must look like "low=90,medium=180,high=365", got "${lifetimes}"`,
        );
        break;
      }
      s.maxLifetimeDays[m[1] as 'low'] = Number(m[2]);
    }
  }
  return s;
}

function notificationsFrom(env: NodeJS.ProcessEnv, dev: boolean, problems: string[]): NotificationChannels {
  const out: NotificationChannels = {};
  for (const [name, key] of [
    ['MICROAPP_SMTP_URL', 'smtpUrl'],
    ['MICROAPP_WEBHOOK_URL', 'webhookUrl'],
  ] as const) {
    const v = env[name];
    if (!v) continue;
    try {
      const u = new URL(v);
      const ok =
        key === 'smtpUrl'
          ? ['smtp:', 'smtps:'].includes(u.protocol)
          : ['http:', 'https:'].includes(u.protocol);
      if (!ok) throw new Error('scheme');
      out[key] = v;
    } catch {
      problems.push(
        key === 'smtpUrl'
          ? `${name} must be an smtp:// or smtps:// URL, e.g. smtp://mail.internal:25`
          : `${name} must be an http(s) URL`,
      );
    }
  }
  if (env.MICROAPP_MAIL_FROM) out.mailFrom = env.MICROAPP_MAIL_FROM;
  if (env.MICROAPP_WEBHOOK_SECRET) out.webhookSecret = env.MICROAPP_WEBHOOK_SECRET;
  if (out.webhookUrl && !out.webhookSecret && !dev)
    problems.push(
      'MICROAPP_WEBHOOK_URL needs MICROAPP_WEBHOOK_SECRET, so receivers can check each body is ours',
    );
  return out;
}

/** The group mapping used by the embedded development IdP's seeded users. */
export const devGroupRoles: Record<string, GroupGrant> = {
  'microapp-creators': { roles: ['creator'], specialties: [] },
  'microapp-security-reviewers': { roles: ['reviewer'], specialties: ['security'] },
  'microapp-compliance-reviewers': { roles: ['reviewer'], specialties: ['compliance'] },
  'microapp-admins': { roles: ['admin'], specialties: [] },
  'microapp-auditors': { roles: ['auditor'], specialties: [] },
};

function parseGroupRoles(raw: unknown, problems: string[]): Record<string, GroupGrant> | undefined {
  if (raw === undefined) return undefined;
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      problems.push(
        'MICROAPP_OIDC_GROUP_ROLES must be JSON, e.g. {"okta-finance-builders":{"roles":["creator"]}}',
      );
      return undefined;
    }
  }
  if (!value || typeof value !== 'object') {
    problems.push('the group-to-role mapping must be an object of group name to {roles, specialties}');
    return undefined;
  }
  const out: Record<string, GroupGrant> = {};
  for (const [group, grant] of Object.entries(value as Record<string, Partial<GroupGrant>>)) {
    const r = grant?.roles ?? [];
    const s = grant?.specialties ?? [];
    const badRole = r.find((x) => !(roles as readonly string[]).includes(x));
    const badSpecialty = s.find((x) => !(specialties as readonly string[]).includes(x));
    if (badRole)
      problems.push(`group "${group}" maps to unknown role "${badRole}" (known: ${roles.join(', ')})`);
    if (badSpecialty)
      problems.push(
        `group "${group}" maps to unknown specialty "${badSpecialty}" (known: ${specialties.join(', ')})`,
      );
    out[group] = { roles: r, specialties: s };
  }
  return out;
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
  const sessionTtlHours = Number(env.MICROAPP_SESSION_TTL_HOURS ?? file.sessionTtlHours ?? 12);
  if (!Number.isFinite(sessionTtlHours) || sessionTtlHours <= 0 || sessionTtlHours > 24 * 30)
    problems.push('MICROAPP_SESSION_TTL_HOURS must be between 0 and 720');

  const lifecycle = lifecycleFrom(env, problems);
  const notifications = notificationsFrom(env, dev, problems);
  const siemSyslog = env.MICROAPP_SIEM_SYSLOG || null;
  if (siemSyslog && !/^tcp:\/\/[^/:]+:\d{1,5}\/?$/.test(siemSyslog))
    problems.push(`MICROAPP_SIEM_SYSLOG must look like tcp://siem.internal:6514, got "${siemSyslog}"`);
  const npmRegistry = env.MICROAPP_NPM_REGISTRY || null;
  if (npmRegistry && !/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?(\/[^\s]*)?$/i.test(npmRegistry))
    problems.push(
      `MICROAPP_NPM_REGISTRY must be a registry URL such as https://npm.corp.example.com/, got "${npmRegistry}"`,
    );
  // The company CA the registry's certificate chains to (a PEM bundle): builds trust it for the registry.
  const npmCaFile = env.MICROAPP_NPM_CA_FILE || null;
  if (npmCaFile) {
    let pem = '';
    try {
      pem = readFileSync(npmCaFile, 'utf8');
    } catch (error) {
      problems.push(
        `MICROAPP_NPM_CA_FILE: ${npmCaFile} cannot be read (${(error as NodeJS.ErrnoException).code})`,
      );
    }
    if (pem && !pem.includes('-----BEGIN CERTIFICATE-----'))
      problems.push(
        `MICROAPP_NPM_CA_FILE: ${npmCaFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      );
  }
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
  const kubernetes: KubernetesSettings = {
    ...defaultKubernetesSettings,
    ...(env.MICROAPP_KUBERNETES_NAMESPACE ? { namespace: env.MICROAPP_KUBERNETES_NAMESPACE } : {}),
    ...(env.MICROAPP_KUBERNETES_PLATFORM_NAMESPACE
      ? { platformNamespace: env.MICROAPP_KUBERNETES_PLATFORM_NAMESPACE }
      : {}),
    ...(env.MICROAPP_KUBERNETES_RUNTIME_IMAGE ? { runtimeImage: env.MICROAPP_KUBERNETES_RUNTIME_IMAGE } : {}),
  };
  for (const [variable, value] of [
    ['MICROAPP_KUBERNETES_NAMESPACE', kubernetes.namespace],
    ['MICROAPP_KUBERNETES_PLATFORM_NAMESPACE', kubernetes.platformNamespace],
  ] as const)
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(value))
      problems.push(`${variable} must be a Kubernetes namespace name such as microapps, got "${value}"`);
  if (!/^[a-z0-9][a-z0-9._/:@-]{0,254}$/.test(kubernetes.runtimeImage))
    problems.push(
      `MICROAPP_KUBERNETES_RUNTIME_IMAGE must be an image reference such as registry.example.com/node@sha256:…, got "${kubernetes.runtimeImage}"`,
    );
  const vault = vaultSettings(env, problems);
  const buildLimits = { ...defaultBuildLimits };
  for (const [variable, key, min, max] of [
    ['MICROAPP_BUILD_MEMORY_MB', 'memoryMb', 256, 65536],
    ['MICROAPP_BUILD_CPU', 'cpu', 0.1, 64],
    ['MICROAPP_BUILD_PIDS', 'pids', 64, 65536],
  ] as const) {
    const raw = env[variable];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max || (key !== 'cpu' && !Number.isInteger(n)))
      problems.push(`${variable} must be a number from ${min} to ${max}, got "${raw}"`);
    else buildLimits[key] = n;
  }
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
  if (problems.length > 0) {
    if (!dev)
      problems.push('or run `microapp server --dev` for a local trial with a built-in identity provider');
    throw new ConfigError(problems);
  }
  return {
    dev,
    host,
    port,
    publicUrl: env.MICROAPP_PUBLIC_URL ?? file.publicUrl ?? null,
    dataDir,
    database: databaseOptionsFrom(databaseUrl, resolve(dataDir, 'microapp.sqlite')),
    devIdpPort,
    oidc,
    sessionTtlHours,
    idleMinutes: Number(env.MICROAPP_IDLE_MINUTES ?? 30),
    logLevel: env.MICROAPP_LOG_LEVEL ?? 'info',
    lifecycle,
    jobs,
    notifications,
    siemSyslog,
    otlp: { endpoint: otlpEndpoint, headers: otlpHeaders },
    logRetention,
    npmRegistry,
    npmCaFile,
    usageRetentionDays,
    consoleDir: env.MICROAPP_CONSOLE_DIR ? resolve(env.MICROAPP_CONSOLE_DIR) : null,
    devEgressHosts,
    egressTunnels: tunnels === 'on',
    appsDomain,
    kubernetes,
    vault,
    buildLimits,
    appMaximums,
    quotas,
    sandboxUidBase,
    appDataMb,
  };
}

/** MICROAPP_VAULT_*: where Vault is, its token (or a file an agent keeps fresh), and where app secrets go. */
function vaultSettings(
  env: NodeJS.ProcessEnv,
  problems: string[],
): (VaultSettings & { secretsBackend: 'local' | 'vault' }) | null {
  const backend = (env.MICROAPP_SECRETS_BACKEND ?? 'local').toLowerCase();
  if (backend !== 'local' && backend !== 'vault')
    problems.push(`MICROAPP_SECRETS_BACKEND must be local or vault, got "${env.MICROAPP_SECRETS_BACKEND}"`);
  const addr = env.MICROAPP_VAULT_ADDR;
  if (!addr) {
    if (backend === 'vault')
      problems.push(
        'MICROAPP_SECRETS_BACKEND=vault needs MICROAPP_VAULT_ADDR (e.g. https://vault.example.com:8200)',
      );
    return null;
  }
  if (!/^https?:\/\/[^/]+\/?$/.test(addr))
    problems.push(
      `MICROAPP_VAULT_ADDR must be Vault's base URL such as https://vault.example.com:8200, got "${addr}"`,
    );
  const file = env.MICROAPP_VAULT_TOKEN_FILE;
  const fixed = env.MICROAPP_VAULT_TOKEN;
  if (!file && !fixed)
    problems.push(
      'MICROAPP_VAULT_ADDR is set but there is no token: set MICROAPP_VAULT_TOKEN_FILE (a file a Vault agent keeps fresh) or MICROAPP_VAULT_TOKEN',
    );
  const segment = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
  const kvMount = env.MICROAPP_VAULT_KV_MOUNT ?? 'secret';
  const kvPrefix = env.MICROAPP_VAULT_KV_PREFIX ?? 'microapp';
  for (const [variable, value] of [
    ['MICROAPP_VAULT_KV_MOUNT', kvMount],
    ['MICROAPP_VAULT_KV_PREFIX', kvPrefix],
  ] as const)
    if (!segment.test(value) || value.split('/').some((p) => p === '.' || p === '..'))
      problems.push(`${variable} must be a Vault path such as secret, got "${value}"`);
  return {
    addr,
    token: () => (file ? readFileSync(file, 'utf8').trim() : (fixed ?? '')),
    namespace: env.MICROAPP_VAULT_NAMESPACE ?? null,
    kvMount,
    kvPrefix,
    secretsBackend: backend === 'vault' ? 'vault' : 'local',
  };
}

/** `api.bank.example.com=127.0.0.1:4000,other.example.com=127.0.0.1:4001`, accepted with `--dev` only. */
function parseDevEgressHosts(
  value: string | undefined,
  dev: boolean,
  problems: string[],
): Map<string, { address: string; port: number }> {
  const out = new Map<string, { address: string; port: number }>();
  if (!value) return out;
  if (!dev) {
    problems.push(
      'MICROAPP_DEV_EGRESS_HOSTS pins names past the egress rules and is accepted only with --dev',
    );
    return out;
  }
  for (const entry of value.split(',')) {
    const m = /^\s*([a-z0-9.-]+)=(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})\s*$/.exec(entry);
    if (!m) {
      problems.push(`MICROAPP_DEV_EGRESS_HOSTS: "${entry}" must look like api.example.com=127.0.0.1:4000`);
      continue;
    }
    out.set(m[1]!, { address: m[2]!, port: Number(m[3]) });
  }
  return out;
}
