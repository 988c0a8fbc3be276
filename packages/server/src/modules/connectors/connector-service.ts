import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { ConnectorsTable, Database } from '../../db/schema.ts';
import { AppError, forbidden, notFound } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { type Kek, seal, unseal } from '../secrets/envelope.ts';

/** A connector as the API shows it: everything but the credential, which is write-only. */
export type ConnectorView = {
  id: string;
  baseUrl: string;
  authHeader: string;
  methods: string[];
  paths: string[];
  dataClasses: string[];
  hasCredential: boolean;
  updatedBy: string;
  updatedAt: string;
};

export type ConnectorInput = {
  baseUrl: string;
  /** The header the credential goes in; `authorization` sends `Bearer <credential>`. */
  authHeader?: string;
  credential?: string;
  methods: string[];
  paths: string[];
  dataClasses: string[];
};

/** What the broker needs to forward one call: the connector and, only here, its credential. */
export type ResolvedConnector = ConnectorView & { credential: string | null };

const aad = (id: string) => `connector:${id}`;

function view(row: ConnectorsTable): ConnectorView {
  return {
    id: row.id,
    baseUrl: row.base_url,
    authHeader: row.auth_header,
    methods: JSON.parse(row.methods) as string[],
    paths: JSON.parse(row.paths) as string[],
    dataClasses: JSON.parse(row.data_classes) as string[],
    hasCredential: row.ciphertext !== null,
    updatedBy: row.updated_by,
    updatedAt: row.updated_at,
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
}) {
  const { db, audit } = deps;
  const keks = [deps.current, ...(deps.previous ?? [])];

  async function put(principal: Principal, id: string, input: ConnectorInput, ctx: AuditContext) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins define connectors');
    const url = new URL(input.baseUrl);
    if (url.username || url.password)
      throw new AppError('validation_failed', 'put the credential in `credential`, not in the URL');
    if (url.search || url.hash)
      throw new AppError('validation_failed', 'the base URL takes no query or fragment');
    const now = deps.clock.nowIso();
    return db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
      const sealed = input.credential !== undefined ? seal(deps.current, input.credential, aad(id)) : null;
      const row: ConnectorsTable = {
        id,
        base_url: url.href.replace(/\/$/, ''),
        auth_header: (input.authHeader ?? 'authorization').toLowerCase(),
        methods: JSON.stringify([...new Set(input.methods.map((m) => m.toUpperCase()))].sort()),
        paths: JSON.stringify([...new Set(input.paths)].sort()),
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
          baseUrl: row.base_url,
          methods: JSON.parse(row.methods),
          paths: JSON.parse(row.paths),
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
