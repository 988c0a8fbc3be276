import { AppError } from '../../errors.ts';

/** Where the platform's Vault is, and how it signs in (a token; a file is re-read on each call, for agents that rotate it). */
export type VaultSettings = {
  addr: string;
  token: () => string;
  /** Vault Enterprise namespace, sent as X-Vault-Namespace. */
  namespace: string | null;
  /** The KV version 2 mount app secrets go to, and the folder under it. */
  kvMount: string;
  kvPrefix: string;
};

/** A lease from a dynamic secrets engine. */
export type VaultLease = { leaseId: string; leaseSeconds: number; renewable: boolean };

const segment = /^[A-Za-z0-9_.-]+$/;

/**
 * A small client for the parts of HashiCorp Vault's HTTP API the platform uses: KV version 2 (write,
 * read, delete every version), the database secrets engine (credentials for a role), and leases (renew,
 * revoke). Errors name the call and Vault's own message, never a secret. Paths are built from checked
 * segments only, so nothing a user typed can walk to another mount.
 */
export function createVaultClient(settings: VaultSettings, fetchImpl: typeof fetch = fetch) {
  const base = settings.addr.replace(/\/+$/, '');

  function path(...parts: string[]) {
    for (const p of parts)
      for (const s of p.split('/'))
        if (!segment.test(s) || s === '.' || s === '..')
          throw new AppError('validation_failed', `"${p}" is not a Vault path segment this platform writes`);
    return parts.join('/');
  }

  async function call<T>(what: string, method: string, p: string, body?: unknown): Promise<T | null> {
    let res: Response;
    try {
      res = await fetchImpl(`${base}/v1/${p}`, {
        method,
        headers: {
          'x-vault-token': settings.token(),
          'x-vault-request': 'true',
          ...(settings.namespace ? { 'x-vault-namespace': settings.namespace } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (e) {
      throw new AppError('unavailable', `Vault (${base}) did not answer ${what}: ${(e as Error).message}`);
    }
    if (res.status === 204) return null;
    const text = await res.text();
    let json: { errors?: string[] } & Record<string, unknown> = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      // Vault answers JSON; a proxy in front of it may not.
    }
    if (res.status === 404 && method === 'GET') return null;
    if (!res.ok) {
      const why = (json.errors ?? []).join('; ') || `HTTP ${res.status}`;
      throw new AppError(
        res.status === 403 ? 'forbidden' : 'unavailable',
        `Vault refused ${what} (${res.status}): ${why}${res.status === 403 ? ': check the platform token’s policy' : ''}`,
      );
    }
    return json as T;
  }

  const kv = (kind: 'data' | 'metadata', key: string) => path(settings.kvMount, kind, settings.kvPrefix, key);

  return {
    /** Writes a KV v2 secret (`POST /v1/{mount}/data/{path}`); returns Vault's version of it. */
    async kvPut(key: string, data: Record<string, string>): Promise<number> {
      const r = await call<{ data: { version: number } }>('a secret write', 'POST', kv('data', key), {
        data,
      });
      return Number(r?.data.version ?? 0);
    },
    /** Reads the newest version of a KV v2 secret; null when there is none (or it was deleted). */
    async kvGet(key: string): Promise<{ data: Record<string, string>; version: number } | null> {
      const r = await call<{ data: { data: Record<string, string> | null; metadata: { version: number } } }>(
        'a secret read',
        'GET',
        kv('data', key),
      );
      if (!r?.data.data) return null;
      return { data: r.data.data, version: Number(r.data.metadata.version) };
    },
    /** Deletes a KV v2 secret with every version and its metadata (`DELETE /v1/{mount}/metadata/{path}`). */
    async kvDelete(key: string): Promise<void> {
      await call('a secret delete', 'DELETE', kv('metadata', key));
    },
    /** Credentials for a role of the database secrets engine (`GET /v1/{mount}/creds/{role}`). */
    async databaseCredentials(
      mount: string,
      role: string,
    ): Promise<{ username: string; password: string } & VaultLease> {
      const r = await call<{
        lease_id: string;
        lease_duration: number;
        renewable: boolean;
        data: { username: string; password: string };
      }>(`credentials for the database role ${role}`, 'GET', path(mount, 'creds', role));
      if (!r?.data?.username || !r.lease_id)
        throw new AppError(
          'unavailable',
          `Vault gave no credentials for the database role ${role} (${mount})`,
        );
      return {
        username: r.data.username,
        password: r.data.password,
        leaseId: r.lease_id,
        leaseSeconds: Number(r.lease_duration),
        renewable: Boolean(r.renewable),
      };
    },
    /** Renews a lease (`PUT /v1/sys/leases/renew`); returns the seconds Vault granted (it may cap them). */
    async renew(leaseId: string, incrementSeconds: number): Promise<VaultLease> {
      const r = await call<{ lease_id: string; lease_duration: number; renewable: boolean }>(
        'a lease renewal',
        'PUT',
        'sys/leases/renew',
        { lease_id: leaseId, increment: incrementSeconds },
      );
      return {
        leaseId: r?.lease_id ?? leaseId,
        leaseSeconds: Number(r?.lease_duration ?? 0),
        renewable: Boolean(r?.renewable),
      };
    },
    /** Revokes a lease now (`PUT /v1/sys/leases/revoke`): Vault drops what it created. */
    async revoke(leaseId: string): Promise<void> {
      await call('a lease revocation', 'PUT', 'sys/leases/revoke', { lease_id: leaseId });
    },
  };
}

export type VaultClient = ReturnType<typeof createVaultClient>;
