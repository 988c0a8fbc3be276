import type { Kysely, Selectable } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database, ScanExceptionsTable } from '../../db/schema.ts';
import { AppError, forbidden, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { OsvRecord } from './osv-match.ts';

/** An exception as people see it. */
export type ExceptionView = {
  id: string;
  app: string;
  advisory: string;
  package: string;
  reason: string;
  expiresAt: string;
  approvedBy: string;
  createdAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
  state: 'live' | 'expired' | 'revoked';
};

/** The longest an exception may last. */
export const maxExceptionDays = 180;

/**
 * An advisory id as OSV writes it: GHSA ids are `GHSA-` and lower-case groups, CVE ids upper-case, others
 * (PYSEC, OSV, RUSTSEC…) upper-case prefixes; surrounding spaces dropped.
 */
export function normaliseAdvisoryId(id: string): string {
  const t = id.trim();
  const ghsa = /^ghsa-(.+)$/i.exec(t);
  if (ghsa) return `GHSA-${ghsa[1]!.toLowerCase()}`;
  return t.toUpperCase();
}

const isSecurityReviewer = (p: Principal) => hasRole(p, 'reviewer') && p.specialties.includes('security');

/**
 * Scan exceptions: a security reviewer accepts findings of one app (one or several advisories, for one
 * package or `*` for all of them) until a date, with a reason. Each advisory must be in the current data
 * and affect the package; expiry follows the platform clock; an exception can be listed and revoked, and
 * every grant and revocation is in the audit trail.
 */
export function createScanExceptions(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  clock: Clock;
  /** The snapshot scans use now, or null before any import. */
  currentSnapshot: () => Promise<{ id: string } | null>;
}) {
  const { db, audit } = deps;

  const view = (row: Selectable<ScanExceptionsTable>): ExceptionView => {
    const now = deps.clock.now().toISOString();
    return {
      id: row.id,
      app: row.app_name,
      advisory: row.advisory,
      package: row.package,
      reason: row.reason,
      expiresAt: row.expires_at,
      approvedBy: row.approved_by,
      createdAt: row.created_at,
      revokedAt: row.revoked_at,
      revokedBy: row.revoked_by,
      state: row.revoked_at ? 'revoked' : row.expires_at > now ? 'live' : 'expired',
    };
  };

  /** Whether the advisory (by id, or as an alias of a record's id) is in the data and affects the package. */
  async function known(advisory: string, pkg: string): Promise<boolean> {
    const snapshot = await deps.currentSnapshot();
    if (!snapshot) return false;
    // By id first: the (snapshot, id) index answers it at once.
    const byId = db
      .selectFrom('advisories')
      .select('osv_id')
      .where('snapshot_id', '=', snapshot.id)
      .where('osv_id', '=', advisory);
    if (await (pkg === '*' ? byId : byId.where('package', '=', pkg)).limit(1).executeTakeFirst()) return true;
    // Else as an alias, among the package's records (every record for `*`).
    const q = db.selectFrom('advisories').select('record').where('snapshot_id', '=', snapshot.id);
    const rows = await (pkg === '*' ? q : q.where('package', '=', pkg)).limit(50_000).execute();
    return rows.some((r) =>
      ((JSON.parse(r.record) as OsvRecord).aliases ?? []).some((a) => normaliseAdvisoryId(a) === advisory),
    );
  }

  async function grant(
    principal: Principal,
    appName: string,
    input: { advisories: string[]; package: string; reason: string; expires: string },
    ctx: AuditContext,
  ): Promise<ExceptionView[]> {
    if (!isSecurityReviewer(principal))
      throw forbidden('only security reviewers can grant vulnerability exceptions');
    const app = await deps.catalog.get(principal, appName);
    if (app.owner === principal.email) throw forbidden('you cannot grant an exception for an app you own');
    const now = deps.clock.now();
    const expiresAt = new Date(`${input.expires}T00:00:00Z`);
    if (Number.isNaN(expiresAt.getTime()) || expiresAt.getTime() <= now.getTime())
      throw new AppError('validation_failed', 'expires must be a future date (YYYY-MM-DD)');
    if (expiresAt.getTime() > now.getTime() + maxExceptionDays * 86_400_000)
      throw new AppError('validation_failed', `an exception lasts at most ${maxExceptionDays} days`);
    const ids = [...new Set(input.advisories.map(normaliseAdvisoryId))];
    const unknown: string[] = [];
    for (const id of ids) if (!(await known(id, input.package))) unknown.push(id);
    if (unknown.length)
      throw new AppError(
        'validation_failed',
        `${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not in the advisory data for ${input.package === '*' ? 'any package' : input.package} (ids and aliases are matched): copy the id from the scan's findings`,
        unknown.map((id) => ({ path: '/advisories', message: `${id} is unknown` })),
      );
    const rows = ids.map((advisory) => ({
      id: newId('exception'),
      app_name: app.name,
      advisory,
      package: input.package,
      reason: input.reason,
      expires_at: expiresAt.toISOString(),
      approved_by: principal.email,
      created_at: now.toISOString(),
      revoked_at: null,
      revoked_by: null,
    }));
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('scan_exceptions').values(rows).execute();
      for (const row of rows)
        await audit.record(trx, ctx, {
          action: 'scan.exception_granted',
          targetType: 'app',
          target: app.name,
          reason: input.reason,
          summary: {
            exceptionId: row.id,
            advisory: row.advisory,
            package: row.package,
            expiresAt: row.expires_at,
          },
        });
    });
    return rows.map(view);
  }

  /** An app's exceptions, newest first: live, expired and revoked. Whoever can see the app can see them. */
  async function list(principal: Principal, appName: string): Promise<ExceptionView[]> {
    const app = await deps.catalog.get(principal, appName);
    const rows = await db
      .selectFrom('scan_exceptions')
      .selectAll()
      .where('app_name', '=', app.name)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(500)
      .execute();
    return rows.map(view);
  }

  /** Ends an exception now (security reviewers and admins); the finding blocks again at the next scan. */
  async function revoke(principal: Principal, appName: string, id: string, ctx: AuditContext) {
    if (!isSecurityReviewer(principal) && !hasRole(principal, 'admin'))
      throw forbidden('only security reviewers and admins can revoke vulnerability exceptions');
    const app = await deps.catalog.get(principal, appName);
    const row = await db
      .selectFrom('scan_exceptions')
      .selectAll()
      .where('id', '=', id)
      .where('app_name', '=', app.name)
      .executeTakeFirst();
    if (!row) throw notFound(`${app.name} has no exception ${id}`);
    if (row.revoked_at) throw new AppError('conflict', `${id} was already revoked by ${row.revoked_by}`);
    const at = deps.clock.now().toISOString();
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('scan_exceptions')
        .set({ revoked_at: at, revoked_by: principal.email })
        .where('id', '=', id)
        .execute();
      await audit.record(trx, ctx, {
        action: 'scan.exception_revoked',
        targetType: 'app',
        target: app.name,
        summary: { exceptionId: id, advisory: row.advisory, package: row.package },
      });
    });
    return view({ ...row, revoked_at: at, revoked_by: principal.email });
  }

  /** The exceptions that apply to an app's scans now (not expired by the platform clock, not revoked). */
  async function liveFor(appName: string) {
    return db
      .selectFrom('scan_exceptions')
      .selectAll()
      .where('app_name', '=', appName)
      .where('expires_at', '>', deps.clock.now().toISOString())
      .where('revoked_at', 'is', null)
      .execute();
  }

  return { grant, list, revoke, liveFor };
}

export type ScanExceptions = ReturnType<typeof createScanExceptions>;
