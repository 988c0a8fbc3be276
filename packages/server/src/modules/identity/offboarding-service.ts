import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.ts';
import { dayMs } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden, notFound } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { LifecycleSettings } from '../lifecycle/lifecycle-rules.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { DeploymentService } from '../runtime/deployment-service.ts';
import { hasRole, type Principal } from './principal.ts';
import { emailsWithRole, setOwner } from './users.ts';

const day = (iso: string) => iso.slice(0, 10);

/**
 * When someone leaves: an admin disables the account (sign-in refused, sessions and tokens revoked),
 * and each app they own is offered to their manager, or frozen (stopped, then escalated to the admins
 * and decommissioned on the usual schedule) when there is no manager to offer it to. Taking an app over
 * moves its ownership.
 */
export function createOffboardingService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  notifications: Pick<NotificationService, 'notify'>;
  catalog: Pick<CatalogService, 'get'>;
  deployments: Pick<DeploymentService, 'halt' | 'stopInstance'>;
  settings: LifecycleSettings;
}) {
  const { db, clock, audit } = deps;

  /** Stops an app whose owner left and nobody can be offered it; the lifecycle takes it from there. */
  async function freeze(trx: Transaction<Database>, app: { id: string; created_at: string }, now: string) {
    const existing = await trx
      .selectFrom('app_lifecycle')
      .select('stage')
      .where('app_id', '=', app.id)
      .executeTakeFirst();
    if (existing && !['active', 'warned'].includes(existing.stage)) return false;
    const resume = await deps.deployments.halt(trx, app.id, 'idle');
    const next = new Date(
      Date.parse(now) + (deps.settings.escalateAfterDays - deps.settings.stopAfterDays) * dayMs,
    ).toISOString();
    const set = {
      stage: 'stopped',
      reason: 'owner_left',
      stage_at: now,
      next_step_at: next,
      resume_deployment: resume,
    };
    if (existing) await trx.updateTable('app_lifecycle').set(set).where('app_id', '=', app.id).execute();
    else
      await trx
        .insertInto('app_lifecycle')
        .values({
          app_id: app.id,
          ...set,
          active_since: app.created_at,
          renewed_at: null,
          expiry_notices: '',
          exempt_reason: null,
          exempt_by: null,
          renewal_requested: null,
          archive_id: null,
          offered_to: null,
        })
        .execute();
    return true;
  }

  async function disable(principal: Principal, email: string, reason: string, ctx: AuditContext) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins disable accounts');
    const target = email.toLowerCase();
    if (target === principal.email) throw new AppError('conflict', 'you cannot disable your own account');
    const now = clock.nowIso();
    const result = await db.transaction().execute(async (trx) => {
      const user = await trx.selectFrom('users').selectAll().where('email', '=', target).executeTakeFirst();
      if (!user) throw notFound(`user ${target}`);
      if (user.disabled_at)
        throw new AppError('conflict', `${target} is already disabled (since ${day(user.disabled_at)})`);
      await trx.updateTable('users').set({ disabled_at: now }).where('id', '=', user.id).execute();
      await trx
        .updateTable('sessions')
        .set({ revoked_at: now })
        .where('user_id', '=', user.id)
        .where('revoked_at', 'is', null)
        .execute();
      await trx
        .updateTable('api_tokens')
        .set({ revoked_at: now })
        .where('user_id', '=', user.id)
        .where('revoked_at', 'is', null)
        .execute();
      const manager = user.manager
        ? await trx
            .selectFrom('users')
            .select(['email', 'disabled_at'])
            .where('email', '=', user.manager)
            .executeTakeFirst()
        : undefined;
      // A manager who never signed in still gets the offer (by e-mail); a disabled one does not.
      const heir = !user.manager || manager?.disabled_at ? null : user.manager;
      const apps = await trx
        .selectFrom('apps')
        .leftJoin('app_lifecycle', 'app_lifecycle.app_id', 'apps.id')
        .select(['apps.id', 'apps.name', 'apps.created_at', 'app_lifecycle.stage'])
        .where('apps.owner', '=', target)
        .execute();
      const offered: string[] = [];
      const frozen: string[] = [];
      for (const app of apps.filter((a) => a.stage !== 'decommissioned')) {
        if (heir) {
          await trx
            .insertInto('app_lifecycle')
            .values({
              app_id: app.id,
              stage: 'active',
              reason: null,
              stage_at: app.created_at,
              next_step_at: null,
              active_since: app.created_at,
              renewed_at: null,
              expiry_notices: '',
              exempt_reason: null,
              exempt_by: null,
              renewal_requested: null,
              resume_deployment: null,
              archive_id: null,
              offered_to: heir,
            })
            .onConflict((oc) => oc.column('app_id').doUpdateSet({ offered_to: heir }))
            .execute();
          await deps.notifications.notify(trx, {
            recipient: heir,
            app: app.name,
            kind: 'ownership_offered',
            subject: `${target} left: ${app.name} is offered to you`,
            body: `${target}, who owned ${app.name}, no longer has an account. As their manager you are asked to take it over. If nobody does, it is retired on the usual inactivity schedule.`,
            action: `/apps/${app.name}#owner-offer`,
            dedupeKey: `offer:${app.id}:${user.id}`,
          });
          offered.push(app.name);
        } else if (await freeze(trx, app, now)) {
          for (const admin of await emailsWithRole(trx, 'admin'))
            await deps.notifications.notify(trx, {
              recipient: admin,
              app: app.name,
              kind: 'owner_left',
              subject: `${app.name} was frozen: its owner ${target} left`,
              body: `${target} owned ${app.name} and has no manager on record, so the app was stopped. Give it a new owner, or it will be retired on the usual schedule.`,
              action: `/apps/${app.name}#owner`,
              dedupeKey: `frozen:${app.id}:${user.id}:${admin}`,
            });
          frozen.push(app.name);
        }
      }
      await audit.record(trx, ctx, {
        action: 'user.disabled',
        targetType: 'user',
        target,
        reason,
        summary: { offeredTo: heir, offered, frozen },
      });
      return { user: target, disabledAt: now, offeredTo: offered.length ? heir : null, offered, frozen };
    });
    for (const name of result.frozen)
      await deps.deployments.stopInstance(name, 'the app was frozen: its owner left');
    return result;
  }

  /** Moves an app to a new owner: an admin, or the person it was offered to taking it for themselves. */
  async function transfer(principal: Principal, name: string, to: string, ctx: AuditContext) {
    const app = await deps.catalog.get(principal, name);
    const newOwner = to.toLowerCase();
    const lifecycle = await db
      .selectFrom('app_lifecycle')
      .selectAll()
      .where('app_id', '=', app.id)
      .executeTakeFirst();
    const takingOffer = lifecycle?.offered_to === principal.email && newOwner === principal.email;
    if (!hasRole(principal, 'admin') && !takingOffer)
      throw forbidden(`only an admin, or the person ${name} was offered to, can give it a new owner`);
    if (lifecycle?.stage === 'decommissioned')
      throw new AppError(
        'conflict',
        `${name} is decommissioned; restore it first (\`microapp restore ${name}\`)`,
      );
    if (newOwner === app.owner) throw new AppError('conflict', `${newOwner} already owns ${name}`);
    const now = clock.nowIso();
    await db.transaction().execute(async (trx) => {
      await setOwner(trx, app, newOwner, now, 'they sign in once before they can own an app');
      if (lifecycle) {
        const answered = lifecycle.stage === 'stopped' && lifecycle.reason === 'owner_left';
        await trx
          .updateTable('app_lifecycle')
          .set({
            offered_to: null,
            ...(answered
              ? { stage: 'active', reason: null, stage_at: now, next_step_at: null, active_since: now }
              : {}),
          })
          .where('app_id', '=', app.id)
          .execute();
      }
      await audit.record(trx, ctx, {
        action: 'app.owner_transferred',
        targetType: 'app',
        target: name,
        summary: { from: app.owner, to: newOwner, offered: takingOffer },
      });
      await deps.notifications.notify(trx, {
        recipient: newOwner,
        app: name,
        kind: 'ownership',
        subject: `You now own ${name}`,
        body: `${principal.email} made you the owner of ${name} (previously ${app.owner}). Review its secrets and who uses it; renew or retire it as needed.`,
        action: `/apps/${name}`,
        dedupeKey: `owner:${app.id}:${newOwner}:${now}`,
      });
    });
    return deps.catalog.get(principal, name);
  }

  return { disable, transfer };
}

export type OffboardingService = ReturnType<typeof createOffboardingService>;
