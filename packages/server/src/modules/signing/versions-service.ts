import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError, conflict, forbidden, notFound } from '../../errors.ts';
import { newId, nowIso } from '../../ids.ts';
import type { AdvisoryService } from '../advisories/advisory-service.ts';
import { componentsOf } from '../advisories/advisory-service.ts';
import type { AgentSessionRecord, AgentSessionReference } from '../agents/agent-session.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { BlobMissingError, type BlobStore } from '../blobs/blob-store.ts';
import type { CommitSource } from '../builds/build-types.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { readArtifact, type UnpackLimits } from './artifact-contents.ts';
import {
  agentSessionPredicate,
  attest,
  buildType,
  cyclonedxPredicate,
  signArtifact,
  slsaProvenance,
  statement,
  vulnPredicate,
} from './attestations.ts';
import type { KeyStore } from './key-store.ts';
import { verifyArtifact } from './verify.ts';

export type PublishInput = {
  version: string;
  artifact: string; // base64 of the tar.gz
  sbom: Record<string, unknown>;
  sourceDigest?: string;
  lockfileDigest?: string;
};

/** An SBOM with one more property in its metadata (CycloneDX `metadata.properties`). */
function withProperty(sbom: unknown, name: string, value: string): unknown {
  const doc = sbom as { metadata?: { properties?: { name: string; value: string }[] } };
  const metadata = doc.metadata ?? {};
  return { ...doc, metadata: { ...metadata, properties: [...(metadata.properties ?? []), { name, value }] } };
}

/**
 * Signs and publishes app versions: the platform re-scans the SBOM, signs the artifact and its
 * attestations (SLSA provenance, SBOM, scan) with its own key, and stores everything immutably.
 */
export function createVersionsService(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  advisories: Pick<AdvisoryService, 'scan'>;
  keys: KeyStore;
  /** Where artifacts are kept, by digest (modules/blobs). */
  blobs: Pick<BlobStore, 'put' | 'get' | 'attach'>;
  /**
   * Who built a version, as SLSA provenance names it: the platform (a build it ran, sandboxed, from source
   * it holds) or a client (`microapp ci` on a creator's machine or in their CI, which the platform did not
   * watch and cannot vouch for).
   */
  builderId: (by: 'platform' | 'client') => string;
  /** How far a published artifact may expand. */
  unpackLimits?: UnpackLimits;
  /** The record of an agent session, for versions an agent's build publishes (modules/agents). */
  agentSession?: AgentSessionRecord;
  /** Sign only what a merged change request built (MICROAPP_SHIP_ONLY_MERGED_CHANGES). */
  shipOnlyMergedChanges?: boolean;
}) {
  const { db, audit, keys } = deps;

  /**
   * A stored artifact's bytes, checked against its digest by the store. With `changedAsIs`, bytes that no
   * longer match come out as the store's error, for a verification to report as a failed signature check.
   */
  async function readBlob(digest: string, what: string, changedAsIs = false): Promise<Buffer> {
    try {
      return await deps.blobs.get('artifact', digest);
    } catch (error) {
      if (!(error instanceof BlobMissingError) || (changedAsIs && error.changed)) throw error;
      throw new AppError('internal', `the stored artifact of ${what} cannot be read: ${error.message}`);
    }
  }

  async function publish(principal: Principal, name: string, input: PublishInput, ctx: AuditContext) {
    const app = await deps.catalog.get(principal, name);
    const mayPublish = app.owner === principal.email || hasRole(principal, 'admin');
    if (!mayPublish) throw forbidden(`only the owner of ${name} or an admin can publish versions`);
    if (app.state !== 'approved')
      throw new AppError(
        'conflict',
        `${name} is ${app.state.replace('_', ' ')}; only approved apps are signed`,
      );
    const bytes = Buffer.from(input.artifact, 'base64');
    if (bytes.length === 0) throw new AppError('validation_failed', 'the artifact is empty');
    const hex = createHash('sha256').update(bytes).digest('hex');
    const digest = `sha256:${hex}`;
    const existing = await db
      .selectFrom('app_versions')
      .selectAll()
      .where('app_id', '=', app.id)
      .where('version', '=', input.version)
      .executeTakeFirst();
    if (existing) {
      if (existing.digest !== digest)
        throw conflict(
          `version ${input.version} of ${name} is already published with ${existing.digest}; bump the version to publish new content`,
        );
      return view(existing, name);
    }
    // The platform does not trust the client's SBOM: it reads the artifact itself, and an SBOM that leaves
    // out a package the artifact ships is refused rather than signed.
    const contents = await readArtifact(bytes, deps.unpackLimits);
    const listed = componentsOf(input.sbom);
    const described = new Set(listed.map((c) => `${c.name}@${c.version}`));
    const missing = [
      ...new Set(contents.packages.map((p) => `${p.name}@${p.version}`).filter((p) => !described.has(p))),
    ];
    if (missing.length > 0)
      throw new AppError(
        'validation_failed',
        `the SBOM leaves out ${missing.length} package(s) the artifact ships: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}; publish the SBOM that \`microapp ci\` makes from the same folder`,
      );
    // Nor its scan: it scans again before signing.
    const scan = await deps.advisories.scan(listed, { tier: app.tier, app: app.name });
    // A build the platform ran acts with a token made for it, recorded on the running build; any other
    // publisher built the artifact where the platform could not see.
    const build =
      principal.via.kind === 'token'
        ? await db
            .selectFrom('builds')
            .select(['id', 'settings'])
            .where('token_id', '=', principal.via.tokenId)
            .where('state', '=', 'running')
            .where('app_name', '=', name)
            .executeTakeFirst()
        : undefined;
    const builtBy = build ? 'platform' : 'client';
    const from = build ? (JSON.parse(build.settings) as { source?: CommitSource }).source : undefined;
    if (deps.shipOnlyMergedChanges && !(from?.publish && from.change))
      throw new AppError(
        'conflict',
        `this platform ships only what a merged change request built: push your change to a branch of ${name}'s repository and open a change request (the console's Deploy does both); once its checks pass and its reviews are in, merging builds, signs and ships it`,
      );
    if (!scan.passed)
      throw new AppError(
        'policy_denied',
        `the SBOM has ${scan.blocking.length} blocking finding(s) for a ${app.tier}-tier app: ${scan.blocking.map((f) => `${f.ids[0]} in ${f.package}@${f.version}`).join(', ')}`,
      );
    const key = await keys.current();
    const subject = { name: `${name}-${input.version}.tar.gz`, sha256: hex };
    const started = nowIso();
    // A build an agent asked for: its session's record is signed with the version and named by its provenance.
    const settings = build
      ? (JSON.parse(build.settings) as { agentDelegation?: string; source?: CommitSource })
      : {};
    const delegation = settings.agentDelegation;
    // A build of a repository commit: the provenance names the repository, the ref and the commit.
    const source = settings.source;
    const session = delegation && deps.agentSession ? await deps.agentSession(delegation) : null;
    const sbom = session
      ? withProperty(input.sbom, 'microapp:agent-session', session.reference.predicateDigest)
      : input.sbom;
    const provenance = statement(subject, slsaProvenance, {
      buildDefinition: {
        buildType,
        externalParameters: {
          app: name,
          version: input.version,
          sourceDigest: input.sourceDigest ?? null,
          template: app.manifest.template ?? null,
          ...(source
            ? { source: { repository: source.repository, ref: source.ref, commit: source.commit } }
            : {}),
        },
        internalParameters: {
          tier: app.tier,
          revision: app.revision,
          policyScanSnapshot: scan.snapshot.digest,
          // Build L2 when the platform ran the build; L1 when a client did and only asked for a signature.
          builtBy,
          slsaBuildLevel: builtBy === 'platform' ? 2 : 1,
          publishedBy: principal.email,
          ...(build ? { build: build.id } : {}),
          ...(session ? { agentSession: session.reference } : {}),
        },
        resolvedDependencies: [
          ...(source
            ? [{ uri: `git+${source.repository}@${source.ref}`, digest: { gitCommit: source.commit } }]
            : []),
          ...(input.lockfileDigest
            ? [{ uri: 'package-lock.json', digest: { sha256: input.lockfileDigest.replace(/^sha256:/, '') } }]
            : []),
        ],
      },
      runDetails: {
        builder: { id: deps.builderId(builtBy) },
        metadata: { invocationId: build?.id ?? newId('version'), startedOn: started, finishedOn: nowIso() },
      },
    });
    const bundles = {
      artifact: await signArtifact(key, bytes),
      provenance: await attest(key, provenance),
      sbom: await attest(key, statement(subject, cyclonedxPredicate, sbom)),
      scan: await attest(
        key,
        statement(subject, vulnPredicate, {
          scanner: {
            uri: 'https://github.com/microapp-platform/microapp',
            version: '0.1.0',
            db: { uri: 'osv', version: scan.snapshot.digest },
            result: { passed: scan.passed, findings: scan.findings },
          },
          metadata: { scanStartedOn: started, scanFinishedOn: nowIso() },
        }),
      ),
      ...(session
        ? { agentSession: await attest(key, statement(subject, agentSessionPredicate, session.predicate)) }
        : {}),
    };
    await deps.blobs.put('artifact', bytes);
    await deps.blobs.attach?.(
      { digest, size: bytes.length },
      Object.entries(bundles).map(([name, bundle]) => ({ name, bundle })),
    );
    const row = {
      id: newId('version'),
      app_id: app.id,
      version: input.version,
      digest,
      sbom: JSON.stringify(sbom),
      scan: JSON.stringify(scan),
      bundles: JSON.stringify(bundles),
      provenance: JSON.stringify(provenance),
      created_by: principal.email,
      created_at: nowIso(),
    };
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('app_versions').values(row).execute();
      // Published by the build an agent asked for: the event names the agent beside the person.
      const agent = session
        ? {
            delegationId: session.reference.delegation,
            client: session.reference.agent,
            version: (session.predicate.agent as { version?: string | null } | undefined)?.version ?? null,
            model: session.reference.model,
          }
        : undefined;
      await audit.record(trx, agent ? { ...ctx, act: agent } : ctx, {
        action: 'artifact.published',
        targetType: 'app',
        target: name,
        summary: {
          version: input.version,
          digest,
          keyid: key.keyid,
          findings: scan.findings.length,
          builtBy,
          packages: contents.packages.length,
          ...(source ? { commit: source.commit } : {}),
          // The agent session's signed record, by digest: an audit export names it beside the version.
          ...(session ? { agentSession: session.reference.predicateDigest } : {}),
        },
      });
    });
    return view(row, name);
  }

  function view(row: Database['app_versions'], app: string) {
    const scan = JSON.parse(row.scan) as {
      passed: boolean;
      findings: unknown[];
      snapshot: { digest: string };
    };
    return {
      app,
      version: row.version,
      digest: row.digest,
      publishedBy: row.created_by,
      publishedAt: row.created_at,
      scan: { passed: scan.passed, findings: scan.findings, advisories: scan.snapshot.digest },
      provenance: JSON.parse(row.provenance) as unknown,
      bundles: JSON.parse(row.bundles) as Record<string, unknown>,
    };
  }

  async function list(principal: Principal, name: string) {
    const app = await deps.catalog.get(principal, name);
    const rows = await db
      .selectFrom('app_versions')
      .selectAll()
      .where('app_id', '=', app.id)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => {
      const { bundles: _b, provenance, ...rest } = view(r, name);
      const params = (
        provenance as { predicate?: { buildDefinition?: { internalParameters?: Record<string, unknown> } } }
      ).predicate?.buildDefinition?.internalParameters;
      return {
        ...rest,
        // The agent session that built it, when an agent did (the record itself is the agentSession bundle).
        agentSession: (params?.agentSession as AgentSessionReference | undefined) ?? null,
        sbomComponents: ((JSON.parse(r.sbom) as { components?: unknown[] }).components ?? []).length,
      };
    });
  }

  async function get(principal: Principal, name: string, version: string) {
    const app = await deps.catalog.get(principal, name);
    const row = await db
      .selectFrom('app_versions')
      .selectAll()
      .where('app_id', '=', app.id)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!row) throw notFound(`version ${version} of ${name}`);
    return { ...view(row, name), sbom: JSON.parse(row.sbom) as unknown };
  }

  async function artifact(principal: Principal, name: string, version: string): Promise<Buffer> {
    const v = await get(principal, name, version);
    return readBlob(v.digest, `${name}@${version}`);
  }

  /** For the runtime: a stored version by app id, without a caller (recovery after a restart). */
  async function stored(appId: string, version: string) {
    const row = await db
      .selectFrom('app_versions')
      .selectAll()
      .where('app_id', '=', appId)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!row) throw notFound(`version ${version}`);
    const bytes = await readBlob(row.digest, `version ${version}`, true);
    return {
      digest: row.digest,
      bundles: JSON.parse(row.bundles) as Record<string, unknown>,
      bytes,
      sbom: JSON.parse(row.sbom) as unknown,
    };
  }

  /**
   * A stored version checked as a third party would, with the public key its bundles name (current or
   * retired): the artifact signature and every attestation. Null when no key of this platform signed it.
   */
  async function verifyStored(appId: string, version: string, attestations: 'all' | 'provenance' = 'all') {
    let s: Awaited<ReturnType<typeof stored>>;
    try {
      s = await stored(appId, version);
    } catch (error) {
      if (!(error instanceof BlobMissingError && error.changed)) throw error;
      // Bytes that no longer hash to their digest are what the signature check exists to catch: say so.
      const checks = [{ check: 'artifact signature', ok: false, detail: error.message }];
      return { stored: null, key: null, report: { ok: false, checks } };
    }
    const hint = (
      s.bundles.artifact as { verificationMaterial?: { publicKey?: { hint?: string } } } | undefined
    )?.verificationMaterial?.publicKey?.hint;
    const publicKeyPem = hint ? await keys.publicKeyOf(hint) : null;
    if (!publicKeyPem) return { stored: s, key: hint ?? null, report: null };
    const bundles = s.bundles as { artifact: unknown; provenance?: unknown; sbom?: unknown; scan?: unknown };
    const report = verifyArtifact({
      artifact: s.bytes,
      publicKeyPem,
      bundles:
        attestations === 'all' ? bundles : { artifact: bundles.artifact, provenance: bundles.provenance },
    });
    return { stored: s, key: hint ?? null, report };
  }

  /** For people: what a check of the version with standard tools would say. */
  async function verification(principal: Principal, name: string, version: string) {
    const app = await deps.catalog.get(principal, name);
    const { key, report } = await verifyStored(app.id, version);
    return {
      app: name,
      version,
      key,
      ok: report?.ok ?? false,
      checks: report?.checks ?? [
        { check: 'key', ok: false, detail: `no key of this platform signed it (${key ?? 'unnamed'})` },
      ],
    };
  }

  return { publish, list, get, artifact, stored, verifyStored, verification };
}

export type VersionsService = ReturnType<typeof createVersionsService>;
