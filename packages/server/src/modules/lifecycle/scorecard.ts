import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import { dayMs } from '../../clock.ts';
import type { ReadCache } from '../../db/read-cache.ts';
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

/** What an app's scorecard is computed from, all of it in the database: kept while none of it changes. */
type Inputs = {
  /** The newest version, with the high or critical findings still open in it (its scan's and advisories'). */
  newest: { version: string; open: string[] } | null;
  owner: { lastLoginAt: string | null; lastLoginMs: number; disabledAt: string | null } | null;
  /** When the app stops being allowed to run (`expiryOf`), and as milliseconds. */
  expires: string;
  expiresMs: number;
  department: string | null;
};

/**
 * Scorecards for a page of apps: SBOM present, no open high or critical finding in the newest version's
 * platform scan, owner active (signed in within 90 days, not disabled), a version published through the
 * pipeline (which runs the app's tests), expiry more than 30 days away, and an access policy (an audience)
 * set. What they are computed from is read in four queries whatever the page size, or taken from the read
 * cache (`cache`), which forgets it when a version, an advisory alert, a user, an app or its lifecycle
 * changes; what depends on the clock (days left, the owner's last sign-in) is worked out on every call.
 */
export function createScorecards(deps: { db: Kysely<Database>; clock: Clock; settings: LifecycleSettings }) {
  const { db } = deps;

  async function inputsOf(apps: AppsTable[]): Promise<Map<string, Inputs>> {
    const ids = apps.map((a) => a.id);
    const versions = await db
      .selectFrom('app_versions')
      .select(['app_id', 'version', 'scan', 'created_at'])
      .where('app_id', 'in', ids)
      .orderBy('created_at', 'desc')
      .execute();
    const newest = new Map<string, (typeof versions)[number]>();
    for (const v of versions) if (!newest.has(v.app_id)) newest.set(v.app_id, v);
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
    const out = new Map<string, Inputs>();
    for (const app of apps) {
      const manifest = JSON.parse(app.manifest) as Manifest;
      const v = newest.get(app.id);
      const scan = v
        ? (JSON.parse(v.scan) as { findings?: { severity: string; exception: unknown; ids: string[] }[] })
        : null;
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
      out.set(app.id, {
        newest: v
          ? {
              version: v.version,
              open: [
                ...(scan?.findings ?? [])
                  .filter((f) => severe.has(f.severity) && !f.exception)
                  .map((f) => f.ids[0]!),
                ...alerts
                  .filter((a) => a.app_id === app.id && a.version === v.version)
                  .map((a) => a.advisory),
              ],
            }
          : null,
        owner: owner
          ? {
              lastLoginAt: owner.last_login_at,
              lastLoginMs: owner.last_login_at ? Date.parse(owner.last_login_at) : Number.NaN,
              disabledAt: owner.disabled_at,
            }
          : null,
        expires,
        expiresMs: Date.parse(expires),
        department: manifest.audience?.department ?? null,
      });
    }
    return out;
  }

  /** Each app's inputs as the cache keeps them; the ones not kept yet are read together. */
  function keptInputs(cache: ReadCache, apps: AppsTable[]): Promise<Inputs[]> {
    let read: Promise<Map<string, Inputs>> | null = null;
    return Promise.all(
      apps.map((app) =>
        // Keyed by the app's row as well: its manifest (expiry, audience) and owner are read from it.
        cache.memo(
          'scorecard-inputs',
          `${app.id}\u0000${app.updated_at}\u0000${app.owner}\u0000${app.tier}`,
          async () => {
            read ??= inputsOf(apps);
            return (await read).get(app.id)!;
          },
        ),
      ),
    );
  }

  function cardOf(app: AppsTable, inputs: Inputs, now: number): Scorecard {
    const v = inputs.newest;
    const owner = inputs.owner;
    const daysLeft = Math.floor((inputs.expiresMs - now) / dayMs);
    const checks: ScorecardCheck[] = [
      {
        id: 'sbom',
        ok: Boolean(v),
        detail: v ? `version ${v.version} has a CycloneDX SBOM` : 'no version published yet',
      },
      {
        id: 'no_open_high_findings',
        ok: Boolean(v) && v!.open.length === 0,
        detail: !v
          ? 'nothing scanned yet'
          : v.open.length
            ? `open high or critical finding(s): ${[...new Set(v.open)].join(', ')}`
            : `version ${v.version}: none at its scan`,
      },
      {
        id: 'owner_active',
        ok: Boolean(
          owner && !owner.disabledAt && owner.lastLoginAt && now - Date.parse(owner.lastLoginAt) < 90 * dayMs,
        ),
        detail: !owner
          ? `${app.owner} has never signed in`
          : owner.disabledAt
            ? `${app.owner}'s account is disabled`
            : `${app.owner} last signed in ${owner.lastLoginAt?.slice(0, 10) ?? 'never'}`,
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
        detail: `expires ${inputs.expires.slice(0, 10)} (${daysLeft} days)`,
      },
      {
        id: 'access_policy',
        ok: Boolean(inputs.department),
        detail: inputs.department
          ? `limited to ${inputs.department}`
          : 'no audience set: anyone who can see the app may use it',
      },
    ];
    return { passed: checks.filter((c) => c.ok).length, total: checks.length, checks };
  }

  // A card worked out from kept inputs, reused until the clock changes what it says: the day its days left
  // drop by one, or the moment its owner's last sign-in turns 90 days old.
  const worked = new WeakMap<Inputs, { card: Scorecard; from: number; until: number }>();
  function keptCardOf(app: AppsTable, inputs: Inputs, now: number): Scorecard {
    const found = worked.get(inputs);
    if (found && now >= found.from && now <= found.until) return found.card;
    const card = cardOf(app, inputs, now);
    // Days left are floor((expires - now) / day): the same until expires - daysLeft * day.
    let until = inputs.expiresMs - Math.floor((inputs.expiresMs - now) / dayMs) * dayMs;
    const owner = inputs.owner;
    if (owner && now - owner.lastLoginMs < 90 * dayMs)
      until = Math.min(until, owner.lastLoginMs + 90 * dayMs - 1);
    worked.set(inputs, { card, from: now, until });
    return card;
  }

  return async function scorecards(apps: AppsTable[], cache?: ReadCache): Promise<Map<string, Scorecard>> {
    const out = new Map<string, Scorecard>();
    if (!apps.length) return out;
    const now = deps.clock.now().getTime();
    if (cache) {
      const inputs = await keptInputs(cache, apps);
      for (const [i, app] of apps.entries()) out.set(app.id, keptCardOf(app, inputs[i]!, now));
    } else {
      const inputs = await inputsOf(apps);
      for (const app of apps) out.set(app.id, cardOf(app, inputs.get(app.id)!, now));
    }
    return out;
  };
}

export type Scorecards = ReturnType<typeof createScorecards>;
