import type { Kysely } from 'kysely';
import { adjustableClock, type Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { importOsv } from './advisory-import.ts';
import type { Severity } from './cvss.ts';
import { affects, fixedVersions, type OsvRecord, severityOf } from './osv-match.ts';
import { createScanExceptions, normaliseAdvisoryId } from './scan-exceptions.ts';

export { advisoryZipLimits, unzipBounded } from './advisory-import.ts';

/** One vulnerability found in one installed package (aliases of the same advisory merged). */
export type Finding = {
  ids: string[];
  package: string;
  version: string;
  fixed: string[];
  severity: Severity;
  score: number | null;
  summary: string;
  exception: { id: string; reason: string; expiresAt: string; approvedBy: string } | null;
};

const rank: Record<Severity, number> = { unknown: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** What blocks a build, by tier: high tolerates no high or critical finding, medium no critical. */
export const scanThresholds: Record<string, Severity | null> = {
  high: 'high',
  medium: 'critical',
  low: null,
};

type Component = { name: string; version: string };

/**
 * Components of a CycloneDX SBOM as npm name and version: those that ship. A component whose scope is
 * `excluded` (a development-only package: a test runner, a linter) is not in the artifact, so its
 * advisories do not block it.
 */
export function componentsOf(sbom: unknown): Component[] {
  const list = (
    sbom as {
      components?: { name?: string; group?: string; version?: string; purl?: string; scope?: string }[];
    }
  )?.components;
  if (!Array.isArray(list))
    throw new AppError('validation_failed', 'the SBOM has no components array (CycloneDX JSON expected)');
  const out: Component[] = [];
  for (const c of list) {
    if (typeof c?.name !== 'string' || typeof c.version !== 'string') continue;
    if (c.purl && !c.purl.startsWith('pkg:npm/')) continue;
    if (c.scope === 'excluded') continue;
    out.push({ name: c.group ? `${c.group}/${c.name}` : c.name, version: c.version });
  }
  return out;
}

/** Offline vulnerability data (OSV snapshots), scanning SBOMs against it, and scan exceptions. */
export function createAdvisoryService(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  /** Called after each import commits (the alert job re-matches deployed versions). */
  afterImport?: () => void;
  /** The platform clock: exceptions expire by it. */
  clock?: Clock;
}) {
  const { db } = deps;
  const exceptionsService = createScanExceptions({
    db,
    audit: deps.audit,
    catalog: deps.catalog,
    clock: deps.clock ?? adjustableClock(),
    currentSnapshot: () => current(),
  });

  /**
   * Imports OSV records from a zip (OSV's per-ecosystem all.zip, or the CLI's zip of a folder), merged
   * into the current data by id and `modified` date, or replacing it all (`replace`): see advisory-import.ts.
   */
  async function importZip(
    principal: Principal,
    zip: Uint8Array,
    ctx: AuditContext,
    options: { replace?: boolean } = {},
  ) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins can import advisory data');
    const result = await importOsv(db, deps.audit, principal, zip, ctx, {
      replace: options.replace ?? false,
    });
    deps.afterImport?.();
    return result;
  }

  async function current() {
    const row = await db
      .selectFrom('advisory_snapshots')
      .selectAll()
      .orderBy('imported_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row
      ? {
          id: row.id,
          digest: row.digest,
          records: Number(row.records),
          importedBy: row.imported_by,
          importedAt: row.imported_at,
        }
      : null;
  }

  /** Matches components against the latest snapshot, merging aliases and applying live exceptions. */
  async function scan(components: Component[], options: { tier: string; app: string | null }) {
    const snapshot = await current();
    if (!snapshot)
      throw new AppError(
        'conflict',
        'no advisory data has been imported; an admin runs `microapp advisories import all.zip`',
      );
    const names = [...new Set(components.map((c) => c.name))];
    const records = new Map<string, OsvRecord[]>();
    for (let i = 0; i < names.length; i += 500) {
      const rows = await db
        .selectFrom('advisories')
        .select(['package', 'record'])
        .where('snapshot_id', '=', snapshot.id)
        .where('package', 'in', names.slice(i, i + 500))
        .execute();
      for (const r of rows)
        (records.get(r.package) ?? records.set(r.package, []).get(r.package)!).push(
          JSON.parse(r.record) as OsvRecord,
        );
    }
    const exceptions = options.app ? await exceptionsService.liveFor(options.app) : [];
    const findings: Finding[] = [];
    for (const c of components) {
      const hits = (records.get(c.name) ?? []).filter((r) => affects(r, c.name, c.version));
      // Records that share an id or alias describe one vulnerability: report it once.
      const groups: { ids: Set<string>; records: OsvRecord[] }[] = [];
      for (const r of hits) {
        const ids = new Set([r.id, ...(r.aliases ?? [])]);
        const group = groups.find((g) => [...ids].some((x) => g.ids.has(x)));
        if (group) {
          for (const x of ids) group.ids.add(x);
          group.records.push(r);
        } else groups.push({ ids, records: [r] });
      }
      for (const g of groups) {
        const sev = g.records.map(severityOf).sort((a, b) => rank[b.severity] - rank[a.severity])[0]!;
        const ids = [...g.ids].sort((a, b) =>
          a.startsWith('GHSA') === b.startsWith('GHSA') ? (a < b ? -1 : 1) : a.startsWith('GHSA') ? -1 : 1,
        );
        const ex = exceptions.find(
          (e) =>
            (e.package === c.name || e.package === '*') &&
            [...g.ids].some((id) => normaliseAdvisoryId(id) === e.advisory),
        );
        findings.push({
          ids,
          package: c.name,
          version: c.version,
          fixed: [...new Set(g.records.flatMap((r) => fixedVersions(r, c.name)))],
          severity: sev.severity,
          score: sev.score,
          summary: g.records.find((r) => r.summary)?.summary ?? '',
          exception: ex
            ? { id: ex.id, reason: ex.reason, expiresAt: ex.expires_at, approvedBy: ex.approved_by }
            : null,
        });
      }
    }
    const threshold = scanThresholds[options.tier] ?? null;
    const blocking = threshold
      ? findings.filter((f) => !f.exception && rank[f.severity] >= rank[threshold])
      : [];
    return {
      snapshot: { id: snapshot.id, digest: snapshot.digest },
      tier: options.tier,
      threshold,
      findings,
      blocking,
      passed: blocking.length === 0,
    };
  }

  /** Scans an SBOM for an app the caller can see, with the app's tier and exceptions. */
  async function scanForApp(
    principal: Principal,
    sbom: unknown,
    appName: string | null,
    tier: string | null,
  ) {
    const components = componentsOf(sbom);
    if (appName) {
      const app = await deps.catalog.get(principal, appName);
      return scan(components, { tier: app.tier, app: app.name });
    }
    return scan(components, { tier: tier ?? 'high', app: null });
  }

  return {
    importZip,
    current,
    scan,
    scanForApp,
    grantException: exceptionsService.grant,
    listExceptions: exceptionsService.list,
    revokeException: exceptionsService.revoke,
  };
}

export type AdvisoryService = ReturnType<typeof createAdvisoryService>;
