import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import { dayMs } from '../../clock.ts';
import type { AppLifecycleTable, Database } from '../../db/schema.ts';
import { AppError, forbidden } from '../../errors.ts';
import type { AdvisoryService } from '../advisories/advisory-service.ts';
import { componentsOf } from '../advisories/advisory-service.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { emailsWithRole } from '../identity/users.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { DeploymentService } from '../runtime/deployment-service.ts';
import type { Kek } from '../secrets/envelope.ts';
import { openArchive } from './archive.ts';
import { createLifecycleReader, type Row } from './lifecycle-reader.ts';
import { type LifecycleSettings, nextStep } from './lifecycle-rules.ts';
import type { LifecycleSteps } from './lifecycle-steps.ts';

const system: AuditContext = { actor: 'system:lifecycle' };

/** A renewal or a restore starts a new term: active now, idle from now, a new expiry, no notices sent. */
const freshTerm = (now: string) => ({
  stage: 'active',
  reason: null,
  stage_at: now,
  next_step_at: null,
  active_since: now,
  renewed_at: now,
  expiry_notices: '',
});
const day = (iso: string) => iso.slice(0, 10);

export type { LifecycleView } from './lifecycle-reader.ts';

/**
 * Expiry, renewal, inactivity and decommissioning. The job walks every app once per run and applies
 * at most the steps that are due; people renew, exempt, decommission and restore through the API.
 */
/** Apps the scheduled job reads at a time. */
const jobPageSize = 1000;

export function createLifecycleService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  notifications: Pick<NotificationService, 'notify'>;
  catalog: Pick<CatalogService, 'get'>;
  deployments: Pick<DeploymentService, 'resume'>;
  advisories: Pick<AdvisoryService, 'scan'>;
  steps: LifecycleSteps;
  keks: Kek[];
  settings: LifecycleSettings;
}) {
  const { db, clock, audit, steps, settings } = deps;

  const { rows, lifecycleOf, expiryFor, factsOf, ensureRows, rowFor, toView } = createLifecycleReader(deps);

  /** The scheduled job: every app, each due step in order (at most one change of stage per app per run). */
  async function runJob({ now }: { now: Date }) {
    const counts: Record<string, number> = { apps: 0 };
    // A page of apps at a time, in id order: a catalog of 100,000 is never in memory at once, and requests
    // are served between pages (on SQLite each query holds the event loop until it has every row).
    for (let after = ''; ; ) {
      const page = (await rows()
        .where('apps.id', '>', after)
        .orderBy('apps.id')
        .limit(jobPageSize)
        .execute()) as Row[];
      if (page.length === 0) break;
      after = page.at(-1)!.id;
      counts.apps! += page.length;
      await ensureRows(page.filter((r) => r.l_app_id === null));
      await advance(page, now, counts);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return counts;
  }

  /** Each app's due steps, in order. */
  async function advance(page: Row[], now: Date, counts: Record<string, number>) {
    for (const r of page) {
      let row = lifecycleOf(r);
      const before = row.stage;
      for (let i = 0; i < 4; i++) {
        const step = nextStep(factsOf(r, row), now, settings);
        if (step.kind === 'none') break;
        const changed = await steps.apply(r, row, step, system);
        if (!changed) break;
        counts[step.kind] = (counts[step.kind] ?? 0) + 1;
        row = lifecycleOf((await rowFor(r.id)) as Row);
        if (row.stage !== before && row.stage !== 'active') break;
      }
    }
  }

  async function load(principal: Principal, name: string) {
    const app = await deps.catalog.get(principal, name);
    await ensureRows([(await rowFor(app.id)) as Row].filter((r) => r.l_app_id === null));
    const r = (await rowFor(app.id)) as Row;
    return { app, r, l: lifecycleOf(r) };
  }

  async function view(principal: Principal, name: string) {
    const { r, l } = await load(principal, name);
    return toView(r, l);
  }

  function ownerOrAdmin(principal: Principal, app: { owner: string; name: string }, what: string) {
    if (app.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden(`only the owner of ${app.name} or an admin can ${what}`);
  }

  /** Re-scans the version the app runs (or its newest) against today's advisories; refuses on blocking findings. */
  async function rescan(appId: string, name: string, tier: string) {
    const version = await db
      .selectFrom('app_versions')
      .leftJoin('deployments', (j) =>
        j
          .onRef('deployments.app_id', '=', 'app_versions.app_id')
          .onRef('deployments.version', '=', 'app_versions.version'),
      )
      .select(['app_versions.version', 'app_versions.sbom'])
      .where('app_versions.app_id', '=', appId)
      .orderBy('deployments.started_at', 'desc')
      .orderBy('app_versions.created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!version) return { version: null, findings: 0, snapshot: null };
    const scan = await deps.advisories.scan(componentsOf(JSON.parse(version.sbom)), { tier, app: name });
    if (!scan.passed)
      throw new AppError(
        'conflict',
        `${name}@${version.version} has ${scan.blocking.length} finding(s) a ${tier}-tier app may not run with under today's advisories (${scan.blocking
          .map(
            (f) =>
              `${f.ids[0]} in ${f.package}@${f.version}${f.fixed.length ? `, fixed in ${f.fixed.join(' or ')}` : ''}`,
          )
          .join(
            '; ',
          )}); publish and deploy a fixed version, or ask a security reviewer for an exception, then renew`,
      );
    return { version: version.version, findings: scan.findings.length, snapshot: scan.snapshot.digest };
  }

  async function applyRenewal(
    r: Row,
    l: AppLifecycleTable,
    ctx: AuditContext,
    action: string,
    purpose: string,
    scan: unknown,
  ) {
    const now = clock.nowIso();
    await db.transaction().execute(async (trx) => {
      const ok = await steps.compareAndSet(trx, l, { ...freshTerm(now), renewal_requested: null });
      if (!ok) throw new AppError('conflict', `${r.name} changed while it was being renewed; try again`);
      const expiresAt = expiryFor(r, { ...l, renewed_at: now });
      await audit.record(trx, ctx, {
        action,
        targetType: 'app',
        target: r.name,
        reason: purpose,
        summary: { previousStage: l.stage, expiresAt, scan: scan as Record<string, unknown> },
      });
      await deps.notifications.notify(trx, {
        recipient: r.owner,
        app: r.name,
        kind: 'renewed',
        subject: `${r.name} was renewed until ${day(expiresAt)}`,
        body: `${r.name} was renewed by ${ctx.actor}${l.stage !== 'active' ? '; it starts again on its next request' : ''}.`,
        action: null,
        dedupeKey: `renew:${r.id}:${now}`,
      });
    });
  }

  /** The owner re-confirms the purpose; high tier waits for a reviewer. Also the answer to a warning or a stop. */
  async function renew(principal: Principal, name: string, purpose: string, ctx: AuditContext) {
    const { app, r, l } = await load(principal, name);
    ownerOrAdmin(principal, app, 'renew it');
    if (l.stage === 'decommissioned')
      throw new AppError(
        'conflict',
        `${name} was decommissioned; restore it first (Restore on its page in the console, or \`microapp restore ${name}\`)`,
      );
    if (app.state !== 'approved')
      throw new AppError(
        'conflict',
        `${name} is ${app.state.replace('_', ' ')}; only approved apps are renewed`,
      );
    const scan = await rescan(app.id, name, app.tier);
    if (app.tier === 'high') {
      const request = { by: principal.email, at: clock.nowIso(), purpose };
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('app_lifecycle')
          .set({ renewal_requested: JSON.stringify(request) })
          .where('app_id', '=', app.id)
          .execute();
        await audit.record(trx, ctx, {
          action: 'lifecycle.renewal_requested',
          targetType: 'app',
          target: name,
          reason: purpose,
          summary: { scan },
        });
        const reviewers = await emailsWithRole(trx, 'reviewer');
        for (const reviewer of reviewers.filter((e) => e !== principal.email))
          await deps.notifications.notify(trx, {
            recipient: reviewer,
            app: name,
            kind: 'renewal_review',
            subject: `${name} (high tier) asks to be renewed`,
            body: `${principal.email} asks to renew ${name}: "${purpose}". A high-tier renewal needs a reviewer.`,
            action: `/apps/${name}#renew-review`,
            dedupeKey: `renewal:${app.id}:${request.at}:${reviewer}`,
          });
      });
      return { status: 'pending_review' as const, lifecycle: await view(principal, name) };
    }
    await applyRenewal(r, l, ctx, 'lifecycle.renewed', purpose, scan);
    return { status: 'renewed' as const, lifecycle: await view(principal, name) };
  }

  /** A reviewer confirms a high-tier renewal; not the person who asked for it. */
  async function approveRenewal(principal: Principal, name: string, ctx: AuditContext) {
    if (!hasRole(principal, 'reviewer')) throw forbidden('only reviewers approve renewals');
    const { app, r, l } = await load(principal, name);
    if (!l.renewal_requested) throw new AppError('conflict', `${name} has no renewal waiting for review`);
    const request = JSON.parse(l.renewal_requested) as { by: string; purpose: string };
    if (request.by === principal.email || app.owner === principal.email)
      throw forbidden('the owner or the person who asked cannot approve their own renewal');
    const scan = await rescan(app.id, name, app.tier);
    await applyRenewal(r, l, ctx, 'lifecycle.renewal_approved', request.purpose, {
      ...scan,
      requestedBy: request.by,
    });
    return { status: 'renewed' as const, lifecycle: await view(principal, name) };
  }

  /** Admins exempt an app from inactivity (not from expiry) with a reason; null removes the exemption. */
  async function setExemption(principal: Principal, name: string, reason: string | null, ctx: AuditContext) {
    if (!hasRole(principal, 'admin'))
      throw forbidden('only platform admins exempt apps from inactivity checks');
    const { l } = await load(principal, name);
    await db.transaction().execute(async (trx) => {
      const set = reason
        ? { exempt_reason: reason, exempt_by: principal.email }
        : { exempt_reason: null, exempt_by: null };
      // An exemption answers a pending warning: the app goes back to active.
      const answering = reason && l.stage === 'warned' && l.reason === 'inactive';
      const ok = await steps.compareAndSet(
        trx,
        l,
        answering
          ? { ...set, stage: 'active', reason: null, stage_at: clock.nowIso(), next_step_at: null }
          : set,
      );
      if (!ok) throw new AppError('conflict', `${name} changed meanwhile; try again`);
      await audit.record(trx, ctx, {
        action: reason ? 'lifecycle.exempted' : 'lifecycle.exemption_removed',
        targetType: 'app',
        target: name,
        reason,
      });
    });
    return view(principal, name);
  }

  /** The owner or an admin retires an app now, without waiting for the schedule. */
  async function decommissionNow(principal: Principal, name: string, reason: string, ctx: AuditContext) {
    const { app, l } = await load(principal, name);
    ownerOrAdmin(principal, app, 'decommission it');
    if (l.stage === 'decommissioned') throw new AppError('conflict', `${name} is already decommissioned`);
    const purgeAt = new Date(clock.now().getTime() + settings.archiveRetentionDays * dayMs).toISOString();
    const done = await steps.decommission({ id: app.id, name, owner: app.owner }, l, purgeAt, ctx, reason);
    if (!done) throw new AppError('conflict', `${name} changed meanwhile; try again`);
    return view(principal, name);
  }

  /** Brings a decommissioned app back with its data; its secrets must be set again. */
  async function restore(principal: Principal, name: string, ctx: AuditContext) {
    const { app, l } = await load(principal, name);
    ownerOrAdmin(principal, app, 'restore it');
    if (l.stage !== 'decommissioned')
      throw new AppError('conflict', `${name} is not decommissioned (it is ${l.stage})`);
    const archive = l.archive_id
      ? await db.selectFrom('app_archives').selectAll().where('id', '=', l.archive_id).executeTakeFirst()
      : undefined;
    if (!archive || archive.purged_at)
      throw new AppError(
        'conflict',
        `the archive of ${name} was deleted when its retention ended; it cannot be restored`,
      );
    const unpacked = await openArchive(
      deps.keks,
      {
        path: archive.path,
        digest: archive.digest,
        bytes: Number(archive.bytes),
        kekId: archive.kek_id,
        wrappedKey: archive.wrapped_key,
      },
      steps.dataDirOf(name),
      app.id,
      await steps.archiveBody(archive),
    );
    const now = clock.nowIso();
    const secrets = JSON.parse(archive.secret_names) as string[];
    await db.transaction().execute(async (trx) => {
      const ok = await steps.compareAndSet(trx, l, freshTerm(now));
      if (!ok) throw new AppError('conflict', `${name} changed meanwhile; try again`);
      await trx.updateTable('app_archives').set({ restored_at: now }).where('id', '=', archive.id).execute();
      if (l.resume_deployment) await deps.deployments.resume(trx, l.resume_deployment);
      await audit.record(trx, ctx, {
        action: 'lifecycle.restored',
        targetType: 'app',
        target: name,
        summary: {
          archive: archive.id,
          secretsToSetAgain: secrets,
          resumes: l.resume_deployment,
          files: unpacked.files,
          links: unpacked.links,
          ...(unpacked.skipped.length ? { skipped: unpacked.skipped.slice(0, 20) } : {}),
        },
      });
    });
    const after = await rowFor(app.id);
    return { lifecycle: await toView(after, lifecycleOf(after)), secretsToSetAgain: secrets };
  }

  /** Why the gateway must not serve an app now, in words for its visitors; null when it may. */
  async function hold(appId: string): Promise<{ status: number; message: string } | null> {
    const l = await db
      .selectFrom('app_lifecycle')
      .innerJoin('apps', 'apps.id', 'app_lifecycle.app_id')
      .select([
        'app_lifecycle.stage',
        'app_lifecycle.reason',
        'app_lifecycle.stage_at',
        'apps.name',
        'apps.owner',
      ])
      .where('app_id', '=', appId)
      .executeTakeFirst();
    if (!l || l.stage === 'active' || l.stage === 'warned') return null;
    if (l.stage === 'decommissioned')
      return {
        status: 410,
        message: `${l.name} was retired on ${day(l.stage_at)}. Its owner, ${l.owner}, or a platform admin can bring it back with Restore on its page in the console; ask them if you need it.`,
      };
    return {
      status: 503,
      message:
        l.reason === 'owner_left'
          ? `${l.name} was stopped on ${day(l.stage_at)} because its owner, ${l.owner}, left. A platform admin can give it a new owner.`
          : `${l.name} was stopped on ${day(l.stage_at)} because ${l.reason === 'expired' ? 'its approved lifetime ended' : 'nobody had used it for a long time'}. Its owner, ${l.owner}, can bring it back with Renew on its page in the console; ask them if you need it.`,
    };
  }

  /** Every app exempted from inactivity checks, with why and by whom (admins and auditors). */
  async function exemptions(principal: Principal) {
    if (!hasRole(principal, 'admin') && !hasRole(principal, 'auditor'))
      throw forbidden('only platform admins and auditors list exemptions');
    const rows = await db
      .selectFrom('app_lifecycle')
      .innerJoin('apps', 'apps.id', 'app_lifecycle.app_id')
      .select([
        'apps.name',
        'apps.owner',
        'apps.tier',
        'app_lifecycle.exempt_reason',
        'app_lifecycle.exempt_by',
        'app_lifecycle.stage',
      ])
      .where('app_lifecycle.exempt_reason', 'is not', null)
      .orderBy('apps.name')
      .execute();
    return rows.map((r) => ({
      app: r.name,
      owner: r.owner,
      tier: r.tier,
      stage: r.stage,
      reason: r.exempt_reason!,
      by: r.exempt_by ?? '',
    }));
  }

  return { runJob, view, renew, approveRenewal, setExemption, exemptions, decommissionNow, restore, hold };
}

export type LifecycleService = ReturnType<typeof createLifecycleService>;
