import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { ConnectorsTable, Database } from '../../db/schema.ts';
import { AppError, forbidden, notFound } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { type Kek, seal, unseal } from '../secrets/envelope.ts';

/** What a database connector lets an app's per-instance role do, and how long each role lives unrenewed. */
export type DatabaseGrants = {
  privileges: DatabasePrivilege[];
  /** `schema.table`, or `table` in `public`. */
  tables: string[];
  leaseMinutes: number;
  /** When Vault's database secrets engine issues the roles: its mount and role (which must grant no more). */
  vault?: { mount: string; role: string };
};
export const databasePrivileges = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;
export type DatabasePrivilege = (typeof databasePrivileges)[number];

/** A connector as the API shows it: everything but the credential, which is write-only. */
export type ConnectorView = {
  id: string;
  /** `http` (the broker adds the credential to each call) or `postgres` (each instance gets its own role). */
  kind: 'http' | 'postgres';
  baseUrl: string;
  authHeader: string;
  methods: string[];
  paths: string[];
  dataClasses: string[];
  /** A database connector's grants; null for HTTP. */
  grants: DatabaseGrants | null;
  /**
   * An HTTP connector to a model API speaking OpenAI's or Anthropic's wire format: the broker refuses a call
   * naming a model the organization did not approve for the app's data, or carrying one of the app's
   * secrets, and counts the tokens each answer used. Null for other connectors.
   */
  modelApi: ModelApi | null;
  hasCredential: boolean;
  updatedBy: string;
  updatedAt: string;
};

export const modelApis = ['openai', 'anthropic'] as const;
export type ModelApi = (typeof modelApis)[number];

export type ConnectorInput = {
  /** HTTP only: the connector is a model API of this wire format. */
  modelApi?: ModelApi;
  /** `https://…` for a service; `postgres://USER@HOST:PORT/DATABASE` for a database (USER creates the roles). */
  baseUrl: string;
  /** The header the credential goes in; `authorization` sends `Bearer <credential>`. */
  authHeader?: string;
  /** The service's token, or the database user's password. */
  credential?: string;
  /** HTTP only. */
  methods?: string[];
  paths?: string[];
  /** PostgreSQL only. */
  privileges?: string[];
  tables?: string[];
  leaseMinutes?: number;
  /** PostgreSQL with Vault: the database secrets engine's role that issues each instance's credentials. */
  vaultRole?: string;
  /** Its mount; `database` unless said. */
  vaultMount?: string;
  dataClasses: string[];
};

/** A table name as `schema.table`: plain lower-case identifiers only, so a grant can never carry more SQL. */
const tableName = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;
export const defaultLeaseMinutes = 15;

/** What the broker needs to forward one call: the connector and, only here, its credential. */
export type ResolvedConnector = ConnectorView & { credential: string | null };

const aad = (id: string) => `connector:${id}`;

function view(row: ConnectorsTable): ConnectorView {
  return {
    id: row.id,
    kind: row.kind === 'postgres' ? 'postgres' : 'http',
    baseUrl: row.base_url,
    authHeader: row.auth_header,
    methods: JSON.parse(row.methods) as string[],
    paths: JSON.parse(row.paths) as string[],
    dataClasses: JSON.parse(row.data_classes) as string[],
    grants: row.grants ? (JSON.parse(row.grants) as DatabaseGrants) : null,
    modelApi: (modelApis as readonly string[]).includes(row.model_api ?? '')
      ? (row.model_api as ModelApi)
      : null,
    hasCredential: row.ciphertext !== null,
    updatedBy: row.updated_by,
    updatedAt: row.updated_at,
  };
}

/** An HTTP connector's methods and path prefixes, required. */
function httpRules(input: ConnectorInput) {
  if (!input.methods?.length || !input.paths?.length)
    throw new AppError(
      'validation_failed',
      'an HTTP connector needs `methods` and `paths`: what apps may call, e.g. ["GET"] on ["/entries"]',
    );
  if (input.privileges || input.tables || input.leaseMinutes !== undefined)
    throw new AppError(
      'validation_failed',
      '`privileges`, `tables` and `leaseMinutes` are for database connectors (a postgres:// base URL)',
    );
  return {
    methods: [...new Set(input.methods.map((m) => m.toUpperCase()))].sort(),
    paths: [...new Set(input.paths)].sort(),
    grants: null,
  };
}

/** A database connector's grants, required: which privileges on which tables each instance's role gets. */
function databaseRules(url: URL, input: ConnectorInput, vaultConfigured: boolean) {
  if (input.methods || input.paths || input.authHeader || input.modelApi)
    throw new AppError(
      'validation_failed',
      '`methods`, `paths`, `authHeader` and `modelApi` are for HTTP connectors; a database connector takes `privileges` and `tables`',
    );
  const vaultPath = /^[A-Za-z0-9_.-]{1,128}$/;
  if (input.vaultRole !== undefined || input.vaultMount !== undefined) {
    if (!vaultConfigured)
      throw new AppError(
        'validation_failed',
        '`vaultRole` needs a Vault: this platform has none configured (MICROAPP_VAULT_ADDR)',
      );
    if (
      !input.vaultRole ||
      !vaultPath.test(input.vaultRole) ||
      !vaultPath.test(input.vaultMount ?? 'database')
    )
      throw new AppError(
        'validation_failed',
        '`vaultRole` (and `vaultMount`, default database) name a role of Vault’s database secrets engine: letters, digits, dot, dash, underscore',
      );
    if (url.username || input.credential !== undefined)
      throw new AppError(
        'validation_failed',
        'with `vaultRole`, Vault creates the roles: the URL is postgres://HOST:PORT/DATABASE, with no user and no `credential`',
      );
  } else if (!url.username || !url.hostname || url.pathname.length < 2)
    throw new AppError(
      'validation_failed',
      'a database connector’s URL is postgres://USER@HOST:PORT/DATABASE, where USER may create roles (or name a Vault role with `vaultRole`)',
    );
  if (!url.hostname || url.pathname.length < 2)
    throw new AppError('validation_failed', 'a database connector’s URL is postgres://HOST:PORT/DATABASE');
  const privileges = [...new Set((input.privileges ?? []).map((p) => p.toUpperCase()))].sort();
  const bad = privileges.filter((p) => !(databasePrivileges as readonly string[]).includes(p));
  if (!privileges.length || bad.length)
    throw new AppError(
      'validation_failed',
      `\`privileges\` is one or more of ${databasePrivileges.join(', ')}${bad.length ? `, not ${bad.join(', ')}` : ''}`,
    );
  const tables = [...new Set(input.tables ?? [])].sort();
  const badTables = tables.filter((t) => !tableName.test(t));
  if (!tables.length || badTables.length)
    throw new AppError(
      'validation_failed',
      `\`tables\` lists the tables apps may use, as schema.table in lower case${badTables.length ? `, not ${badTables.join(', ')}` : ''}`,
    );
  const leaseMinutes = input.leaseMinutes ?? defaultLeaseMinutes;
  if (!Number.isInteger(leaseMinutes) || leaseMinutes < 2 || leaseMinutes > 24 * 60)
    throw new AppError('validation_failed', '`leaseMinutes` is a whole number from 2 to 1440');
  return {
    methods: [],
    paths: [],
    grants: {
      privileges: privileges as DatabasePrivilege[],
      tables,
      leaseMinutes,
      ...(input.vaultRole ? { vault: { mount: input.vaultMount ?? 'database', role: input.vaultRole } } : {}),
    },
  };
}

/**
 * Connectors: company systems an app reaches as `http://connector.{id}/…` through the egress broker, which
 * adds the credential. Admins define them (base URL, credential, allowed methods and path prefixes, the data
 * classes the system may receive); the credential is sealed under the KEK and never returned by any API.
 */
export function createConnectorService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  current: Kek;
  previous?: Kek[];
  /** Whether a Vault is configured (database connectors may then name a Vault role). */
  vault?: boolean;
}) {
  const { db, audit } = deps;
  const keks = [deps.current, ...(deps.previous ?? [])];

  async function put(principal: Principal, id: string, input: ConnectorInput, ctx: AuditContext) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins define connectors');
    const url = new URL(input.baseUrl);
    const kind = /^postgres(ql)?:$/.test(url.protocol) ? 'postgres' : 'http';
    if (url.password || (url.username && kind === 'http'))
      throw new AppError(
        'validation_failed',
        kind === 'http'
          ? 'put the credential in `credential`, not in the URL'
          : 'put the password in `credential`, not in the URL; the URL names the user',
      );
    if (url.search || url.hash)
      throw new AppError('validation_failed', 'the base URL takes no query or fragment');
    const { methods, paths, grants } =
      kind === 'http' ? httpRules(input) : databaseRules(url, input, deps.vault ?? false);
    const now = deps.clock.nowIso();
    return db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
      const sealed = input.credential !== undefined ? seal(deps.current, input.credential, aad(id)) : null;
      const row: ConnectorsTable = {
        id,
        kind,
        base_url: url.href.replace(/\/$/, ''),
        auth_header: (input.authHeader ?? 'authorization').toLowerCase(),
        methods: JSON.stringify(methods),
        paths: JSON.stringify(paths),
        grants: grants ? JSON.stringify(grants) : null,
        model_api: kind === 'http' ? (input.modelApi ?? null) : null,
        data_classes: JSON.stringify([...new Set(input.dataClasses)].sort()),
        kek_id: sealed?.kekId ?? existing?.kek_id ?? null,
        wrapped_key: sealed?.wrappedKey ?? existing?.wrapped_key ?? null,
        ciphertext: sealed?.ciphertext ?? existing?.ciphertext ?? null,
        created_at: existing?.created_at ?? now,
        updated_by: principal.email,
        updated_at: now,
      };
      if (existing) await trx.updateTable('connectors').set(row).where('id', '=', id).execute();
      else await trx.insertInto('connectors').values(row).execute();
      await audit.record(trx, ctx, {
        action: existing ? 'connector.updated' : 'connector.defined',
        targetType: 'connector',
        target: id,
        summary: {
          kind,
          baseUrl: row.base_url,
          ...(grants ? { grants } : { methods, paths }),
          ...(input.modelApi ? { modelApi: input.modelApi } : {}),
          dataClasses: JSON.parse(row.data_classes),
          credentialChanged: sealed !== null,
        },
      });
      return view(row);
    });
  }

  async function list(): Promise<ConnectorView[]> {
    return (await db.selectFrom('connectors').selectAll().orderBy('id').execute()).map(view);
  }

  async function remove(principal: Principal, id: string, ctx: AuditContext) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins remove connectors');
    await db.transaction().execute(async (trx) => {
      const gone = await trx.deleteFrom('connectors').where('id', '=', id).executeTakeFirst();
      if (!Number(gone.numDeletedRows)) throw notFound(`connector ${id}`);
      await audit.record(trx, ctx, { action: 'connector.removed', targetType: 'connector', target: id });
    });
  }

  /** For the broker only: the connector with its credential unsealed, or null. */
  async function resolve(id: string): Promise<ResolvedConnector | null> {
    const row = await db.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return null;
    const credential =
      row.ciphertext && row.kek_id && row.wrapped_key
        ? unseal(
            keks,
            { kekId: row.kek_id, wrappedKey: row.wrapped_key, ciphertext: row.ciphertext },
            aad(id),
          )
        : null;
    return { ...view(row), credential };
  }

  return { put, list, remove, resolve };
}

export type ConnectorService = ReturnType<typeof createConnectorService>;
