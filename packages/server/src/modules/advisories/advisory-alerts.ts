import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import { type AdvisoryService, componentsOf } from './advisory-service.ts';

/**
 * Re-matches the SBOM of every deployed version against the latest advisories and tells each owner,
 * once, about advisories that newly affect what they run. Runs after every import and on a schedule.
 */
export function createAdvisoryAlerts(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  advisories: Pick<AdvisoryService, 'scan' | 'current'>;
  notifications: Pick<NotificationService, 'notify'>;
}) {
  const { db } = deps;

  async function run() {
    const snapshot = await deps.advisories.current();
    if (!snapshot) return { deployed: 0, alerts: 0 };
    const deployed = await db
      .selectFrom('deployments')
      .innerJoin('apps', 'apps.id', 'deployments.app_id')
      .innerJoin('app_versions', (j) =>
        j
          .onRef('app_versions.app_id', '=', 'deployments.app_id')
          .onRef('app_versions.version', '=', 'deployments.version'),
      )
      .select(['apps.id', 'apps.name', 'apps.owner', 'apps.tier', 'deployments.version', 'app_versions.sbom'])
      .where('deployments.state', 'in', ['running', 'idle'])
      .execute();
    let alerts = 0;
    for (const d of deployed) {
      const scan = await deps.advisories.scan(componentsOf(JSON.parse(d.sbom)), {
        tier: d.tier,
        app: d.name,
      });
      const open = scan.findings.filter((f) => !f.exception);
      if (!open.length) continue;
      await db.transaction().execute(async (trx) => {
        const fresh = [];
        for (const f of open) {
          const r = await trx
            .insertInto('advisory_alerts')
            .values({
              app_id: d.id,
              version: d.version,
              advisory: f.ids[0]!,
              package: f.package,
              severity: f.severity,
              created_at: deps.clock.nowIso(),
            })
            .onConflict((oc) => oc.columns(['app_id', 'version', 'advisory', 'package']).doNothing())
            .executeTakeFirst();
          if (Number(r.numInsertedOrUpdatedRows ?? 0) === 1) fresh.push(f);
        }
        if (!fresh.length) return;
        alerts += fresh.length;
        const lines = fresh.map(
          (f) =>
            `${f.ids[0]} (${f.severity}) in ${f.package}@${f.version}${f.fixed.length ? `: fixed in ${f.fixed.join(' or ')}` : ': no fixed version yet'}`,
        );
        await deps.audit.record(
          trx,
          { actor: 'system:advisories' },
          {
            action: 'advisories.alerted',
            targetType: 'app',
            target: d.name,
            summary: {
              version: d.version,
              snapshot: snapshot.digest,
              advisories: fresh.map((f) => f.ids[0]),
            },
          },
        );
        await deps.notifications.notify(trx, {
          recipient: d.owner,
          app: d.name,
          kind: 'advisory',
          subject: `New vulnerability advisory affects ${d.name}@${d.version}`,
          body: `Advisories imported on ${snapshot.importedAt.slice(0, 10)} affect the version of ${d.name} that is deployed:\n${lines.join('\n')}\nUpgrade the package, publish and deploy a new version${scan.passed ? '' : '; until then this version would not pass the scan for a ' + d.tier + '-tier app'}.`,
          action: `/apps/${d.name}#versions`,
          dedupeKey: `advisory:${d.id}:${d.version}:${snapshot.id}`,
        });
      });
    }
    return { deployed: deployed.length, alerts };
  }

  return { run };
}
