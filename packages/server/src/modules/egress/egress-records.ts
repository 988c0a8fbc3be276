import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { newId } from '../../ids.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { DlpFinding } from './dlp.ts';
import { type BrokeredApp, kindName } from './egress-types.ts';

/**
 * What the broker writes down: every attempt in `app_egress` (host, method, decision, bytes), and in the
 * audit trail each refusal, failure and DLP block, mask or flag (kinds and counts, never the values).
 */
export function createEgressRecords(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
}) {
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
    },
  ) {
    const at = deps.clock.nowIso();
    await deps.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('app_egress')
        .values({
          id: newId('egress'),
          app_id: app.appId,
          host: row.host ?? '(none)',
          method: row.method,
          decision: row.decision,
          status: row.status,
          bytes_out: row.bytesOut,
          bytes_in: row.bytesIn,
          at,
        })
        .execute();
      if (row.decision !== 'allowed')
        await deps.audit.record(
          trx,
          { actor: `app:${app.name}` },
          {
            // A refusal (policy, approvals, addresses) is a denial; a destination that failed (no answer, a
            // certificate the broker does not trust) is a failure, not a decision anyone made.
            action:
              row.decision === 'blocked_dlp'
                ? 'egress.blocked'
                : row.decision === 'failed'
                  ? 'egress.failed'
                  : 'egress.denied',
            targetType: 'app',
            target: app.name,
            reason: row.reason ?? null,
            summary: {
              host: row.host,
              method: row.method,
              version: app.version,
              ...(row.findings ? { found: row.findings.map((f) => `${f.kind} x${f.count}`) } : {}),
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

  return { record, recordDlp };
}

export type EgressRecords = ReturnType<typeof createEgressRecords>;
