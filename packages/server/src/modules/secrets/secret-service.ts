import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden, notFound } from '../../errors.ts';
import { nowIso } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { type Kek, rewrap, seal, unseal } from './envelope.ts';

export const maxSecretBytes = 64 * 1024;

/**
 * App secrets: set by the app's owner or an admin, encrypted at rest, never returned by the API.
 * Only the runtime reads values (`valuesFor`), at instance start.
 */
export function createSecretService(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  current: Kek;
  previous: Kek[];
}) {
  const { db, audit } = deps;
  const keks = [deps.current, ...deps.previous];
  const aad = (appId: string, name: string) => `${appId}/${name}`;

  async function editable(principal: Principal, app: string, name: string) {
    const view = await deps.catalog.get(principal, app);
    if (view.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden(`only the owner of ${app} or an admin can change its secrets`);
    if (!(view.manifest.secrets ?? []).includes(name))
      throw new AppError(
        'validation_failed',
        `${app} does not declare the secret ${name}; add it under secrets in microapp.yaml and register again`,
      );
    return view;
  }

  async function set(principal: Principal, app: string, name: string, value: string, ctx: AuditContext) {
    const view = await editable(principal, app, name);
    if (value.length === 0) throw new AppError('validation_failed', 'the secret value is empty');
    if (Buffer.byteLength(value) > maxSecretBytes)
      throw new AppError('payload_too_large', `a secret value is at most ${maxSecretBytes} bytes`);
    const sealed = seal(deps.current, value, aad(view.id, name));
    return db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('app_secrets')
        .select('version')
        .where('app_id', '=', view.id)
        .where('name', '=', name)
        .executeTakeFirst();
      const version = existing ? Number(existing.version) + 1 : 1;
      const row = {
        version,
        kek_id: sealed.kekId,
        wrapped_key: sealed.wrappedKey,
        ciphertext: sealed.ciphertext,
        updated_by: principal.email,
        updated_at: nowIso(),
      };
      if (existing)
        await trx
          .updateTable('app_secrets')
          .set(row)
          .where('app_id', '=', view.id)
          .where('name', '=', name)
          .execute();
      else
        await trx
          .insertInto('app_secrets')
          .values({ app_id: view.id, name, ...row })
          .execute();
      // The audit entry names the secret and its version; the value never appears.
      await audit.record(trx, ctx, {
        action: 'secret.set',
        targetType: 'app',
        target: app,
        summary: { name, version },
      });
      return { app, name, version, updatedAt: row.updated_at };
    });
  }

  async function list(principal: Principal, app: string) {
    const view = await deps.catalog.get(principal, app);
    const rows = await db
      .selectFrom('app_secrets')
      .select(['name', 'version', 'updated_by', 'updated_at'])
      .where('app_id', '=', view.id)
      .execute();
    return (view.manifest.secrets ?? []).map((name) => {
      const r = rows.find((x) => x.name === name);
      return {
        name,
        set: Boolean(r),
        version: r ? Number(r.version) : null,
        updatedBy: r?.updated_by ?? null,
        updatedAt: r?.updated_at ?? null,
      };
    });
  }

  async function remove(principal: Principal, app: string, name: string, ctx: AuditContext) {
    const view = await editable(principal, app, name);
    await db.transaction().execute(async (trx) => {
      const r = await trx
        .deleteFrom('app_secrets')
        .where('app_id', '=', view.id)
        .where('name', '=', name)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw notFound(`secret ${name} of ${app}`);
      await audit.record(trx, ctx, {
        action: 'secret.deleted',
        targetType: 'app',
        target: app,
        summary: { name },
      });
    });
  }

  /** For the runtime only: the decrypted values of an app's secrets. Never exposed through HTTP. */
  async function valuesFor(appId: string): Promise<Record<string, string>> {
    const rows = await db.selectFrom('app_secrets').selectAll().where('app_id', '=', appId).execute();
    return Object.fromEntries(
      rows.map((r) => [
        r.name,
        unseal(
          keks,
          { kekId: r.kek_id, wrappedKey: r.wrapped_key, ciphertext: r.ciphertext },
          aad(r.app_id, r.name),
        ),
      ]),
    );
  }

  /** After a KEK rotation: re-wraps every data key under the current KEK (values are not decrypted). */
  async function rewrapAll(principal: Principal, ctx: AuditContext) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins can re-wrap secrets');
    return db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('app_secrets')
        .select(['app_id', 'name', 'kek_id', 'wrapped_key'])
        .where('kek_id', '!=', deps.current.id)
        .execute();
      for (const r of rows) {
        const wrapped = rewrap(
          keks,
          deps.current,
          { kekId: r.kek_id, wrappedKey: r.wrapped_key },
          aad(r.app_id, r.name),
        );
        await trx
          .updateTable('app_secrets')
          .set({ kek_id: deps.current.id, wrapped_key: wrapped })
          .where('app_id', '=', r.app_id)
          .where('name', '=', r.name)
          .execute();
      }
      // Connector credentials are sealed the same way (bound to `connector:ID`).
      const connectors = await trx
        .selectFrom('connectors')
        .select(['id', 'kek_id', 'wrapped_key'])
        .where('kek_id', 'is not', null)
        .where('kek_id', '!=', deps.current.id)
        .execute();
      for (const c of connectors) {
        const wrapped = rewrap(
          keks,
          deps.current,
          { kekId: c.kek_id!, wrappedKey: c.wrapped_key! },
          `connector:${c.id}`,
        );
        await trx
          .updateTable('connectors')
          .set({ kek_id: deps.current.id, wrapped_key: wrapped })
          .where('id', '=', c.id)
          .execute();
      }
      await audit.record(trx, ctx, {
        action: 'secrets.rewrapped',
        targetType: 'kek',
        target: deps.current.id,
        summary: { count: rows.length, connectors: connectors.length },
      });
      return { rewrapped: rows.length + connectors.length, kek: deps.current.id };
    });
  }

  /**
   * Decommission: deletes every secret of an app inside the caller's transaction (which records the
   * audit event) and returns their names, so the owner knows what to set again after a restore.
   */
  async function purgeFor(trx: Transaction<Database>, appId: string): Promise<string[]> {
    const rows = await trx.selectFrom('app_secrets').select('name').where('app_id', '=', appId).execute();
    await trx.deleteFrom('app_secrets').where('app_id', '=', appId).execute();
    return rows.map((r) => r.name).sort();
  }

  return { set, list, remove, valuesFor, rewrapAll, purgeFor };
}

export type SecretService = ReturnType<typeof createSecretService>;
