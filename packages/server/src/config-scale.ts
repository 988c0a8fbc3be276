// Settings for running more than one replica: the shared blob store and this replica's name.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { OciRegistrySettings } from './modules/blobs/oci-blob-store.ts';
import { keyFileProblem, openKeyFile } from './private-file.ts';

const loopback = (host: string) =>
  host === 'localhost' || host === '[::1]' || (isIP(host) === 4 && host.startsWith('127.'));

/**
 * The OCI registry blobs go to (MICROAPP_BLOB_REGISTRY), or null for the data folder. Plain http is taken
 * only on loopback: artifacts are signed, but archives and credentials are not for the wire in clear.
 */
export function blobRegistryFrom(env: NodeJS.ProcessEnv, problems: string[]): OciRegistrySettings | null {
  const raw = env.MICROAPP_BLOB_REGISTRY;
  if (!raw) return null;
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {}
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.search || url.hash) {
    problems.push(
      `MICROAPP_BLOB_REGISTRY must be a registry address with a repository prefix, such as https://registry.internal/microapp; got "${raw.slice(0, 80)}"`,
    );
    return null;
  }
  if (url.username || url.password) {
    problems.push(
      'MICROAPP_BLOB_REGISTRY must not hold credentials: set MICROAPP_BLOB_REGISTRY_USERNAME and MICROAPP_BLOB_REGISTRY_PASSWORD_FILE (or _PASSWORD)',
    );
    return null;
  }
  if (url.protocol === 'http:' && !loopback(url.hostname)) {
    problems.push(
      `MICROAPP_BLOB_REGISTRY must use https for a registry on another machine (${url.host}); plain http is only for one on loopback`,
    );
    return null;
  }
  const username = env.MICROAPP_BLOB_REGISTRY_USERNAME || null;
  let password = env.MICROAPP_BLOB_REGISTRY_PASSWORD || null;
  const file = env.MICROAPP_BLOB_REGISTRY_PASSWORD_FILE;
  const open = file ? keyFileProblem('MICROAPP_BLOB_REGISTRY_PASSWORD_FILE', file) : null;
  if (open) problems.push(open);
  if (file)
    try {
      password = readFileSync(file, 'utf8').trim();
    } catch (error) {
      problems.push(
        `MICROAPP_BLOB_REGISTRY_PASSWORD_FILE could not be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  if (password && !username)
    problems.push('MICROAPP_BLOB_REGISTRY_PASSWORD is set without MICROAPP_BLOB_REGISTRY_USERNAME');
  return { url: url.href.replace(/\/$/, ''), username, password };
}

/**
 * Where the platform's own repositories live (MICROAPP_GIT_STORE): `shared` (the database and the blob store)
 * by default when blobs go to a registry, which is how replicas share nothing but those two; `folder` (the
 * data folder's `repos/`) by default otherwise.
 */
export function gitStoreFrom(env: NodeJS.ProcessEnv, registry: boolean, problems: string[]) {
  const raw = env.MICROAPP_GIT_STORE;
  if (raw === undefined || raw === '') return registry ? 'shared' : 'folder';
  if (raw === 'shared' || raw === 'folder') return raw;
  problems.push(
    `MICROAPP_GIT_STORE is shared (repositories in the database and the blob store, for several replicas) or folder (the data folder alone), got "${raw.slice(0, 40)}"`,
  );
  return registry ? 'shared' : 'folder';
}

/**
 * This replica's name in the database's replica table (MICROAPP_REPLICA_ID), which owns the builds and app
 * instances it runs. By default the host name and the data folder, so a restart of the same replica is
 * itself again and picks up its own work at once, and two replicas on one host are told apart.
 */
export function replicaIdFrom(env: NodeJS.ProcessEnv, fallback: string, problems: string[]): string {
  const id = env.MICROAPP_REPLICA_ID || fallback;
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/.test(id))
    problems.push(
      `MICROAPP_REPLICA_ID is a name of letters, digits and . _ : / - (up to 200), got "${id.slice(0, 40)}"`,
    );
  return id;
}

/** How long a replica's lease lasts unrenewed (MICROAPP_REPLICA_LEASE_SECONDS): how soon a dead one's work moves. */
export function replicaLeaseSecondsFrom(env: NodeJS.ProcessEnv, problems: string[]): number {
  const raw = env.MICROAPP_REPLICA_LEASE_SECONDS;
  if (raw === undefined || raw === '') return 30;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 3600)
    problems.push(
      `MICROAPP_REPLICA_LEASE_SECONDS is whole seconds from 1 to 3600, got "${raw.slice(0, 20)}"`,
    );
  return Number.isInteger(n) && n >= 1 && n <= 3600 ? n : 30;
}

/** Where the other replicas reach this one (MICROAPP_REPLICA_URL), or null to use the listen address. */
export function replicaUrlFrom(env: NodeJS.ProcessEnv, problems: string[]): string | null {
  const raw = env.MICROAPP_REPLICA_URL;
  if (!raw) return null;
  let ok = false;
  try {
    const u = new URL(raw);
    ok =
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      !u.username &&
      !u.password &&
      u.pathname === '/' &&
      !u.search;
  } catch {}
  if (!ok)
    problems.push(
      `MICROAPP_REPLICA_URL is the address other replicas reach this one at, such as http://10.0.3.7:8080 (no path or credentials); got "${raw.slice(0, 80)}"`,
    );
  return ok ? raw.replace(/\/$/, '') : null;
}

/** The certificate and key the platform serves HTTPS with, as files (a Kubernetes Secret of type tls). */
export type TlsFiles = { certFile: string; keyFile: string };

/**
 * MICROAPP_TLS_CERT_FILE and MICROAPP_TLS_KEY_FILE: both or neither; both readable PEM, and the key for the
 * platform's user only (as the KEK). Read again when they change (tls-reload.ts), so a renewed certificate
 * needs no restart.
 */
export function tlsFrom(
  env: NodeJS.ProcessEnv,
  problems: string[],
  prefix: 'MICROAPP_TLS' | 'MICROAPP_EGRESS_TLS' = 'MICROAPP_TLS',
): TlsFiles | null {
  const certVariable = `${prefix}_CERT_FILE`;
  const keyVariable = `${prefix}_KEY_FILE`;
  const certFile = env[certVariable];
  const keyFile = env[keyVariable];
  if (!certFile && !keyFile) return null;
  if (!certFile || !keyFile) {
    problems.push(
      `${certVariable} and ${keyVariable} go together: the certificate (PEM, with its chain) and its private key`,
    );
    return null;
  }
  const before = problems.length;
  for (const [variable, file, marker] of [
    [certVariable, certFile, 'CERTIFICATE'],
    [keyVariable, keyFile, 'PRIVATE KEY'],
  ] as const) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      problems.push(
        `${variable} ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
      continue;
    }
    if (!text.includes(`-----BEGIN `) || !text.includes(marker))
      problems.push(`${variable} ${file} holds no PEM ${marker.toLowerCase()}`);
  }
  if (problems.length === before) {
    const open = openKeyFile(keyFile);
    if (open)
      problems.push(
        `${keyVariable} ${keyFile} ${open}: chmod 600 it (on Kubernetes, defaultMode: 0400 on the Secret's volume)`,
      );
  }
  return problems.length === before ? { certFile, keyFile } : null;
}

/**
 * MICROAPP_METRICS_TOKEN_FILE: a file holding the token a metrics scraper presents (Prometheus'
 * `bearer_token_file`), for `GET /metrics` only. It belongs to no person, so it outlives whoever set it up;
 * it is read at each scrape, so replacing the file rotates it. At least 32 characters, on one line, in a file
 * for the platform's user only.
 */
export function metricsTokenFileFrom(env: NodeJS.ProcessEnv, problems: string[]): string | null {
  const file = env.MICROAPP_METRICS_TOKEN_FILE || null;
  if (!file) return null;
  let token = '';
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    problems.push(
      `MICROAPP_METRICS_TOKEN_FILE ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
    return null;
  }
  if (token.length < 32 || /\s/.test(token))
    problems.push(
      `MICROAPP_METRICS_TOKEN_FILE ${file} must hold one token of at least 32 characters on one line, such as the output of \`openssl rand -hex 32\``,
    );
  const open = keyFileProblem('MICROAPP_METRICS_TOKEN_FILE', file);
  if (open) problems.push(open);
  return file;
}
