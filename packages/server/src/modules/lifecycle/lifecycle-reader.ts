import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import { dayMs } from '../../clock.ts';
import type { AppLifecycleTable, Database } from '../../db/schema.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { Tier } from '../risk/risk-rules.ts';
import { expiryOf, type LifecycleSettings, type Stage } from './lifecycle-rules.ts';

/** An app's lifecycle as the API returns it. */
export type LifecycleView = {
  app: string;
  owner: string;
  stage: Stage;
  reason: string | null;
  since: string;
  lastUsedAt: string | null;
  idleDays: number;
  expiresAt: string;
  nextStep: { action: string; at: string } | null;
  exemption: { reason: string; by: string } | null;
  renewalRequested: { by: string; at: string; purpose: string } | null;
  /** Whom the app was offered to when its owner's account was disabled. */
  offeredTo: string | null;
  /** The engineering team it graduated to, if it did. */
  graduatedTo: string | null;
  archive: {
    id: string;
    createdAt: string;
    expiresAt: string;
    bytes: number;
    secretsToSetAgain: string[];
  } | null;
};

export type Row = {
  id: string;
  name: string;
  owner: string;
  tier: string;
  state: string;
  created_at: string;
  manifest: string;
  last_used_at: string | null;
} & { [K in keyof AppLifecycleTable as `l_${K}`]: AppLifecycleTable[K] | null };

/** How an app's lifecycle reads: its row (or the one it would get), its facts for the rules, and its view. */
export function createLifecycleReader(deps: {
  db: Kysely<Database>;
  clock: Clock;
  settings: LifecycleSettings;
}) {
  const { db, clock, settings } = deps;

  function rows() {
    return db
      .selectFrom('apps')
      .leftJoin('app_lifecycle as l', 'l.app_id', 'apps.id')
      .leftJoin('app_activity as a', 'a.app_id', 'apps.id')
      .select([
        'apps.id',
        'apps.name',
        'apps.owner',
        'apps.tier',
        'apps.state',
        'apps.created_at',
        'apps.manifest',
        'a.last_used_at',
        'l.app_id as l_app_id',
        'l.stage as l_stage',
        'l.reason as l_reason',
        'l.stage_at as l_stage_at',
        'l.next_step_at as l_next_step_at',
        'l.active_since as l_active_since',
        'l.renewed_at as l_renewed_at',
        'l.expiry_notices as l_expiry_notices',
        'l.exempt_reason as l_exempt_reason',
        'l.exempt_by as l_exempt_by',
        'l.renewal_requested as l_renewal_requested',
        'l.resume_deployment as l_resume_deployment',
        'l.archive_id as l_archive_id',
        'l.offered_to as l_offered_to',
        'l.graduated_to as l_graduated_to',
      ]);
  }

  /** The lifecycle row, or the one an app without a row yet would get (active since it was registered). */
  function lifecycleOf(r: Row): AppLifecycleTable {
    return {
      app_id: r.id,
      stage: r.l_stage ?? 'active',
      reason: r.l_reason,
      stage_at: r.l_stage_at ?? r.created_at,
      next_step_at: r.l_next_step_at,
      active_since: r.l_active_since ?? r.created_at,
      renewed_at: r.l_renewed_at,
      expiry_notices: r.l_expiry_notices ?? '',
      exempt_reason: r.l_exempt_reason,
      exempt_by: r.l_exempt_by,
      renewal_requested: r.l_renewal_requested,
      resume_deployment: r.l_resume_deployment,
      archive_id: r.l_archive_id,
      offered_to: r.l_offered_to,
      graduated_to: r.l_graduated_to,
    };
  }

  function expiryFor(r: Row, l: AppLifecycleTable) {
    const manifest = JSON.parse(r.manifest) as Manifest;
    return expiryOf(
      {
        createdAt: r.created_at,
        tier: r.tier as Tier,
        manifestExpires: manifest.lifetime?.expires ?? null,
        renewedAt: l.renewed_at,
      },
      settings,
    );
  }

  function factsOf(r: Row, l: AppLifecycleTable) {
    return {
      approved: r.state === 'approved',
      stage: l.stage as Stage,
      reason: l.reason,
      stageAt: l.stage_at,
      nextStepAt: l.next_step_at,
      activeSince: l.active_since,
      lastUsedAt: r.last_used_at,
      exempt: l.exempt_reason !== null || l.graduated_to !== null,
      // Graduated apps belong to an engineering team now: no micro-app lifetime.
      expiresAt: l.graduated_to ? '9999-12-31T23:59:59.999Z' : expiryFor(r, l),
      noticesSent: l.expiry_notices.split(',').filter(Boolean).map(Number),
    };
  }

  async function ensureRows(missing: Row[]) {
    for (let i = 0; i < missing.length; i += 500)
      await db
        .insertInto('app_lifecycle')
        .values(missing.slice(i, i + 500).map((r) => ({ ...lifecycleOf(r) })))
        .onConflict((oc) => oc.column('app_id').doNothing())
        .execute();
  }

  async function rowFor(appId: string): Promise<Row> {
    return (await rows().where('apps.id', '=', appId).executeTakeFirstOrThrow()) as Row;
  }

  async function toView(r: Row, l: AppLifecycleTable): Promise<LifecycleView> {
    const f = factsOf(r, l);
    const now = clock.now().getTime();
    const lastActive = Math.max(Date.parse(l.active_since), r.last_used_at ? Date.parse(r.last_used_at) : 0);
    const next: Record<string, string> = {
      warned: 'stop',
      stopped: 'escalate',
      escalated: 'decommission',
      decommissioned: 'purge the archive',
    };
    let nextStepView: LifecycleView['nextStep'] = null;
    if (l.stage === 'active' && r.state === 'approved')
      nextStepView = l.exempt_reason
        ? { action: 'expire', at: f.expiresAt }
        : {
            action: 'warn',
            at: new Date(
              Math.min(lastActive + settings.idleDays * dayMs, Date.parse(f.expiresAt)),
            ).toISOString(),
          };
    else if (l.next_step_at) nextStepView = { action: next[l.stage] ?? 'review', at: l.next_step_at };
    const archive = l.archive_id
      ? await db.selectFrom('app_archives').selectAll().where('id', '=', l.archive_id).executeTakeFirst()
      : undefined;
    const renewal = l.renewal_requested
      ? (JSON.parse(l.renewal_requested) as LifecycleView['renewalRequested'])
      : null;
    return {
      app: r.name,
      owner: r.owner,
      stage: l.stage as Stage,
      reason: l.reason,
      since: l.stage_at,
      lastUsedAt: r.last_used_at,
      idleDays: Math.max(0, Math.floor((now - lastActive) / dayMs)),
      expiresAt: f.expiresAt,
      nextStep: nextStepView,
      exemption: l.exempt_reason ? { reason: l.exempt_reason, by: l.exempt_by ?? '' } : null,
      renewalRequested: renewal,
      offeredTo: l.offered_to,
      graduatedTo: l.graduated_to,
      archive:
        archive && !archive.purged_at && l.stage === 'decommissioned'
          ? {
              id: archive.id,
              createdAt: archive.created_at,
              expiresAt: archive.expires_at,
              bytes: Number(archive.bytes),
              secretsToSetAgain: JSON.parse(archive.secret_names) as string[],
            }
          : null,
    };
  }

  return { rows, lifecycleOf, expiryFor, factsOf, ensureRows, rowFor, toView };
}
