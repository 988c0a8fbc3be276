import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { AppLifecycleTable, Database } from '../../db/schema.ts';
import { newId } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { BlobStore } from '../blobs/blob-store.ts';
import { emailsWithRole } from '../identity/users.ts';
import type { NewNotification, NotificationService } from '../notifications/notification-service.ts';
import { removeAppData, sealAppData } from '../runtime/data-volume.ts';
import type { DeploymentService } from '../runtime/deployment-service.ts';
import type { Kek } from '../secrets/envelope.ts';
import type { SecretService } from '../secrets/secret-service.ts';
import type { LifecycleSettings, Stage, Step } from './lifecycle-rules.ts';

/** The app fields the lifecycle acts on. */
export type LifecycleApp = { id: string; name: string; owner: string };

const day = (iso: string) => iso.slice(0, 10);

/** An archive kept in the blob store is recorded by its digest; one an earlier release wrote, by its file. */
const isBlob = (path: string) => path.startsWith('sha256:');

/**
 * The lifecycle's state changes. Each one is a compare-and-set on the app's lifecycle row, its audit
 * event and its notifications in one transaction: run twice (a retried job, two replicas), it
 * happens once. Side effects outside the database (stopping an instance, writing an archive) are
 * idempotent and ordered so that a crash between two of them is repaired by running the step again.
 */
export function createLifecycleSteps(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  notifications: Pick<NotificationService, 'notify'>;
  deployments: Pick<DeploymentService, 'halt' | 'stopInstance'>;
  secrets: Pick<SecretService, 'purgeFor'>;
  kek: Kek;
  runtimeDir: string;
  archiveDir: string;
  /** Where sealed archives are kept (the data folder, or the registry replicas share). */
  blobs: Pick<BlobStore, 'put' | 'get' | 'remove'>;
  settings: LifecycleSettings;
}) {
  const { db, clock, audit } = deps;
  const dataDirOf = (name: string) => join(deps.runtimeDir, 'data', name);

  /** Updates the row only if it is still as `expected` says; false when someone else got there first. */
  async function compareAndSet(
    trx: Transaction<Database>,
    row: Pick<AppLifecycleTable, 'app_id' | 'stage' | 'stage_at'>,
    set: Partial<AppLifecycleTable>,
  ): Promise<boolean> {
    const r = await trx
      .updateTable('app_lifecycle')
      .set(set)
      .where('app_id', '=', row.app_id)
      .where('stage', '=', row.stage)
      .where('stage_at', '=', row.stage_at)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Who hears about an app its owner has not answered for: the owner's manager, or the platform admins. */
  async function escalationContacts(
    trx: Transaction<Database>,
    owner: string,
  ): Promise<{ to: string[]; manager: string | null }> {
    const user = await trx
      .selectFrom('users')
      .select('manager')
      .where('email', '=', owner)
      .executeTakeFirst();
    if (user?.manager) return { to: [user.manager], manager: user.manager };
    return { to: await emailsWithRole(trx, 'admin'), manager: null };
  }

  async function notifyAll(trx: Transaction<Database>, list: NewNotification[]) {
    for (const n of list) await deps.notifications.notify(trx, n);
  }

  /** Applies one step the rules chose; returns whether it changed anything. */
  async function apply(
    app: LifecycleApp,
    row: AppLifecycleTable,
    step: Step,
    ctx: AuditContext,
  ): Promise<boolean> {
    const now = clock.nowIso();
    const base = { targetType: 'app' as const, target: app.name };
    const key = `${app.id}:${row.stage_at}`;
    switch (step.kind) {
      case 'none':
        return false;
      case 'resume':
        return db.transaction().execute(async (trx) => {
          if (
            !(await compareAndSet(trx, row, {
              stage: 'active',
              reason: null,
              stage_at: now,
              next_step_at: null,
            }))
          )
            return false;
          await audit.record(trx, ctx, {
            ...base,
            action: 'lifecycle.resumed',
            reason: 'the app was used again after the warning',
          });
          return true;
        });
      case 'expiry_notice':
        return db.transaction().execute(async (trx) => {
          const sent = [
            ...new Set([...row.expiry_notices.split(',').filter(Boolean).map(Number), ...step.covers]),
          ];
          const r = await trx
            .updateTable('app_lifecycle')
            .set({ expiry_notices: sent.sort((a, b) => b - a).join(',') })
            .where('app_id', '=', row.app_id)
            .where('expiry_notices', '=', row.expiry_notices)
            .executeTakeFirst();
          if (Number(r.numUpdatedRows) !== 1) return false;
          const expiresAt = step.expiresAt;
          await audit.record(trx, ctx, {
            ...base,
            action: 'lifecycle.expiry_notice',
            summary: { daysLeft: step.days },
          });
          await notifyAll(trx, [
            {
              recipient: app.owner,
              app: app.name,
              kind: 'expiry_notice',
              subject: `${app.name} expires in ${step.days} day${step.days === 1 ? '' : 's'}`,
              body: `${app.name} reaches the end of its approved lifetime on ${day(expiresAt)}. If it is still needed, renew it; otherwise it will be stopped then, and retired later.`,
              action: `/apps/${app.name}#renew`,
              dedupeKey: `expiry:${app.id}:${row.renewed_at ?? 'first'}:${step.days}`,
            },
          ]);
          return true;
        });
      case 'warn':
        return db.transaction().execute(async (trx) => {
          if (
            !(await compareAndSet(trx, row, {
              stage: 'warned',
              reason: 'inactive',
              stage_at: now,
              next_step_at: step.stopAt,
            }))
          )
            return false;
          await audit.record(trx, ctx, {
            ...base,
            action: 'lifecycle.warned',
            reason: `not used for ${step.idleDays} days`,
            summary: { idleDays: step.idleDays, stopAt: step.stopAt },
          });
          await notifyAll(trx, [
            {
              recipient: app.owner,
              app: app.name,
              kind: 'inactivity_warning',
              subject: `${app.name} has not been used for ${step.idleDays} days`,
              body: `Nobody has used ${app.name} for ${step.idleDays} days. It will be stopped on ${day(step.stopAt)} unless someone uses it or you renew it. If it is no longer needed, you need do nothing: it will be retired and its data archived.`,
              action: `/apps/${app.name}#renew`,
              dedupeKey: `warn:${key}`,
            },
          ]);
          return true;
        });
      case 'stop':
      case 'expire': {
        const expired = step.kind === 'expire';
        const changed = await db
          .transaction()
          .execute(async (trx) => {
            const resume = await deps.deployments.halt(trx, app.id, 'idle');
            if (
              !(await compareAndSet(trx, row, {
                stage: 'stopped',
                reason: expired ? 'expired' : 'inactive',
                stage_at: now,
                next_step_at: step.escalateAt,
                resume_deployment: resume ?? row.resume_deployment,
              }))
            ) {
              // Undo the halt by rolling back: someone else moved the app on.
              throw new Lost();
            }
            await audit.record(trx, ctx, {
              ...base,
              action: 'lifecycle.stopped',
              reason: expired ? 'its approved lifetime ended' : 'not used, and no answer to the warning',
              summary: { escalateAt: step.escalateAt, resumeDeployment: resume },
            });
            await notifyAll(trx, [
              {
                recipient: app.owner,
                app: app.name,
                kind: 'stopped',
                subject: `${app.name} was stopped`,
                body: expired
                  ? `${app.name} reached the end of its approved lifetime and was stopped. Renew it to bring it back; otherwise it will be retired after ${deps.settings.graceDays + deps.settings.escalateAfterDays - deps.settings.stopAfterDays} days.`
                  : `${app.name} was stopped because nobody used it and there was no answer to the warning. Renew it to bring it back; your manager will be told on ${day(step.escalateAt)}.`,
                action: `/apps/${app.name}#renew`,
                dedupeKey: `stop:${key}`,
              },
            ]);
            return true;
          })
          .catch(lostIsFalse);
        if (changed) await deps.deployments.stopInstance(app.name, 'the app was stopped by the lifecycle');
        return changed;
      }
      case 'escalate':
        return db.transaction().execute(async (trx) => {
          if (
            !(await compareAndSet(trx, row, {
              stage: 'escalated',
              stage_at: now,
              next_step_at: step.decommissionAt,
            }))
          )
            return false;
          const contacts = await escalationContacts(trx, app.owner);
          await audit.record(trx, ctx, {
            ...base,
            action: 'lifecycle.escalated',
            reason: contacts.manager
              ? "told the owner's manager"
              : 'the owner has no manager on record: told the platform admins',
            summary: { to: contacts.to, decommissionAt: step.decommissionAt },
          });
          const body = `${app.name}, owned by ${app.owner}, was stopped on ${day(row.stage_at)} (${row.reason === 'expired' ? 'its lifetime ended' : 'nobody used it'}) and nobody has answered. It will be decommissioned on ${day(step.decommissionAt)}: its data archived, its secrets deleted. If it is still needed, its owner renews it.`;
          await notifyAll(trx, [
            ...contacts.to.map((to) => ({
              recipient: to,
              app: app.name,
              kind: 'escalation',
              subject: `${app.name} will be decommissioned on ${day(step.decommissionAt)}`,
              body,
              action: `/apps/${app.name}#renew`,
              dedupeKey: `escalate:${key}:${to}`,
            })),
            {
              recipient: app.owner,
              app: app.name,
              kind: 'escalation',
              subject: `${app.name} will be decommissioned on ${day(step.decommissionAt)}`,
              body,
              action: `/apps/${app.name}#renew`,
              dedupeKey: `escalate:${key}:owner`,
            },
          ]);
          return true;
        });
      case 'decommission':
        return decommission(app, row, step.purgeAt, ctx, null);
      case 'purge': {
        const archive = row.archive_id
          ? await db
              .selectFrom('app_archives')
              .selectAll()
              .where('id', '=', row.archive_id)
              .executeTakeFirst()
          : undefined;
        if (archive)
          if (isBlob(archive.path)) await deps.blobs.remove('archive', archive.digest);
          else rmSync(archive.path, { force: true });
        return db.transaction().execute(async (trx) => {
          if (!(await compareAndSet(trx, row, { stage_at: now, next_step_at: null }))) return false;
          if (archive)
            await trx
              .updateTable('app_archives')
              .set({ purged_at: now })
              .where('id', '=', archive.id)
              .execute();
          await audit.record(trx, ctx, {
            ...base,
            action: 'lifecycle.archive_purged',
            reason: `retention of ${deps.settings.archiveRetentionDays} days ended`,
            summary: { archive: row.archive_id },
          });
          return true;
        });
      }
      default:
        return step satisfies never;
    }
  }

  /**
   * Retires an app: stop it, archive its data encrypted, delete its secrets, end its app sessions,
   * take it off the gateway; the catalog record and the audit trail stay. Reversible with a restore
   * until the archive's retention ends.
   */
  async function decommission(
    app: LifecycleApp,
    row: AppLifecycleTable,
    purgeAt: string,
    ctx: AuditContext,
    why: string | null,
  ): Promise<boolean> {
    await deps.deployments.stopInstance(app.name, 'the app was decommissioned');
    // The file name is fixed by the step, so a retry after a crash overwrites rather than adds.
    const path = join(
      deps.archiveDir,
      app.id,
      `${row.stage}-${row.stage_at.replace(/[^0-9]/g, '')}.tar.gz.enc`,
    );
    const staged = await sealAppData(deps.kek, dataDirOf(app.name), path, app.id);
    // The sealed bytes go to the blob store, so any replica can restore them; the row names them by digest.
    await deps.blobs.put('archive', readFileSync(staged.path));
    rmSync(staged.path, { force: true });
    const sealed = { ...staged, path: staged.digest };
    const now = clock.nowIso();
    const changed = await db
      .transaction()
      .execute(async (trx) => {
        const archiveId = newId('archive');
        const resume = await deps.deployments.halt(trx, app.id, 'stopped');
        if (
          !(await compareAndSet(trx, row, {
            stage: 'decommissioned',
            reason: row.reason ?? 'requested',
            stage_at: now,
            next_step_at: purgeAt,
            archive_id: archiveId,
            resume_deployment: resume ?? row.resume_deployment,
            renewal_requested: null,
          }))
        )
          throw new Lost();
        const secretNames = await deps.secrets.purgeFor(trx, app.id);
        // App-only browser sessions end with the app; platform sessions and API tokens belong to people.
        await trx
          .updateTable('sessions')
          .set({ revoked_at: now })
          .where('app', '=', app.name)
          .where('revoked_at', 'is', null)
          .execute();
        await trx
          .insertInto('app_archives')
          .values({
            id: archiveId,
            app_id: app.id,
            path: sealed.path,
            digest: sealed.digest,
            bytes: sealed.bytes,
            kek_id: sealed.kekId,
            wrapped_key: sealed.wrappedKey,
            secret_names: JSON.stringify(secretNames),
            created_at: now,
            expires_at: purgeAt,
            restored_at: null,
            purged_at: null,
          })
          .execute();
        await audit.record(trx, ctx, {
          action: 'lifecycle.decommissioned',
          targetType: 'app',
          target: app.name,
          reason:
            why ??
            (row.reason === 'expired' ? 'expired, and nobody renewed it' : 'not used, and nobody answered'),
          summary: {
            archive: archiveId,
            archiveDigest: sealed.digest,
            archiveUntil: purgeAt,
            secretsDeleted: secretNames,
            previousStage: row.stage,
          },
        });
        await deps.notifications.notify(trx, {
          recipient: app.owner,
          app: app.name,
          kind: 'decommissioned',
          subject: `${app.name} was decommissioned`,
          body: `${app.name} was decommissioned: it no longer runs, its secrets were deleted, and its data is archived (encrypted) until ${day(purgeAt)}. Until then it can be restored with its data.`,
          action: `/apps/${app.name}#restore`,
          dedupeKey: `decommission:${key(app, row)}`,
        });
        return true;
      })
      .catch(lostIsFalse);
    if (changed) removeAppData(dataDirOf(app.name));
    return changed;
  }

  /** A sealed archive's bytes: from the blob store, or the file an earlier release wrote. */
  const archiveBody = (archive: { path: string; digest: string }) =>
    isBlob(archive.path)
      ? deps.blobs.get('archive', archive.digest)
      : Promise.resolve(readFileSync(archive.path));

  return { apply, decommission, compareAndSet, dataDirOf, archiveBody };
}

const key = (app: LifecycleApp, row: AppLifecycleTable) => `${app.id}:${row.stage_at}`;

/** Thrown inside a transaction to roll it back when the compare-and-set lost; not an error. */
class Lost extends Error {}
function lostIsFalse(error: unknown): false {
  if (error instanceof Lost) return false;
  throw error;
}

export type LifecycleSteps = ReturnType<typeof createLifecycleSteps>;
export type { Stage };
