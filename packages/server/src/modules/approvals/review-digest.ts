import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { principalFor, toUser } from '../identity/users.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { ApprovalService } from './approval-service.ts';

/** Once a day, each reviewer hears which apps wait for them (only when some do). */
export function createReviewDigest(deps: {
  db: Kysely<Database>;
  clock: Clock;
  approvals: Pick<ApprovalService, 'pending'>;
  notifications: Pick<NotificationService, 'notify' | 'wantsDigest'>;
}) {
  async function run() {
    const today = deps.clock.nowIso().slice(0, 10);
    const users = (await deps.db.selectFrom('users').selectAll().execute()).map(toUser);
    let sent = 0;
    for (const user of users.filter((u) => u.roles.includes('reviewer') && !u.disabled)) {
      if (!(await deps.notifications.wantsDigest(user.email))) continue;
      const waiting = await deps.approvals.pending(
        principalFor(user, [], { kind: 'token', tokenId: 'digest' }),
        true,
      );
      if (!waiting.length) continue;
      const lines = waiting.map(
        (a) =>
          `- ${a.name} (${a.tier} tier, owner ${a.owner}), waiting since ${a.updatedAt.slice(0, 10)}: ${a.assessment.factors
            .slice(0, 2)
            .map((f) => f.explanation)
            .join('; ')}`,
      );
      const created = await deps.notifications.notify(deps.db, {
        recipient: user.email,
        app: null,
        kind: 'review_digest',
        subject: `${waiting.length} app${waiting.length === 1 ? '' : 's'} waiting for your review`,
        body: `These apps wait for a ${user.specialties.join(' or ') || 'reviewer'} decision:\n${lines.join('\n')}`,
        action: '/reviews',
        dedupeKey: `digest:${user.email}:${today}`,
      });
      if (created) sent++;
    }
    return { digests: sent };
  }
  return { run };
}
