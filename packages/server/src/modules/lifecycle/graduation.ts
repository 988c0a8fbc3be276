import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { c } from 'tar';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { setOwner } from '../identity/users.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { VersionsService } from '../signing/versions-service.ts';

type Finding = {
  ids: string[];
  package: string;
  version: string;
  severity: string;
  fixed: string[];
  exception: unknown;
};

/** The hardening checklist an engineering team works through when it takes an app over. */
function checklist(
  app: { name: string; tier: string; manifest: Record<string, unknown> },
  findings: Finding[],
  secrets: string[],
) {
  const m = app.manifest as {
    dataClasses?: string[];
    integrations?: { egress?: string[]; connectors?: string[] };
    audience?: { department?: string };
  };
  const item = (text: string) => `- [ ] ${text}`;
  return [
    `# Hardening checklist: ${app.name}`,
    '',
    `Tier ${app.tier}; data classes: ${(m.dataClasses ?? []).join(', ') || 'none declared'}.`,
    '',
    '## Ownership and operations',
    item('Name an on-call rotation and add the app to the team’s service catalog.'),
    item('Define availability and latency objectives; wire alerts to the team’s paging tool.'),
    item('Move logs and metrics to the team’s observability stack; keep the audit excerpt in this bundle.'),
    '',
    '## Code and supply chain',
    item(
      'Clone `repository.bundle` (its whole history) into the team’s repository host, with branch protection and required review.',
    ),
    item('Rebuild from source in the team’s CI; compare the SBOM with `sbom.cdx.json`.'),
    ...findings.map((f) =>
      item(
        `Fix ${f.ids[0]} (${f.severity}) in ${f.package}@${f.version}${f.fixed.length ? `: upgrade to ${f.fixed.join(' or ')}` : ''}.`,
      ),
    ),
    item('Verify the attestations in `attestations/` before trusting `source/` (see docs/supply-chain.md).'),
    '',
    '## Secrets and access',
    ...(secrets.length
      ? secrets.map((s) => item(`Move secret ${s} to the team’s secret store and rotate it.`))
      : [item('No platform secrets: confirm none are needed.')]),
    item(
      `Replace the platform's sign-in: keep the audience (${m.audience?.department ?? 'not limited'}) in the new access rules.`,
    ),
    ...(m.integrations?.egress ?? []).map((h) =>
      item(`Allow outbound traffic to ${h} only, through the team's egress controls.`),
    ),
    ...(m.integrations?.connectors ?? []).map((cn) =>
      item(`Re-provision connector ${cn} with the team’s own credentials.`),
    ),
    '',
    '## Data',
    item('Confirm retention and deletion for each data class above with the data owner.'),
    ...((m.dataClasses ?? []).some((d) => ['pii', 'phi', 'financial', 'confidential'].includes(d))
      ? [item('Sensitive data: run a privacy / security review before the first change in production.')]
      : []),
    '',
  ].join('\n');
}

/**
 * Graduation: an app outgrew micro-app limits and an engineering team takes it. The export bundle holds
 * what that team needs to carry it on (source, SBOM, attestations, manifest, data classification, access
 * rules, audit excerpt, a hardening checklist); graduating moves ownership to the team's lead and lifts
 * inactivity and expiry.
 */
export function createGraduation(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record' | 'list'>;
  catalog: Pick<CatalogService, 'get'>;
  versions: Pick<VersionsService, 'stored'>;
  notifications: Pick<NotificationService, 'notify'>;
  /** The app's repository with its whole history, as a git bundle (modules/repos), when it has one. */
  repositoryBundle?: (appId: string) => Promise<Buffer | null>;
}) {
  const { db } = deps;

  /** The export bundle (tar.gz) of an app: its owner, an admin or an auditor may take one. */
  async function exportBundle(principal: Principal, name: string, ctx: AuditContext): Promise<Buffer> {
    const app = await deps.catalog.get(principal, name);
    if (app.owner !== principal.email && !hasRole(principal, 'admin', 'auditor'))
      throw forbidden(`only the owner of ${name}, an admin or an auditor can export it`);
    const version = await db
      .selectFrom('app_versions')
      .selectAll()
      .where('app_id', '=', app.id)
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    const dir = mkdtempSync(join(tmpdir(), 'microapp-export-'));
    try {
      const root = join(dir, name);
      mkdirSync(join(root, 'attestations'), { recursive: true });
      const json = (file: string, value: unknown) =>
        writeFileSync(join(root, file), `${JSON.stringify(value, null, 2)}\n`);
      json('manifest.json', app.manifest);
      json('data-classification.json', {
        dataClasses: app.manifest.dataClasses,
        tier: app.tier,
        score: app.assessment.score,
        factors: app.assessment.factors,
        rulesVersion: app.assessment.rulesVersion,
      });
      json('access-policy.json', {
        audience: app.manifest.audience ?? {},
        decidedBy: 'data.microapp.access.allow (policies/access in the platform repository)',
        reviews: app.approval.reviews,
      });
      const secrets = (
        await db.selectFrom('app_secrets').select('name').where('app_id', '=', app.id).execute()
      ).map((s) => s.name);
      let findings: Finding[] = [];
      if (version) {
        const stored = await deps.versions.stored(app.id, version.version);
        mkdirSync(join(root, 'source'));
        writeFileSync(join(root, 'source', `${name}-${version.version}.tar.gz`), stored.bytes);
        json('sbom.cdx.json', JSON.parse(version.sbom));
        for (const [kind, bundle] of Object.entries(stored.bundles))
          json(`attestations/${kind}.sigstore.json`, bundle);
        findings = ((JSON.parse(version.scan) as { findings?: Finding[] }).findings ?? []).filter(
          (f) => !f.exception,
        );
      }
      const events = (await deps.audit.list({ limit: 1000, targets: { type: 'app', names: [name] } })).map(
        (e) => JSON.stringify(e),
      );
      const history = deps.repositoryBundle ? await deps.repositoryBundle(app.id) : null;
      if (history) writeFileSync(join(root, 'repository.bundle'), history);
      writeFileSync(join(root, 'audit.jsonl'), events.length ? `${events.join('\n')}\n` : '');
      writeFileSync(join(root, 'HARDENING.md'), checklist(app, findings, secrets));
      writeFileSync(
        join(root, 'README.md'),
        `# ${name}: export bundle\n\nExported ${deps.clock.nowIso()} by ${principal.email}${version ? `; version ${version.version} (${version.digest})` : '; no version published'}.\n\n- manifest.json, data-classification.json, access-policy.json\n- source/ (the signed artifact), sbom.cdx.json, attestations/ (Sigstore bundles: artifact signature, SLSA provenance, SBOM, scan)\n${history ? `- repository.bundle (the app's repository with every branch and its history: \`git clone repository.bundle ${name}\`)\n` : ''}- audit.jsonl (every audit event about the app, with its chain hashes)\n- HARDENING.md (what to do before the team runs it)\n`,
      );
      const chunks: Buffer[] = [];
      for await (const chunk of c({ gzip: true, cwd: dir, portable: true }, [name]) as AsyncIterable<Buffer>)
        chunks.push(chunk);
      await db.transaction().execute((trx) =>
        deps.audit.record(trx, ctx, {
          action: 'app.exported',
          targetType: 'app',
          target: name,
          summary: { version: version?.version ?? null, auditEvents: events.length },
        }),
      );
      return Buffer.concat(chunks);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Admins hand an app to an engineering team: ownership to the team's lead, micro-app limits lifted. */
  async function graduate(principal: Principal, name: string, team: string, lead: string, ctx: AuditContext) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins graduate apps');
    const app = await deps.catalog.get(principal, name);
    const owner = lead.toLowerCase();
    const lifecycle = await db
      .selectFrom('app_lifecycle')
      .select(['stage', 'graduated_to'])
      .where('app_id', '=', app.id)
      .executeTakeFirst();
    if (lifecycle?.stage === 'decommissioned')
      throw new AppError('conflict', `${name} is decommissioned; restore it first`);
    if (lifecycle?.graduated_to)
      throw new AppError('conflict', `${name} already graduated to ${lifecycle.graduated_to}`);
    const now = deps.clock.nowIso();
    await db.transaction().execute(async (trx) => {
      await setOwner(trx, app, owner, now, "the team's lead signs in once first");
      await trx
        .insertInto('app_lifecycle')
        .values({
          app_id: app.id,
          stage: 'active',
          reason: null,
          stage_at: now,
          next_step_at: null,
          active_since: now,
          expiry_notices: '',
          graduated_to: team,
        })
        .onConflict((oc) =>
          oc.column('app_id').doUpdateSet({
            graduated_to: team,
            stage: 'active',
            reason: null,
            stage_at: now,
            next_step_at: null,
            offered_to: null,
          }),
        )
        .execute();
      await deps.audit.record(trx, ctx, {
        action: 'app.graduated',
        targetType: 'app',
        target: name,
        summary: { team, from: app.owner, to: owner },
      });
      await deps.notifications.notify(trx, {
        recipient: owner,
        app: name,
        kind: 'graduated',
        subject: `${name} graduated to ${team}; you own it now`,
        body: `${name} is now ${team}'s. Its export bundle holds the source, SBOM, attestations, access rules, audit trail and a hardening checklist; inactivity and expiry no longer apply.`,
        action: `/apps/${name}`,
        dedupeKey: `graduated:${app.id}`,
      });
    });
    return deps.catalog.get(principal, name);
  }

  return { exportBundle, graduate };
}

export type Graduation = ReturnType<typeof createGraduation>;
