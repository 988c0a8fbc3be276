import { createHmac } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import type { Clock } from '../../clock.ts';
import type { Database, NotificationsTable } from '../../db/schema.ts';
import { notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { Principal } from '../identity/principal.ts';

/** Where notifications go besides the in-app inbox; each channel is optional. */
export type NotificationChannels = {
  /** SMTP URL for nodemailer, e.g. smtp://mail.internal:25 or smtps://user:pass@host:465. */
  smtpUrl?: string;
  mailFrom?: string;
  /** A Slack-compatible incoming webhook; each body is signed with HMAC-SHA256 when a secret is set. */
  webhookUrl?: string;
  webhookSecret?: string;
};

/** A notification to one person: what happens, when, and the one command or link that answers it. */
export type NewNotification = {
  recipient: string;
  app: string | null;
  kind: string;
  subject: string;
  body: string;
  action: string | null;
  /** The same key twice creates one notification, so a job run again does not repeat itself. */
  dedupeKey: string;
};

export type NotificationView = {
  id: string;
  app: string | null;
  kind: string;
  subject: string;
  body: string;
  action: string | null;
  createdAt: string;
  readAt: string | null;
};

const toView = (r: NotificationsTable): NotificationView => ({
  id: r.id,
  app: r.app,
  kind: r.kind,
  subject: r.subject,
  body: r.body,
  action: r.action,
  createdAt: r.created_at,
  readAt: r.read_at,
});

/** Retries wait 1, 2, 4 … minutes up to 6 hours; after 10 attempts a delivery is given up and logged. */
export const deliveryPolicy = { firstDelayMs: 60_000, maxDelayMs: 6 * 3_600_000, maxAttempts: 10 };

/** Signature header value for a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`. */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Notifications: written to the inbox in the caller's transaction (so they exist exactly when the change
 * they announce does), then delivered by e-mail and webhook from a durable outbox with retries.
 */
export function createNotificationService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  channels: NotificationChannels;
  platformUrl: () => string;
}) {
  const { db, clock, channels } = deps;
  const mailer = channels.smtpUrl ? nodemailer.createTransport(channels.smtpUrl) : null;
  const outbound = [...(mailer ? ['email'] : []), ...(channels.webhookUrl ? ['webhook'] : [])];

  /** Records a notification and its deliveries; returns false when its dedupe key was already used. */
  async function notify(trx: Transaction<Database> | Kysely<Database>, n: NewNotification): Promise<boolean> {
    const id = newId('notification');
    const now = clock.nowIso();
    const inserted = await trx
      .insertInto('notifications')
      .values({
        id,
        recipient: n.recipient.toLowerCase(),
        app: n.app,
        kind: n.kind,
        subject: n.subject,
        body: n.body,
        // A console page ('/apps/NAME') is kept as its whole address: e-mail and chat readers follow it too.
        action: n.action?.startsWith('/') ? `${deps.platformUrl()}${n.action}` : n.action,
        dedupe_key: n.dedupeKey,
        created_at: now,
        read_at: null,
      })
      .onConflict((oc) => oc.column('dedupe_key').doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
    const prefs = await trx
      .selectFrom('notification_preferences')
      .select('by_email')
      .where('email', '=', n.recipient.toLowerCase())
      .executeTakeFirst();
    // The webhook is the organization's channel, not the person's: preferences do not turn it off.
    for (const channel of outbound.filter((c) => c !== 'email' || Number(prefs?.by_email ?? 1) === 1))
      await trx
        .insertInto('notification_deliveries')
        .values({
          id: newId('delivery'),
          notification_id: id,
          channel,
          attempts: 0,
          next_attempt_at: now,
          delivered_at: null,
          failed_at: null,
          last_error: null,
        })
        .execute();
    return true;
  }

  function text(n: NotificationsTable): string {
    return [n.body, n.action ? `\nWhat to do: ${n.action}` : `\n${deps.platformUrl()}`].join('\n');
  }

  async function send(channel: string, n: NotificationsTable): Promise<void> {
    if (channel === 'email') {
      if (!mailer) throw new Error('no SMTP server is configured');
      await mailer.sendMail({
        from: channels.mailFrom ?? 'microapp <microapp@localhost>',
        to: n.recipient,
        subject: n.subject,
        text: text(n),
      });
      return;
    }
    if (!channels.webhookUrl) throw new Error('no webhook is configured');
    const body = JSON.stringify({
      text: `*${n.subject}* (to ${n.recipient})\n${n.body}${n.action ? `\nWhat to do: \`${n.action}\`` : ''}`,
      microapp: {
        id: n.id,
        kind: n.kind,
        app: n.app,
        recipient: n.recipient,
        action: n.action,
        at: n.created_at,
      },
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (channels.webhookSecret)
      headers['x-microapp-signature'] = webhookSignature(
        channels.webhookSecret,
        Math.floor(Date.now() / 1000),
        body,
      );
    const res = await fetch(channels.webhookUrl, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`the webhook answered ${res.status}`);
  }

  /** Sends every delivery that is due; the job runner's lease makes one server do it at a time. */
  async function deliverDue(): Promise<{ delivered: number; retried: number; failed: number }> {
    const now = clock.now();
    const due = await db
      .selectFrom('notification_deliveries')
      .innerJoin('notifications', 'notifications.id', 'notification_deliveries.notification_id')
      .selectAll('notifications')
      .select([
        'notification_deliveries.id as deliveryId',
        'notification_deliveries.channel',
        'notification_deliveries.attempts',
      ])
      .where('notification_deliveries.delivered_at', 'is', null)
      .where('notification_deliveries.failed_at', 'is', null)
      .where('notification_deliveries.next_attempt_at', '<=', now.toISOString())
      .orderBy('notification_deliveries.next_attempt_at')
      .limit(200)
      .execute();
    const out = { delivered: 0, retried: 0, failed: 0 };
    for (const d of due) {
      try {
        await send(d.channel, d);
        await db
          .updateTable('notification_deliveries')
          .set({ delivered_at: clock.nowIso(), attempts: Number(d.attempts) + 1, last_error: null })
          .where('id', '=', d.deliveryId)
          .execute();
        out.delivered++;
      } catch (error) {
        const attempts = Number(d.attempts) + 1;
        const giveUp = attempts >= deliveryPolicy.maxAttempts;
        const delay = Math.min(deliveryPolicy.maxDelayMs, deliveryPolicy.firstDelayMs * 2 ** (attempts - 1));
        await db
          .updateTable('notification_deliveries')
          .set({
            attempts,
            last_error: (error as Error).message.slice(0, 500),
            next_attempt_at: new Date(now.getTime() + delay).toISOString(),
            ...(giveUp ? { failed_at: clock.nowIso() } : {}),
          })
          .where('id', '=', d.deliveryId)
          .execute();
        deps.logger.warn(
          { delivery: d.deliveryId, channel: d.channel, attempts, err: error },
          'notification not delivered',
        );
        if (giveUp) out.failed++;
        else out.retried++;
      }
    }
    return out;
  }

  /** The caller's own inbox, newest first. */
  async function inbox(principal: Principal, options: { unread?: boolean; limit: number }) {
    const rows = await db
      .selectFrom('notifications')
      .selectAll()
      .where('recipient', '=', principal.email.toLowerCase())
      .$if(Boolean(options.unread), (q) => q.where('read_at', 'is', null))
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(options.limit)
      .execute();
    return rows.map(toView);
  }

  /** Marks one of the caller's notifications read; someone else's is reported missing. */
  async function markRead(principal: Principal, id: string) {
    const res = await db
      .updateTable('notifications')
      .set({ read_at: clock.nowIso() })
      .where('id', '=', id)
      .where('recipient', '=', principal.email.toLowerCase())
      .where('read_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      const mine = await db
        .selectFrom('notifications')
        .select('id')
        .where('id', '=', id)
        .where('recipient', '=', principal.email.toLowerCase())
        .executeTakeFirst();
      if (!mine) throw notFound(`notification ${id}`);
    }
    return { id, read: true };
  }

  /** The caller's notification preferences (defaults: e-mail on, digest on). */
  async function preferences(principal: Principal) {
    const row = await db
      .selectFrom('notification_preferences')
      .selectAll()
      .where('email', '=', principal.email.toLowerCase())
      .executeTakeFirst();
    return { email: Number(row?.by_email ?? 1) === 1, digest: Number(row?.digest ?? 1) === 1 };
  }

  async function setPreferences(principal: Principal, prefs: { email?: boolean; digest?: boolean }) {
    const current = await preferences(principal);
    const next = { ...current, ...prefs };
    const values = { by_email: next.email ? 1 : 0, digest: next.digest ? 1 : 0, updated_at: clock.nowIso() };
    await db
      .insertInto('notification_preferences')
      .values({ email: principal.email.toLowerCase(), ...values })
      .onConflict((oc) => oc.column('email').doUpdateSet(values))
      .execute();
    return next;
  }

  /** Whether someone wants the reviewers' digest (on unless they turned it off). */
  async function wantsDigest(email: string) {
    const row = await db
      .selectFrom('notification_preferences')
      .select('digest')
      .where('email', '=', email)
      .executeTakeFirst();
    return Number(row?.digest ?? 1) === 1;
  }

  return {
    notify,
    deliverDue,
    inbox,
    markRead,
    preferences,
    setPreferences,
    wantsDigest,
    close: () => mailer?.close(),
  };
}

export type NotificationService = ReturnType<typeof createNotificationService>;
