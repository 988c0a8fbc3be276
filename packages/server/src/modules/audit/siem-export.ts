import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import type { AuditService } from './audit-service.ts';

const cursorKey = 'siem_syslog_cursor';
/** facility 13 (log audit), severity 5 (notice): RFC 5424 PRI 109. */
const pri = 13 * 8 + 5;

/** One audit event as an RFC 5424 message, framed by octet counting (RFC 6587) for TCP. */
export function syslogFrame(
  event: { seq: number; hash: string; occurredAt: string; action: string },
  json: string,
  host: string,
): string {
  const sd = `[microapp@32473 seq="${event.seq}" hash="${event.hash}" action="${event.action.replace(/["\\\]]/g, '')}"]`;
  const msg = `<${pri}>1 ${event.occurredAt} ${host} microapp - audit ${sd} ${json}`;
  return `${Buffer.byteLength(msg)} ${msg}`;
}

/**
 * Streams the audit trail to a SIEM as RFC 5424 syslog over TCP, at least once: the cursor (the last
 * event's sequence number) is stored in the database and moves only after a batch was written and the
 * connection closed cleanly, so an outage of the SIEM delays events and loses none. A receiver may see
 * an event twice after a failure; `seq` and `hash` identify it.
 */
export function createSiemExport(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'list'>;
  /** tcp://host:port */
  target: string;
  batch?: number;
  /** A signed checkpoint of the chain, sent after each batch that moved it (see audit-checkpoints.ts). */
  checkpoint?: () => Promise<{ seq: number; at: string } | null>;
}) {
  const url = new URL(deps.target);
  const host = hostname();

  async function cursor(): Promise<number> {
    const row = await deps.db
      .selectFrom('platform_settings')
      .select('value')
      .where('key', '=', cursorKey)
      .executeTakeFirst();
    return Number(row?.value ?? 0);
  }

  function send(frames: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket: Socket = connect({ host: url.hostname, port: Number(url.port) });
      socket.setTimeout(10_000, () =>
        socket.destroy(new Error('the SIEM did not accept the events within 10 s')),
      );
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.end(frames.join(''), () => resolve());
      });
    });
  }

  /** Sends everything after the cursor, in batches; returns how many events were sent. */
  async function run() {
    let after = await cursor();
    let sent = 0;
    for (;;) {
      const events = await deps.audit.list({ afterSeq: after, limit: deps.batch ?? 500 });
      if (!events.length) break;
      await send(events.map((e) => syslogFrame(e, JSON.stringify(e), host)));
      after = events.at(-1)!.seq;
      const value = String(after);
      await deps.db
        .insertInto('platform_settings')
        .values({ key: cursorKey, value })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
        .execute();
      sent += events.length;
    }
    // The SIEM then holds a checkpoint the database cannot take back: a later truncation or rewrite fails it.
    if (sent > 0 && deps.checkpoint) {
      const c = await deps.checkpoint();
      if (c) {
        const json = JSON.stringify(c);
        const msg = `<${pri}>1 ${c.at} ${host} microapp - audit-checkpoint [microapp@32473 seq="${c.seq}"] ${json}`;
        await send([`${Buffer.byteLength(msg)} ${msg}`]);
      }
    }
    return { sent, cursor: after };
  }

  return { run, cursor };
}
