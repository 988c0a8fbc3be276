// The parts of the server's configuration that each read a few related settings, each adding what is wrong
// to `problems` (the server refuses to start with all of them listed; see loadConfig in config.ts).
import { readFileSync } from 'node:fs';
import type { GroupGrant } from './modules/identity/oidc-settings.ts';
import { roles, specialties } from './modules/identity/principal.ts';
import { defaultLifecycleSettings, type LifecycleSettings } from './modules/lifecycle/lifecycle-rules.ts';
import type { NotificationChannels } from './modules/notifications/notification-service.ts';
import { defaultBuildLimits, type ResourceLimits } from './modules/runtime/cgroups.ts';
import type { VaultSettings } from './modules/secrets/vault.ts';
import { keyFileProblem } from './private-file.ts';

export function parsePort(
  value: string | number | undefined,
  name: string,
  problems: string[],
): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    problems.push(`${name} must be a port number from 0 to 65535, got "${value}"`);
    return undefined;
  }
  return port;
}

export function positiveInt(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  problems: string[],
): number {
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
export function lifecycleFrom(env: NodeJS.ProcessEnv, problems: string[]): LifecycleSettings {
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

export function notificationsFrom(
  env: NodeJS.ProcessEnv,
  dev: boolean,
  problems: string[],
): NotificationChannels {
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

export function parseGroupRoles(raw: unknown, problems: string[]): Record<string, GroupGrant> | undefined {
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

/** MICROAPP_VAULT_*: where Vault is, its token (or a file an agent keeps fresh), and where app secrets go. */
export function vaultSettings(
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
  const open = file ? keyFileProblem('MICROAPP_VAULT_TOKEN_FILE', file) : null;
  if (open) problems.push(open);
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
export function parseDevEgressHosts(
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

/**
 * Where platform builds install packages from, what they trust and how they sign in: MICROAPP_NPM_REGISTRY,
 * MICROAPP_NPM_CA_FILE and MICROAPP_NPM_TOKEN_FILE (see docs/operations.md), and the build's resource limits.
 * Files are read at start so a wrong path stops the server, not the first build; the token is never kept here.
 */
export function buildSettingsFrom(env: NodeJS.ProcessEnv, problems: string[]) {
  const npmRegistry = env.MICROAPP_NPM_REGISTRY || null;
  if (npmRegistry && !/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?(\/[^\s]*)?$/i.test(npmRegistry))
    problems.push(
      `MICROAPP_NPM_REGISTRY must be a registry URL such as https://npm.corp.example.com/, got "${npmRegistry}"`,
    );
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      problems.push(`${variable}: ${file} cannot be read (${(error as NodeJS.ErrnoException).code})`);
      return null;
    }
  };
  // The company CA the registry's certificate chains to (a PEM bundle): builds trust it for the registry.
  const npmCaFile = env.MICROAPP_NPM_CA_FILE || null;
  if (npmCaFile) {
    const pem = read('MICROAPP_NPM_CA_FILE', npmCaFile);
    if (pem !== null && !pem.includes('-----BEGIN CERTIFICATE-----'))
      problems.push(
        `MICROAPP_NPM_CA_FILE: ${npmCaFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      );
  }
  // The registry's read token: credentials belong to one registry, so the registry must be named.
  const npmTokenFile = env.MICROAPP_NPM_TOKEN_FILE || null;
  if (npmTokenFile) {
    if (!npmRegistry)
      problems.push(
        'MICROAPP_NPM_TOKEN_FILE needs MICROAPP_NPM_REGISTRY: the token is sent to that registry and no other',
      );
    const token = read('MICROAPP_NPM_TOKEN_FILE', npmTokenFile);
    const open = keyFileProblem('MICROAPP_NPM_TOKEN_FILE', npmTokenFile);
    if (open) problems.push(open);
    if (token !== null && (!token.trim() || /\s/.test(token.trim())))
      problems.push(`MICROAPP_NPM_TOKEN_FILE: ${npmTokenFile} must hold one token on one line`);
  }
  // A bank's rule that every shipped version went through a reviewed change of its repository.
  const shipOnly = (env.MICROAPP_SHIP_ONLY_MERGED_CHANGES ?? 'off').toLowerCase();
  if (!['on', 'off'].includes(shipOnly))
    problems.push(
      `MICROAPP_SHIP_ONLY_MERGED_CHANGES must be on or off, got "${env.MICROAPP_SHIP_ONLY_MERGED_CHANGES}"`,
    );
  const limits: ResourceLimits = { ...defaultBuildLimits };
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
    else limits[key] = n;
  }
  return { npmRegistry, npmCaFile, npmTokenFile, limits, shipOnlyMergedChanges: shipOnly === 'on' };
}
