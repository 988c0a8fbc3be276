import type { Transaction } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden } from '../../errors.ts';
import { nowIso } from '../../ids.ts';
import type { AuditContext } from '../audit/audit-service.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { createClusterRoutes } from './cluster-routes.ts';
import type { DeploymentDeps, Env, Instance, Target } from './deployment-types.ts';
import { envs, parseSite, siteOf } from './deployment-types.ts';
import { createDeploymentViews } from './deployment-views.ts';
import { createIdentitySigner } from './identity-key.ts';
import { createLauncher } from './launcher.ts';
import { createSupervisor } from './supervisor.ts';

export { type Env, envs, parseSite, restartPolicy, siteOf } from './deployment-types.ts';

/**
 * Runs signed versions in sandboxes and keeps them running: verify, admit, unpack, start, switch traffic
 * only once the new instance answers (zero-downtime upgrades), restart crashed instances with backoff,
 * roll back, and bring running apps back after the server restarts.
 */
export function createDeploymentService(deps: DeploymentDeps) {
  const { db, audit } = deps;
  const instances = new Map<string, Instance>();

  /** What an instance held outside its sandbox: its broker socket and tunnels, and its database roles. */
  async function release(deploymentId: string, reason: string) {
    await deps.egress?.close(deploymentId);
    await deps.credentials?.revoke(deploymentId, reason).catch(() => {});
  }
  const waking = new Map<string, Promise<Instance | undefined>>();
  const identity = createIdentitySigner(deps.identityKey);
  const clusterRoutes = createClusterRoutes({
    db,
    namespace: deps.kubernetes?.namespace ?? 'microapps',
    serviceUrl: deps.kubernetes?.serviceUrl ?? null,
  });
  const { supervise, settle: settleRestarts } = createSupervisor(deps, instances, release);
  const {
    admit,
    launch,
    close: closeLauncher,
  } = createLauncher(deps, { instances, release, supervise, identity });

  async function targetFor(principal: Principal, name: string): Promise<Target> {
    const app = await deps.catalog.get(principal, name);
    if (app.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden(`only the owner of ${name} or an admin can deploy or stop it`);
    if (app.state !== 'approved')
      throw new AppError('conflict', `${name} is ${app.state.replace('_', ' ')}; only approved apps run`);
    const held = await deps.hold?.(app.id);
    if (held) throw new AppError('conflict', held.message);
    return { appId: app.id, name, owner: app.owner, tier: app.tier, manifest: app.manifest };
  }

  const { renderForKubernetes, logs, history } = createDeploymentViews(deps, {
    instances,
    targetFor,
    admit,
    identityPublicKey: () => identity.publicPem(),
    clusterRoutes,
  });

  async function deploy(
    principal: Principal,
    name: string,
    version: string,
    ctx: AuditContext,
    env: Env = 'live',
  ) {
    const target = await targetFor(principal, name);
    await deps.versions.get(principal, name, version);
    return launch(target, version, ctx, 'deployment.started', env);
  }

  /**
   * Runs in live a version that was tried in preview. Only published versions exist, and a version is
   * published only when its manifest matched an approved registration; the app must be approved now too
   * (a risk-relevant change sends it back to review), so a promotion never outruns the approvals.
   */
  async function promote(principal: Principal, name: string, version: string, ctx: AuditContext) {
    const target = await targetFor(principal, name);
    await deps.versions.get(principal, name, version);
    const tried = await db
      .selectFrom('deployments')
      .select('id')
      .where('app_id', '=', target.appId)
      .where('env', '=', 'preview')
      .where('version', '=', version)
      .limit(1)
      .executeTakeFirst();
    if (!tried)
      throw new AppError(
        'conflict',
        `${name}@${version} has not run in preview; try it there first: \`microapp deploy ${name}@${version} --env preview\``,
      );
    return launch(target, version, ctx, 'deployment.promoted', 'live');
  }

  /** Runs the version that ran before the current one, in one environment. */
  async function rollback(principal: Principal, name: string, ctx: AuditContext, env: Env = 'live') {
    const target = await targetFor(principal, name);
    const current = instances.get(siteOf(name, env))?.version;
    const previous = await db
      .selectFrom('deployments')
      .select('version')
      .where('app_id', '=', target.appId)
      .where('env', '=', env)
      .$if(current !== undefined, (q) => q.where('version', '!=', current!))
      .orderBy('started_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!previous) throw new AppError('conflict', `${name} has no earlier version in ${env} to roll back to`);
    return launch(target, previous.version, ctx, 'deployment.rolled_back', env);
  }

  /** Stops the app's instances, in every environment; false when none was running. */
  async function stopInstance(name: string, reason = 'the app was stopped') {
    let stopped = false;
    for (const env of envs) {
      const site = siteOf(name, env);
      const inst = instances.get(site);
      if (!inst) continue;
      inst.stopping = true;
      instances.delete(site);
      await inst.process.stop();
      await release(inst.deploymentId, reason);
      stopped = true;
    }
    return stopped;
  }

  async function stop(principal: Principal, name: string, ctx: AuditContext) {
    const app = await deps.catalog.get(principal, name);
    if (app.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden(`only the owner of ${name} or an admin can deploy or stop it`);
    if (!(await stopInstance(name))) throw new AppError('conflict', `${name} is not running`);
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('deployments')
        .set({ state: 'stopped', stopped_at: nowIso() })
        .where('app_id', '=', app.id)
        .where('state', '=', 'running')
        .execute();
      await audit.record(trx, ctx, { action: 'deployment.stopped', targetType: 'app', target: name });
    });
    return { app: name, state: 'stopped' };
  }

  /**
   * For the lifecycle, inside its transaction: moves the app's current deployment to `idle` (stopped
   * for now; a renewal lets the next request start it) or `stopped` (decommissioned). Returns the
   * deployment that was current, to resume later. The instance itself is stopped with `stopInstance`
   * once the transaction has committed.
   */
  async function halt(trx: Transaction<Database>, appId: string, state: 'idle' | 'stopped') {
    const current = await trx
      .selectFrom('deployments')
      .select('id')
      .where('app_id', '=', appId)
      .where('env', '=', 'live')
      .where('state', 'in', ['running', 'idle'])
      .orderBy('started_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    await trx
      .updateTable('deployments')
      .set({ state, ...(state === 'stopped' ? { stopped_at: nowIso() } : {}) })
      .where('app_id', '=', appId)
      .where('state', 'in', ['running', 'idle'])
      .execute();
    return current?.id ?? null;
  }

  /** After a restore: the deployment that was current becomes `idle`, so the next request starts it (verified again). */
  async function resume(trx: Transaction<Database>, deploymentId: string) {
    await trx
      .updateTable('deployments')
      .set({ state: 'idle', stopped_at: null })
      .where('id', '=', deploymentId)
      .where('state', '=', 'stopped')
      .execute();
  }

  /** Deployments with the app fields a start needs. */
  function deployedApps() {
    return db
      .selectFrom('deployments')
      .innerJoin('apps', 'apps.id', 'deployments.app_id')
      .select([
        'deployments.version',
        'deployments.env',
        'apps.id',
        'apps.name',
        'apps.owner',
        'apps.tier',
        'apps.manifest',
        'apps.state',
        'deployments.replica_id',
        'deployments.id as deployment_id',
      ]);
  }

  /** Takes a deployment over from the replica recorded on it; false when another replica got there first. */
  async function claim(deploymentId: string, from: string | null) {
    const r = await db
      .updateTable('deployments')
      .set({ replica_id: deps.lease!.id })
      .where('id', '=', deploymentId)
      .where('state', '=', 'running')
      .where((eb) => (from === null ? eb('replica_id', 'is', null) : eb('replica_id', '=', from)))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * After a server restart: starts again every deployment recorded as running here (each verified again),
   * and those of a replica whose lease ran out. Another live replica's apps are left to it.
   */
  async function recover(
    which: 'mine-and-dead' | 'dead' = 'mine-and-dead',
  ): Promise<{ recovered: string[]; failed: string[] }> {
    const rows = await deployedApps().where('deployments.state', '=', 'running').execute();
    const recovered: string[] = [];
    const failed: string[] = [];
    for (const r of rows) {
      if (instances.has(siteOf(r.name, r.env as Env)) || r.state !== 'approved') continue;
      if (deps.lease && !(await deps.lease.mayTakeOver(r.replica_id))) continue;
      // Its own apps a replica brings back only when it starts: later, one of them not running is being
      // stopped or replaced (a decommission sealing its data, say), not lost.
      if (which === 'dead' && deps.lease && r.replica_id === deps.lease.id) continue;
      // Another replica's app: claimed first, so when two replicas find the same dead one, one starts it.
      if (deps.lease && r.replica_id !== deps.lease.id && !(await claim(r.deployment_id, r.replica_id)))
        continue;
      try {
        await launch(
          {
            appId: r.id,
            name: r.name,
            owner: r.owner,
            tier: r.tier,
            manifest: JSON.parse(r.manifest) as Manifest,
          },
          r.version,
          { actor: 'system:recovery' },
          'deployment.recovered',
          r.env as Env,
        );
        recovered.push(r.name);
      } catch {
        failed.push(r.name);
      }
    }
    return { recovered, failed };
  }

  /** Scale to zero: stops instances idle for longer than idleMs; their next request starts them again. */
  async function sweepIdle() {
    if (!deps.idleMs) return;
    const now = Date.now();
    for (const inst of [...instances.values()]) {
      if (inst.inflight > 0 || now - inst.lastRequestAt < deps.idleMs || instances.get(inst.site) !== inst)
        continue;
      inst.stopping = true;
      instances.delete(inst.site);
      await inst.process.stop();
      await release(inst.deploymentId, 'scaled to zero after no requests');
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('deployments')
          .set({ state: 'idle' })
          .where('id', '=', inst.deploymentId)
          .execute();
        await audit.record(
          trx,
          { actor: 'system:scaler' },
          {
            action: 'deployment.scaled_to_zero',
            targetType: 'app',
            target: inst.app,
            summary: { version: inst.version, idleSeconds: Math.round((now - inst.lastRequestAt) / 1000) },
          },
        );
      });
    }
  }
  const sweeper = deps.idleMs
    ? setInterval(() => void sweepIdle().catch(() => {}), Math.min(deps.idleMs, 10_000))
    : null;
  sweeper?.unref();

  /** The instance for a request: running, or started again when it was scaled to zero. */
  async function instanceFor(site: string): Promise<Instance | undefined> {
    const running = instanceOf(site);
    if (running) return running;
    const { name, env } = parseSite(site);
    // One cold start per app and environment, however many requests arrive meanwhile.
    let pending = waking.get(site);
    if (!pending) {
      pending = (async () => {
        const row = await deployedApps()
          .where('apps.name', '=', name)
          .where('deployments.env', '=', env)
          .where('deployments.state', '=', 'idle')
          .orderBy('deployments.started_at', 'desc')
          .limit(1)
          .executeTakeFirst();
        if (row?.state !== 'approved') return undefined;
        const target = {
          appId: row.id,
          name: row.name,
          owner: row.owner,
          tier: row.tier,
          manifest: JSON.parse(row.manifest) as Manifest,
        };
        await launch(target, row.version, { actor: 'system:scaler' }, 'deployment.woken', env);
        return instanceOf(site);
      })().finally(() => waking.delete(site));
      waking.set(site, pending);
    }
    return pending;
  }

  /** The running instance of an app, for the gateway. */
  function instanceOf(site: string): Instance | undefined {
    const inst = instances.get(site);
    return inst && inst.process.child.exitCode === null && inst.process.child.signalCode === null
      ? inst
      : undefined;
  }

  /** Stops every instance without recording it: they come back with `recover` when the server starts again. */
  async function shutdown() {
    if (sweeper) clearInterval(sweeper);
    await closeLauncher();
    for (const inst of instances.values()) inst.stopping = true;
    await settleRestarts();
    await Promise.all([...instances.values()].map((i) => i.process.stop()));
    for (const i of instances.values())
      await deps.credentials?.revoke(i.deploymentId, 'the server stopped').catch(() => {});
    instances.clear();
    await deps.egress?.closeAll();
  }

  /** The running instances' root processes, for per-app memory and CPU metrics. */
  function running() {
    return [...instances.values()]
      .filter((i) => i.process.child.pid !== undefined && i.process.child.exitCode === null)
      .map((i) => ({ app: i.site, pid: i.process.child.pid! }));
  }

  return {
    running,
    deploy,
    renderForKubernetes,
    promote,
    history,
    logs,
    rollback,
    stop,
    halt,
    resume,
    stopInstance,
    recover,
    instanceOf,
    instanceFor,
    sweepIdle,
    identityToken: identity.token,
    /** The app's environment on the cluster (Kubernetes driver), for the gateway; null when it is not. */
    clusterInstance: clusterRoutes.find,
    identityPublicKey: async () => identity.publicPem(),
    shutdown,
  };
}

export type DeploymentService = ReturnType<typeof createDeploymentService>;
