import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { newTimedId } from '../../ids.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { DlpFinding } from './dlp.ts';
import { type BrokeredApp, kindName } from './egress-types.ts';

/**
 * How long the same refusal of the same app is audited once. A client in a retry loop (npm behind a proxy
 * that refuses a CONNECT opens a new one at once, hundreds of times a second) would otherwise write the
 * audit trail full: the repeats are counted and the count is audited with the next refusal after the
 * window, or when the app's broker closes.
 */
export const repeatWindowMs = 60_000;

/**
 * What the broker writes down: every attempt in `app_egress` (host, method, decision, bytes), and in the
 * audit trail each refusal, failure and DLP block, mask or flag (kinds and counts, never the values); a
 * refusal repeated within a minute is audited once, with how often it came again.
 */
export function createEgressRecords(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
}) {
  const repeats = new Map<
    string,
    {
      since: number;
      again: number;
      app: BrokeredApp;
      host: string | null;
      method: string;
      decision: string;
      reason: string | null;
    }
  >();

  const actionOf = (decision: string) =>
    // A refusal (policy, approvals, addresses) is a denial; a destination that failed (no answer, a
    // certificate the broker does not trust) is a failure, not a decision anyone made.
    decision === 'blocked_dlp' ? 'egress.blocked' : decision === 'failed' ? 'egress.failed' : 'egress.denied';

  /** Audits how often each refusal of `appName` (every app without one) came again since it was last audited. */
  async function flushRepeats(appName?: string) {
    const due = [...repeats.entries()].filter(([, r]) => !appName || r.app.name === appName);
    for (const [key] of due) repeats.delete(key);
    const folded = due.filter(([, r]) => r.again > 0);
    if (!folded.length) return;
    await deps.db.transaction().execute(async (trx) => {
      for (const [, r] of folded)
        await deps.audit.record(
          trx,
          { actor: `app:${r.app.name}` },
          {
            action: actionOf(r.decision),
            targetType: 'app',
            target: r.app.name,
            reason: r.reason,
            summary: { host: r.host, method: r.method, version: r.app.version, repeated: r.again },
          },
        );
    });
  }

  async function record(
    app: BrokeredApp,
    row: {
      host: string | null;
      method: string;
      decision: string;
      status: number;
      bytesOut: number;
      bytesIn: number;
      reason?: string;
      findings?: DlpFinding[];
      /** A call to a model API: the model and the tokens its answer reported. */
      model?: { name: string | null; tokens: { input: number; output: number } | null };
    },
  ) {
    const at = deps.clock.nowIso();
    let repeated = 0;
    let audited = row.decision !== 'allowed';
    if (audited && !row.findings) {
      const key = JSON.stringify([
        app.appId,
        app.version,
        row.decision,
        row.host,
        row.method,
        row.reason ?? null,
      ]);
      const now = Date.parse(at);
      const seen = repeats.get(key);
      if (seen && now - seen.since < repeatWindowMs && now >= seen.since) {
        seen.again++;
        audited = false;
      } else {
        repeated = seen?.again ?? 0;
        repeats.set(key, {
          since: now,
          again: 0,
          app,
          host: row.host,
          method: row.method,
          decision: row.decision,
          reason: row.reason ?? null,
        });
      }
    }
    await deps.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('app_egress')
        .values({
          id: newTimedId('egress'),
          app_id: app.appId,
          host: row.host ?? '(none)',
          method: row.method,
          decision: row.decision,
          status: row.status,
          bytes_out: row.bytesOut,
          bytes_in: row.bytesIn,
          at,
          ...(row.model
            ? {
                model: row.model.name,
                tokens_in: row.model.tokens?.input ?? null,
                tokens_out: row.model.tokens?.output ?? null,
              }
            : {}),
        })
        .execute();
      if (audited)
        await deps.audit.record(
          trx,
          { actor: `app:${app.name}` },
          {
            action: actionOf(row.decision),
            targetType: 'app',
            target: app.name,
            reason: row.reason ?? null,
            summary: {
              host: row.host,
              method: row.method,
              version: app.version,
              ...(row.findings ? { found: row.findings.map((f) => `${f.kind} x${f.count}`) } : {}),
              ...(repeated ? { repeated } : {}),
            },
          },
        );
    });
  }

  /** What DLP masked or flagged on a request it let through: audited with kinds and counts, never the values. */
  async function recordDlp(
    app: BrokeredApp,
    method: string,
    host: string,
    dlp: { masked: DlpFinding[]; flagged: DlpFinding[] },
  ) {
    await deps.db.transaction().execute(async (trx) => {
      for (const [action, fs] of [
        ['egress.masked', dlp.masked],
        ['egress.flagged', dlp.flagged],
      ] as const)
        if (fs.length)
          await deps.audit.record(
            trx,
            { actor: `app:${app.name}` },
            {
              action,
              targetType: 'app',
              target: app.name,
              reason: `the organization's DLP policy ${action === 'egress.masked' ? 'masked' : 'flagged'} ${fs.map((f) => kindName(f.kind)).join(' and ')} on the way to ${host}`,
              summary: {
                host,
                method,
                version: app.version,
                found: fs.map((f) => `${f.kind} x${f.count}`),
              },
            },
          );
    });
  }

  return { record, recordDlp, flushRepeats };
}

export type EgressRecords = ReturnType<typeof createEgressRecords>;
