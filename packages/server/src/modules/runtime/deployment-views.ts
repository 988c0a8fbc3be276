import { AppError, forbidden } from '../../errors.ts';
import { nowIso } from '../../ids.ts';
import type { AuditContext } from '../audit/audit-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { ClusterRoutes } from './cluster-routes.ts';
import { type DeploymentDeps, type Env, type Instance, siteOf, type Target } from './deployment-types.ts';
import { renderKubernetes } from './kubernetes-manifests.ts';

/**
 * What the deployment service shows without starting anything: the Kubernetes objects of a version (the
 * GitOps driver), an environment's logs, and an app's deployment history.
 */
export function createDeploymentViews(
  deps: DeploymentDeps,
  state: {
    instances: Map<string, Instance>;
    targetFor: (principal: Principal, name: string) => Promise<Target>;
    admit: (target: Target, version: string, ctx: AuditContext) => Promise<{ digest: string }>;
    /** The gateway's identity key, whose public half the app checks requests with. */
    identityPublicKey: () => string;
    clusterRoutes: Pick<ClusterRoutes, 'record'>;
  },
) {
  const { db, audit } = deps;
  const { instances, targetFor, admit } = state;

  /**
   * The Kubernetes driver: the same checks as a deploy (owner or admin, approved, not held, signature,
   * provenance, admission), then the objects for a GitOps directory instead of a sandbox here. Audited as
   * `deployment.rendered`; whether the cluster applied them is Argo CD's or Flux's to report.
   */
  async function renderForKubernetes(
    principal: Principal,
    name: string,
    version: string,
    ctx: AuditContext,
    env: Env = 'live',
  ) {
    if (!deps.kubernetes)
      throw new AppError('conflict', 'this platform has no Kubernetes settings (see docs/runtime.md)');
    if (!deps.kubernetes.runtimeImage)
      throw new AppError(
        'conflict',
        'the Kubernetes driver needs the image apps run on, pinned by digest: an admin sets MICROAPP_KUBERNETES_RUNTIME_IMAGE (see docs/runtime.md, "The Kubernetes driver")',
      );
    const target = await targetFor(principal, name);
    await deps.versions.get(principal, name, version);
    const stored = await admit(target, version, ctx);
    const site = siteOf(name, env);
    const files = renderKubernetes(
      {
        site,
        name,
        env,
        version,
        digest: stored.digest,
        tier: target.tier,
        owner: target.owner,
        manifest: target.manifest,
        identityPublicKey: state.identityPublicKey(),
      },
      deps.kubernetes,
    );
    await db.transaction().execute(async (trx) => {
      // Where the gateway forwards this app's requests, once the cluster runs what was rendered.
      await state.clusterRoutes.record(trx, {
        appId: target.appId,
        env,
        version,
        digest: stored.digest,
        by: ctx.actor,
        at: nowIso(),
      });
      await audit.record(trx, ctx, {
        action: 'deployment.rendered',
        targetType: 'app',
        target: name,
        summary: {
          driver: 'kubernetes',
          version,
          env,
          digest: stored.digest,
          namespace: deps.kubernetes!.namespace,
          files: files.map((f) => f.path),
        },
      });
    });
    return {
      app: name,
      version,
      env,
      digest: stored.digest,
      namespace: deps.kubernetes.namespace,
      files: files.map(({ path, content }) => ({ path, content })),
    };
  }

  /**
   * What an environment's instances printed, redacted of the app's secrets: the newest `limit` lines, or
   * those after `after` (for `--follow`). Only the owner and admins read it: an app may print what it should not.
   */
  async function logs(
    principal: Principal,
    name: string,
    options: { env?: Env; after?: number | null; limit?: number } = {},
  ) {
    const app = await deps.catalog.get(principal, name);
    if (app.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden(`only the owner of ${name} or an admin can read its logs`);
    const env = options.env ?? 'live';
    const inst = instances.get(siteOf(name, env));
    const items = deps.appLogs
      ? await deps.appLogs.read(app.id, env, options.after ?? null, options.limit ?? 500)
      : [];
    return {
      env,
      running: Boolean(inst),
      version: inst?.version ?? null,
      deploymentId: inst?.deploymentId ?? null,
      items,
      // Where the next read starts; unchanged when nothing new was printed.
      next: items.at(-1)?.seq ?? options.after ?? null,
    };
  }

  /** Every deployment of an app, newest first: which version ran where, who started it, until when. */
  async function history(principal: Principal, name: string) {
    const app = await deps.catalog.get(principal, name);
    const rows = await db
      .selectFrom('deployments')
      .selectAll()
      .where('app_id', '=', app.id)
      .orderBy('started_at', 'desc')
      .limit(200)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      version: r.version,
      env: r.env as Env,
      state: r.state,
      digest: r.digest,
      startedBy: r.started_by,
      startedAt: r.started_at,
      stoppedAt: r.stopped_at,
      url:
        r.state === 'running' || r.state === 'idle'
          ? (deps.appUrl?.(siteOf(name, r.env as Env)) ?? null)
          : null,
    }));
  }

  return { renderForKubernetes, logs, history };
}
