import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import { dayMs } from '../../clock.ts';
import type { AppsTable, Database } from '../../db/schema.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { Tier } from '../risk/risk-rules.ts';
import { expiryOf, type LifecycleSettings } from './lifecycle-rules.ts';

export const scorecardChecks = [
  'sbom',
  'no_open_high_findings',
  'owner_active',
  'pipeline_passed',
  'expiry_ahead',
  'access_policy',
] as const;
export type ScorecardCheck = { id: (typeof scorecardChecks)[number]; ok: boolean; detail: string };
/** An app's governance health: each check with why it passes or fails. */
export type Scorecard = { passed: number; total: number; checks: ScorecardCheck[] };

const severe = new Set(['high', 'critical']);

/**
 * Scorecards for a page of apps, in five queries whatever the page size: SBOM present, no open high or
 * critical finding in the newest version's platform scan, owner active (signed in within 90 days, not
 * disabled), a version published through the pipeline (which runs the app's tests), expiry more than 30
 * days away, and an access policy (an audience) set.
 */
export function createScorecards(deps: { db: Kysely<Database>; clock: Clock; settings: LifecycleSettings }) {
  const { db } = deps;
  return async function scorecards(apps: AppsTable[]): Promise<Map<string, Scorecard>> {
    const out = new Map<string, Scorecard>();
    if (!apps.length) return out;
    const ids = apps.map((a) => a.id);
    const versions = await db
      .selectFrom('app_versions')
      .select(['app_id', 'version', 'scan', 'created_at'])
      .where('app_id', 'in', ids)
      .orderBy('created_at', 'desc')
      .execute();
    const newest = new Map<string, (typeof versions)[number]>();
    for (const v of versions) if (!newest.has(v.app_id)) newest.set(v.app_id, v);
    // Advisories imported after a version was scanned, that the alert job found affecting it.
    const alerts = await db
      .selectFrom('advisory_alerts')
      .select(['app_id', 'version', 'advisory', 'severity'])
      .where('app_id', 'in', ids)
      .where('severity', 'in', [...severe])
      .execute();
    const owners = await db
      .selectFrom('users')
      .select(['email', 'last_login_at', 'disabled_at'])
      .where('email', 'in', [...new Set(apps.map((a) => a.owner))])
      .execute();
    const ownerOf = new Map(owners.map((o) => [o.email, o]));
    const lifecycles = await db
      .selectFrom('app_lifecycle')
      .select(['app_id', 'renewed_at', 'stage'])
      .where('app_id', 'in', ids)
      .execute();
    const lifecycleOf = new Map(lifecycles.map((l) => [l.app_id, l]));
    const now = deps.clock.now().getTime();
    for (const app of apps) {
      const manifest = JSON.parse(app.manifest) as Manifest;
      const v = newest.get(app.id);
      const scan = v
        ? (JSON.parse(v.scan) as { findings?: { severity: string; exception: unknown; ids: string[] }[] })
        : null;
      const open = [
        ...(scan?.findings ?? []).filter((f) => severe.has(f.severity) && !f.exception).map((f) => f.ids[0]!),
        ...alerts.filter((a) => a.app_id === app.id && a.version === v?.version).map((a) => a.advisory),
      ];
      const owner = ownerOf.get(app.owner);
      const expires = expiryOf(
        {
          createdAt: app.created_at,
          tier: app.tier as Tier,
          manifestExpires: manifest.lifetime?.expires ?? null,
          renewedAt: lifecycleOf.get(app.id)?.renewed_at ?? null,
        },
        deps.settings,
      );
      const daysLeft = Math.floor((Date.parse(expires) - now) / dayMs);
      const audience = manifest.audience ?? {};
      const checks: ScorecardCheck[] = [
        {
          id: 'sbom',
          ok: Boolean(v),
          detail: v ? `version ${v.version} has a CycloneDX SBOM` : 'no version published yet',
        },
        {
          id: 'no_open_high_findings',
          ok: Boolean(v) && open.length === 0,
          detail: !v
            ? 'nothing scanned yet'
            : open.length
              ? `open high or critical finding(s): ${[...new Set(open)].join(', ')}`
              : `version ${v.version}: none at its scan`,
        },
        {
          id: 'owner_active',
          ok: Boolean(
            owner &&
              !owner.disabled_at &&
              owner.last_login_at &&
              now - Date.parse(owner.last_login_at) < 90 * dayMs,
          ),
          detail: !owner
            ? `${app.owner} has never signed in`
            : owner.disabled_at
              ? `${app.owner}'s account is disabled`
              : `${app.owner} last signed in ${owner.last_login_at?.slice(0, 10) ?? 'never'}`,
        },
        {
          id: 'pipeline_passed',
          ok: Boolean(v),
          detail: v
            ? `version ${v.version} passed the pipeline (tests, scan, policy) and was signed`
            : 'no version through the pipeline yet',
        },
        {
          id: 'expiry_ahead',
          ok: daysLeft > 30,
          detail: `expires ${expires.slice(0, 10)} (${daysLeft} days)`,
        },
        {
          id: 'access_policy',
          ok: Boolean(audience.department),
          detail: audience.department
            ? `limited to ${audience.department}`
            : 'no audience set: anyone who can see the app may use it',
        },
      ];
      out.set(app.id, { passed: checks.filter((c) => c.ok).length, total: checks.length, checks });
    }
    return out;
  };
}

export type Scorecards = ReturnType<typeof createScorecards>;
