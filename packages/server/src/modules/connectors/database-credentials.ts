import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import pg from 'pg';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { BrokeredApp, EgressBroker } from '../egress/egress-broker.ts';
import type { VaultClient } from '../secrets/vault.ts';
import type { ConnectorService, DatabaseGrants, ResolvedConnector } from './connector-service.ts';

const ident = (name: string) => pg.escapeIdentifier(name);
const literal = (value: string) => pg.escapeLiteral(value);
const qualified = (table: string) => {
  const [schema, name] = table.includes('.') ? table.split('.') : ['public', table];
  return `${ident(schema!)}.${ident(name!)}`;
};

/** `mapp_<app>_<random>`: names the app in `pg_stat_activity` and the database's own logs; at most 63 bytes. */
const roleFor = (app: string) =>
  `mapp_${app.replace(/-/g, '_').slice(0, 40)}_${randomBytes(6).toString('hex')}`;

/**
 * Ephemeral database credentials. For each PostgreSQL connector an app is approved for, every instance
 * gets a role of its own: created at start with `VALID UNTIL` the connector's lease and exactly the
 * connector's grants, renewed while the instance runs, dropped (its sessions ended first) when the
 * instance stops or the lease runs out. The app receives a connection URL in `/run/secrets/connector.ID`
 * whose host is a unix socket the broker tunnels to the database and nowhere else; it never sees the
 * connector's own credential. Every issue, renewal and revocation is audited.
 *
 * A connector that names a Vault role (`grants.vault`) gets its roles from Vault's database secrets engine
 * instead: Vault creates each one, the platform checks that it holds no more than the connector declares
 * (refusing and revoking it otherwise), and renews and revokes it through its lease.
 */
export function createDatabaseCredentials(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  connectors: Pick<ConnectorService, 'resolve'>;
  egress: Pick<EgressBroker, 'tunnel'>;
  vault?: VaultClient | null;
  /** Wall-clock milliseconds: PostgreSQL enforces VALID UNTIL on its own clock, not the platform's. */
  now?: () => number;
  onError?: (message: string, error: unknown) => void;
}) {
  const { db, audit } = deps;
  const now = deps.now ?? Date.now;
  const pools = new Map<string, { key: string; pool: pg.Pool }>();
  const renewals = new Map<string, { timer: NodeJS.Timeout; every: number }>();
  const system = { actor: 'system:credentials' };

  /** A small pool per connector, as the connector's own user; replaced when the URL or password changes. */
  function poolFor(c: ResolvedConnector): pg.Pool {
    const key = `${c.baseUrl}\n${c.credential ?? ''}`;
    const existing = pools.get(c.id);
    if (existing?.key === key) return existing.pool;
    void existing?.pool.end().catch(() => {});
    const url = new URL(c.baseUrl);
    const pool = new pg.Pool({
      host: url.hostname,
      port: url.port ? Number(url.port) : 5432,
      user: decodeURIComponent(url.username),
      database: decodeURIComponent(url.pathname.slice(1)),
      ...(c.credential ? { password: c.credential } : {}),
      max: 2,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
    });
    pool.on('error', () => {});
    pools.set(c.id, { key, pool });
    return pool;
  }

  async function asConnector<T>(c: ResolvedConnector, work: (client: pg.PoolClient) => Promise<T>) {
    const client = await poolFor(c).connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  function vaultFor(connector: string): VaultClient {
    if (!deps.vault)
      throw new AppError(
        'unavailable',
        `the connector ${connector} gets its database roles from Vault, and this platform has no Vault configured (MICROAPP_VAULT_ADDR)`,
      );
    return deps.vault;
  }

  /** Creates a role the platform's way: `CREATE ROLE` with exactly the grants, as the connector's user. */
  async function createRole(c: ResolvedConnector, grants: DatabaseGrants, database: string, app: string) {
    const role = roleFor(app);
    const password = randomBytes(24).toString('base64url');
    const expiresAt = new Date(now() + grants.leaseMinutes * 60_000).toISOString();
    await asConnector(c, async (client) => {
      await client.query(
        `CREATE ROLE ${ident(role)} LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD ${literal(password)} VALID UNTIL ${literal(expiresAt)}`,
      );
      await client.query(`GRANT CONNECT ON DATABASE ${ident(database)} TO ${ident(role)}`);
      const schemas = [...new Set(grants.tables.map((t) => (t.includes('.') ? t.split('.')[0]! : 'public')))];
      for (const schema of schemas)
        await client.query(`GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(role)}`);
      await client.query(
        `GRANT ${grants.privileges.join(', ')} ON TABLE ${grants.tables.map(qualified).join(', ')} TO ${ident(role)}`,
      );
    });
    return { role, password, expiresAt, leaseId: null };
  }

  /**
   * Asks Vault for a role, then signs in as it and reads what it may do: table privileges beyond the
   * connector's, membership of other roles or any elevated attribute revoke it at once and refuse the start.
   */
  async function vaultRole(c: ResolvedConnector, grants: DatabaseGrants, database: string) {
    const v = vaultFor(c.id);
    const { mount, role: vaultRoleName } = grants.vault!;
    const creds = await v.databaseCredentials(mount, vaultRoleName);
    const url = new URL(c.baseUrl);
    const client = new pg.Client({
      host: url.hostname,
      port: url.port ? Number(url.port) : 5432,
      user: creds.username,
      password: creds.password,
      database,
      connectionTimeoutMillis: 10_000,
    });
    let excess: string[] = [];
    try {
      await client.connect();
      const tables = await client.query<{ t: string; p: string }>(
        `SELECT table_schema || '.' || table_name AS t, privilege_type AS p
           FROM information_schema.table_privileges WHERE grantee = current_user`,
      );
      const declared = new Set(
        grants.tables.flatMap((t) =>
          grants.privileges.map((p) => `${t.includes('.') ? t : `public.${t}`} ${p}`),
        ),
      );
      excess = tables.rows
        .map((r) => `${r.p} on ${r.t}`)
        .filter((x) => {
          const [p, , t] = x.split(' ');
          return !declared.has(`${t} ${p}`);
        });
      const attributes = await client.query<Record<string, boolean>>(
        `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication
           FROM pg_roles WHERE rolname = current_user`,
      );
      for (const [k, v] of Object.entries(attributes.rows[0] ?? {}))
        if (v) excess.push(k.replace(/^rol/, ''));
      const memberOf = await client.query<{ r: string }>(
        `SELECT g.rolname AS r FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
           JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = current_user`,
      );
      for (const r of memberOf.rows) excess.push(`member of ${r.r}`);
    } catch (e) {
      await v.revoke(creds.leaseId).catch(() => {});
      throw new AppError(
        'unavailable',
        `Vault issued a role for the connector ${c.id} that could not sign in to check it (${(e as Error).message}); it was revoked`,
      );
    } finally {
      await client.end().catch(() => {});
    }
    if (excess.length) {
      await v.revoke(creds.leaseId).catch(() => {});
      throw new AppError(
        'forbidden',
        `Vault's role ${mount}/${vaultRoleName} grants more than the connector ${c.id} declares (${excess.sort().join(', ')}); the credentials were revoked: make the role's creation statements grant exactly ${grants.privileges.join(', ')} on ${grants.tables.join(', ')}`,
      );
    }
    return {
      role: creds.username,
      password: creds.password,
      expiresAt: new Date(now() + creds.leaseSeconds * 1000).toISOString(),
      leaseId: creds.leaseId,
    };
  }

  /**
   * Creates the instance's roles and tunnels; returns the files for /run/secrets (name → connection URL:
   * `postgresql://ROLE:PASSWORD@localhost/DB?host=/run/egress/pg-N`, where the `host` parameter, which
   * libpq and node-postgres both honour over the URL's host, is the tunnel's socket folder).
   * On any failure, what was created is dropped again and the start is refused with the reason.
   */
  async function issue(deploymentId: string, app: BrokeredApp): Promise<Record<string, string>> {
    const files: Record<string, string> = {};
    let n = 0;
    try {
      for (const id of app.manifest.integrations?.connectors ?? []) {
        const c = await deps.connectors.resolve(id);
        if (c?.kind !== 'postgres' || !c.grants) continue;
        const { grants } = c;
        const url = new URL(c.baseUrl);
        const database = decodeURIComponent(url.pathname.slice(1));
        let issuedRole: { role: string; password: string; expiresAt: string; leaseId: string | null };
        try {
          issuedRole = grants.vault
            ? await vaultRole(c, grants, database)
            : await createRole(c, grants, database, app.name);
        } catch (e) {
          if (e instanceof AppError) throw e;
          throw new AppError(
            'unavailable',
            `could not create a database role for ${app.name} through the connector ${id}: ${(e as Error).message}`,
          );
        }
        const { role, password, expiresAt, leaseId } = issuedRole;
        await db.transaction().execute(async (trx) => {
          await trx
            .insertInto('database_credentials')
            .values({
              id: newId('databaseCredential'),
              app_id: app.appId,
              deployment_id: deploymentId,
              connector_id: id,
              role,
              state: 'issued',
              issued_at: new Date(now()).toISOString(),
              expires_at: expiresAt,
              revoked_at: null,
              vault_lease_id: leaseId,
            })
            .execute();
          await audit.record(trx, system, {
            action: 'database_credential.issued',
            targetType: 'app',
            target: app.name,
            summary: {
              connector: id,
              role,
              deploymentId,
              version: app.version,
              privileges: grants.privileges,
              tables: grants.tables,
              expiresAt,
              ...(leaseId
                ? { issuedBy: `vault:${grants.vault!.mount}/${grants.vault!.role}`, lease: leaseId }
                : {}),
            },
          });
        });
        const socket = `pg-${n++}`;
        await deps.egress.tunnel(deploymentId, app, `${socket}/.s.PGSQL.5432`, {
          label: `connector.${id}`,
          host: url.hostname,
          port: url.port ? Number(url.port) : 5432,
        });
        files[`connector.${id}`] =
          `postgresql://${role}:${password}@localhost/${encodeURIComponent(database)}?host=/run/egress/${socket}`;
        // Vault may lease for less than the connector's minutes (its role's ttl): renew on the shorter.
        schedule(
          deploymentId,
          app.name,
          Math.min(grants.leaseMinutes, (Date.parse(expiresAt) - now()) / 60_000),
        );
      }
    } catch (e) {
      await revoke(deploymentId, 'the instance did not start');
      throw e;
    }
    return files;
  }

  /** Renews the instance's roles a third of the way into each lease, while it runs. */
  function schedule(deploymentId: string, app: string, leaseMinutes: number) {
    const every = (leaseMinutes * 60_000) / 3;
    const current = renewals.get(deploymentId);
    if (current && current.every <= every) return;
    clearInterval(current?.timer);
    const timer = setInterval(() => {
      renew(deploymentId).catch((e) => deps.onError?.(`renewing ${app}'s database roles failed`, e));
    }, every);
    timer.unref();
    renewals.set(deploymentId, { timer, every });
  }

  /** Moves VALID UNTIL of each live role of the instance one lease ahead. */
  async function renew(deploymentId: string) {
    const rows = await db
      .selectFrom('database_credentials')
      .innerJoin('apps', 'apps.id', 'database_credentials.app_id')
      .select(['database_credentials.id', 'role', 'connector_id', 'vault_lease_id', 'apps.name'])
      .where('deployment_id', '=', deploymentId)
      .where('database_credentials.state', '=', 'issued')
      .execute();
    for (const row of rows) {
      const c = await deps.connectors.resolve(row.connector_id);
      if (!c?.grants) continue;
      let expiresAt = new Date(now() + c.grants.leaseMinutes * 60_000).toISOString();
      if (row.vault_lease_id) {
        // Vault may grant less than asked (the role's max_ttl): the lease ends when Vault says.
        const lease = await vaultFor(c.id).renew(row.vault_lease_id, c.grants.leaseMinutes * 60);
        expiresAt = new Date(now() + lease.leaseSeconds * 1000).toISOString();
      } else
        await asConnector(c, (client) =>
          client.query(`ALTER ROLE ${ident(row.role)} VALID UNTIL ${literal(expiresAt)}`),
        );
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('database_credentials')
          .set({ expires_at: expiresAt })
          .where('id', '=', row.id)
          .execute();
        await audit.record(trx, system, {
          action: 'database_credential.renewed',
          targetType: 'app',
          target: row.name,
          summary: { connector: row.connector_id, role: row.role, deploymentId, expiresAt },
        });
      });
    }
    return rows.length;
  }

  /** Drops one role: no new logins, its sessions ended, its privileges revoked, then the role itself. */
  async function drop(c: ResolvedConnector, role: string) {
    await asConnector(c, async (client) => {
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (!exists.rowCount) return;
      await client.query(`ALTER ROLE ${ident(role)} NOLOGIN`);
      await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
      await client.query(`DROP OWNED BY ${ident(role)}`);
      await client.query(`DROP ROLE ${ident(role)}`);
    });
  }

  async function revokeRows(
    rows: {
      id: string;
      role: string;
      connector_id: string;
      deployment_id: string;
      vault_lease_id: string | null;
      name: string;
    }[],
    reason: string,
  ) {
    let revoked = 0;
    for (const row of rows) {
      const c = await deps.connectors.resolve(row.connector_id);
      try {
        if (row.vault_lease_id) await vaultFor(row.connector_id).revoke(row.vault_lease_id);
        else if (c?.kind === 'postgres') await drop(c, row.role);
      } catch (e) {
        // Left `issued`: the expiry sweep tries again, and PostgreSQL refuses the password after VALID UNTIL.
        deps.onError?.(`dropping the database role ${row.role} failed`, e);
        continue;
      }
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('database_credentials')
          .set({ state: 'revoked', revoked_at: new Date(now()).toISOString() })
          .where('id', '=', row.id)
          .execute();
        await audit.record(trx, system, {
          action: 'database_credential.revoked',
          targetType: 'app',
          target: row.name,
          reason,
          summary: {
            connector: row.connector_id,
            role: row.role,
            deploymentId: row.deployment_id,
            ...(row.vault_lease_id ? { lease: row.vault_lease_id } : {}),
            ...(c || row.vault_lease_id
              ? {}
              : { warning: 'the connector was removed: drop the role by hand' }),
          },
        });
      });
      revoked++;
    }
    return revoked;
  }

  function issued() {
    return db
      .selectFrom('database_credentials')
      .innerJoin('apps', 'apps.id', 'database_credentials.app_id')
      .select([
        'database_credentials.id',
        'role',
        'connector_id',
        'deployment_id',
        'vault_lease_id',
        'apps.name',
      ])
      .where('database_credentials.state', '=', 'issued');
  }

  /** When an instance stops (or never started): its roles are dropped at once. */
  async function revoke(deploymentId: string, reason: string) {
    clearInterval(renewals.get(deploymentId)?.timer);
    renewals.delete(deploymentId);
    return revokeRows(await issued().where('deployment_id', '=', deploymentId).execute(), reason);
  }

  /** The sweep (a durable job): drops every role whose lease ran out unrenewed. */
  async function revokeExpired(at = now()) {
    const rows = await issued().where('expires_at', '<', new Date(at).toISOString()).execute();
    for (const r of rows) {
      clearInterval(renewals.get(r.deployment_id)?.timer);
      renewals.delete(r.deployment_id);
    }
    return revokeRows(rows, 'its lease expired without renewal');
  }

  /**
   * At server start: the local driver's instances die with the server, so every role still issued
   * belongs to an instance that no longer runs.
   */
  async function revokeOrphans() {
    return revokeRows(await issued().execute(), 'the server restarted and its instances stopped');
  }

  async function close() {
    for (const r of renewals.values()) clearInterval(r.timer);
    renewals.clear();
    await Promise.all([...pools.values()].map((p) => p.pool.end().catch(() => {})));
    pools.clear();
  }

  return { issue, renew, revoke, revokeExpired, revokeOrphans, close };
}

export type DatabaseCredentials = ReturnType<typeof createDatabaseCredentials>;
