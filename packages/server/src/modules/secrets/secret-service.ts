import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden, notFound } from '../../errors.ts';
import { nowIso } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { type Kek, rewrap, seal, unseal } from './envelope.ts';
import type { VaultClient } from './vault.ts';

export const maxSecretBytes = 64 * 1024;

/** A row whose value is in Vault's KV engine, not sealed here. */
const inVault = 'vault';

/**
 * App secrets: set by the app's owner or an admin, encrypted at rest, never returned by the API.
 * Only the runtime reads values (`valuesFor`), at instance start. With a Vault (`vault`), new values go to
 * its KV version 2 engine at `{mount}/data/{prefix}/{appId}/{name}` and the database keeps only who set
 * which version when; values sealed here before stay readable.
 */
export function createSecretService(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  current: Kek;
  previous: Kek[];
  vault?: VaultClient | null;
}) {
  const { db, audit } = deps;
  const vault = deps.vault ?? null;
  const vaultKey = (appId: string, name: string) => `${appId}/${name}`;
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
    // With Vault the value is written there first: a refusal leaves nothing changed here.
    const stored = vault
      ? {
          kekId: inVault,
          wrappedKey: '',
          ciphertext: `v${await vault.kvPut(vaultKey(view.id, name), { value })}`,
        }
      : seal(deps.current, value, aad(view.id, name));
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
        kek_id: stored.kekId,
        wrapped_key: stored.wrappedKey,
        ciphertext: stored.ciphertext,
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
        summary: { name, version, ...(vault ? { store: 'vault' } : {}) },
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
    const row = await db
      .selectFrom('app_secrets')
      .select('kek_id')
      .where('app_id', '=', view.id)
      .where('name', '=', name)
      .executeTakeFirst();
    if (row?.kek_id === inVault) await vaultFor('delete').kvDelete(vaultKey(view.id, name));
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

  function vaultFor(what: string): VaultClient {
    if (!vault)
      throw new AppError(
        'unavailable',
        `this secret is kept in Vault and the platform has no Vault configured to ${what} it (MICROAPP_VAULT_ADDR)`,
      );
    return vault;
  }

  /**
   * For the runtime only: the values of an app's secrets. Never exposed through HTTP. A value in Vault is
   * read as it is now, so one rotated in Vault reaches the next instance that starts.
   */
  async function valuesFor(appId: string): Promise<Record<string, string>> {
    const rows = await db.selectFrom('app_secrets').selectAll().where('app_id', '=', appId).execute();
    const out: Record<string, string> = {};
    for (const r of rows) {
      if (r.kek_id !== inVault) {
        out[r.name] = unseal(
          keks,
          { kekId: r.kek_id, wrappedKey: r.wrapped_key, ciphertext: r.ciphertext },
          aad(r.app_id, r.name),
        );
        continue;
      }
      const got = await vaultFor('read').kvGet(vaultKey(r.app_id, r.name));
      if (got?.data.value === undefined)
        throw new AppError(
          'unavailable',
          `the secret ${r.name} is gone from Vault (${vaultKey(r.app_id, r.name)}): set it again with microapp secrets set`,
        );
      out[r.name] = got.data.value;
    }
    return out;
  }

  /** After a KEK rotation: re-wraps every data key under the current KEK (values are not decrypted). */
  async function rewrapAll(principal: Principal, ctx: AuditContext) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins can re-wrap secrets');
    return db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('app_secrets')
        .select(['app_id', 'name', 'kek_id', 'wrapped_key'])
        .where('kek_id', '!=', deps.current.id)
        .where('kek_id', '!=', inVault)
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
    const rows = await trx
      .selectFrom('app_secrets')
      .select(['name', 'kek_id'])
      .where('app_id', '=', appId)
      .execute();
    // Vault's copies go first: if Vault refuses, the decommission stops with its reason and nothing is lost.
    for (const r of rows)
      if (r.kek_id === inVault) await vaultFor('delete').kvDelete(vaultKey(appId, r.name));
    await trx.deleteFrom('app_secrets').where('app_id', '=', appId).execute();
    return rows.map((r) => r.name).sort();
  }

  return { set, list, remove, valuesFor, rewrapAll, purgeFor };
}

export type SecretService = ReturnType<typeof createSecretService>;
