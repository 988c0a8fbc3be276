import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { AppsTable, Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { Principal } from '../identity/principal.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { CatalogRepository } from './catalog-repository.ts';

/** How many requests for access one person may send in a day, whatever they name. */
export const accessRequestsPerDay = 20;

/**
 * A person outside an app's audience asks its owner to let them in. The answer is the same whether the app
 * exists or not, and whether they could already use it, so nobody learns of another department's apps by
 * asking; only the owner of an app that exists hears of it, once a day per person, with the reason. Every
 * request is audited (a run of requests for names that do not exist is visible to auditors) and counted
 * against a daily limit per person.
 */
export function createAccessRequests(deps: {
  db: Kysely<Database>;
  clock: Clock;
  repo: Pick<CatalogRepository, 'findApp'>;
  audit: Pick<AuditService, 'record'>;
  notifications: Pick<NotificationService, 'notify'>;
  /** May this person use the app now (the access policy)? */
  mayUse: (principal: Principal, app: AppsTable) => Promise<boolean>;
  /** The console's address, for the link the owner follows. */
  publicUrl: () => string;
}) {
  const { db, clock } = deps;

  async function request(principal: Principal, name: string, reason: string, ctx: AuditContext) {
    const since = new Date(Date.parse(clock.nowIso()) - 86_400_000).toISOString();
    const sent = await db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('action', '=', 'access.requested')
      .where('actor', '=', principal.email)
      .where('occurred_at', '>', since)
      .executeTakeFirstOrThrow();
    if (Number(sent.n) >= accessRequestsPerDay)
      throw new AppError(
        'rate_limited',
        `you sent ${accessRequestsPerDay} requests for access in the last 24 hours; wait until tomorrow, or ask a platform admin`,
      );
    const app = await deps.repo.findApp(db, name);
    const owner =
      app && app.owner !== principal.email && !(await deps.mayUse(principal, app)) ? app.owner : null;
    await db.transaction().execute(async (trx) => {
      // The same entry whatever happens next, so the trail does not tell the requester more than the answer.
      await deps.audit.record(trx, ctx, {
        action: 'access.requested',
        targetType: 'app',
        target: name,
        reason,
        summary: { department: principal.department },
      });
      if (!owner) return;
      const who = `${principal.email}${principal.department ? ` (${principal.department})` : ''}`;
      await deps.notifications.notify(trx, {
        recipient: owner,
        app: name,
        kind: 'access_requested',
        subject: `${principal.email} asks to use ${name}`,
        body: `${who} asks to use ${name}: "${reason}". To let them in, add their e-mail under "People from elsewhere" when you change the app's answers; like any change to who uses the app, it is reviewed. If not, there is nothing to do.`,
        action: `${deps.publicUrl()}/new?edit=${name}`,
        dedupeKey: `access:${name}:${principal.email}:${clock.nowIso().slice(0, 10)}`,
      });
    });
    return {
      sent: true as const,
      message: `If ${name} exists and you may not use it yet, its owner has been asked, with your reason; they let you in by adding you to the people who may use it. Nothing else is needed from you.`,
    };
  }

  return { request };
}

export type AccessRequests = ReturnType<typeof createAccessRequests>;
