import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { Kysely, Transaction } from 'kysely';
import { x } from 'tar';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden } from '../../errors.ts';
import { newId, nowIso } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { DatabaseCredentials } from '../connectors/database-credentials.ts';
import type { BrokeredApp, EgressBroker } from '../egress/egress-broker.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import type { SecretService } from '../secrets/secret-service.ts';
import { readArtifact, type UnpackLimits } from '../signing/artifact-contents.ts';
import type { VersionsService } from '../signing/versions-service.ts';
import type { AppLogs } from './app-logs.ts';
import { type CgroupDriver, defaultLimits } from './cgroups.ts';
import { codeImageOf, prepareVolume, volumeOf } from './data-volume.ts';
import { canDropToHostUser, defaultSandboxUidBase, hostUidFor, socketRoot } from './host-user.ts';
import type { IdentityKey } from './identity-key.ts';
import { type KubernetesSettings, renderKubernetes } from './kubernetes-manifests.ts';
import { type SandboxedProcess, type SandboxSpec, startSandboxed } from './sandbox.ts';

/** Where a version runs: `preview` for the owner and reviewers, `live` for the app's audience. */
export type Env = 'live' | 'preview';
export const envs: Env[] = ['live', 'preview'];

/** The host label and instance key of an app's environment: `NAME` for live, `NAME--preview` for preview. */
export const siteOf = (name: string, env: Env) => (env === 'live' ? name : `${name}--preview`);
export function parseSite(site: string): { name: string; env: Env } {
  return site.endsWith('--preview')
    ? { name: site.slice(0, -'--preview'.length), env: 'preview' }
    : { name: site, env: 'live' };
}

type Instance = {
  deploymentId: string;
  app: string;
  /** The instance key and host label (see `siteOf`). */
  site: string;
  env: Env;
  appId: string;
  version: string;
  process: SandboxedProcess;
  spec: SandboxSpec;
  stopping: boolean;
  crashes: number[];
  /** Requests the gateway is forwarding to this instance; an upgrade drains them before stopping it. */
  inflight: number;
  lastRequestAt: number;
};

type Target = { appId: string; name: string; owner: string; tier: string; manifest: Manifest };

/** Restarts after a crash wait 0.5 s, 1 s, 2 s … up to 30 s; more than five crashes in five minutes is a failure. */
export const restartPolicy = { firstDelayMs: 500, maxDelayMs: 30_000, maxCrashes: 5, windowMs: 5 * 60_000 };

/**
 * Runs signed versions in sandboxes and keeps them running: verify, admit, unpack, start, switch traffic
 * only once the new instance answers (zero-downtime upgrades), restart crashed instances with backoff,
 * roll back, and bring running apps back after the server restarts.
 */
export function createDeploymentService(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  versions: Pick<VersionsService, 'get' | 'verifyStored'>;
  secrets: Pick<SecretService, 'valuesFor'>;
  engine: Pick<PolicyEngine, 'admission' | 'log'> | null;
  runtimeDir: string;
  /** How far an artifact may expand when it is unpacked to run. */
  unpackLimits?: UnpackLimits;
  /** The first of the host uids apps run as (each app gets one of the 60,000 after it). */
  sandboxUidBase?: number;
  /** Each app's data quota in MB (a filesystem of its own); 0 or absent: no quota. */
  dataVolumeMb?: number;
  /** Stop apps after this long without a request; 0 keeps them running. */
  idleMs?: number;
  /** Why an app may not run now (stopped for inactivity, decommissioned), or null. */
  hold?: (appId: string) => Promise<{ message: string } | null>;
  /** Tells an owner when the supervisor gives up on a crashing app. */
  notifications?: Pick<NotificationService, 'notify'>;
  /** Counts crashes for metrics: `restarted` or `gave_up`. */
  onCrash?: (app: string, outcome: 'restarted' | 'gave_up') => void;
  /** Counts instances the kernel killed for going over their memory limit. */
  onOutOfMemory?: (app: string) => void;
  /** Where a site (an app, or `NAME--preview`) answers. */
  appUrl?: (site: string) => string;
  /** The egress broker: each instance's only way out. */
  egress?: Pick<EgressBroker, 'open' | 'close' | 'closeAll'>;
  /** Where instances get their memory, CPU and process limits; null runs them unlimited (and says so). */
  cgroups?: CgroupDriver | null;
  /** Where instances' output is stored, redacted of their secrets. */
  appLogs?: Pick<AppLogs, 'writer' | 'read'>;
  /** Where the Kubernetes driver's objects go; without it the driver is off. */
  kubernetes?: KubernetesSettings;
  /** Per-instance database roles for the app's PostgreSQL connectors, dropped when the instance stops. */
  credentials?: Pick<DatabaseCredentials, 'issue' | 'revoke'>;
  /** The key identities are signed with; the same on every replica and after a restart (identity-key.ts). */
  identityKey?: IdentityKey;
}) {
  const { db, audit } = deps;
  const instances = new Map<string, Instance>();

  /** What an instance held outside its sandbox: its broker socket and tunnels, and its database roles. */
  async function release(deploymentId: string, reason: string) {
    await deps.egress?.close(deploymentId);
    await deps.credentials?.revoke(deploymentId, reason).catch(() => {});
  }
  const waking = new Map<string, Promise<Instance | undefined>>();
  let identityKey: IdentityKey | null = deps.identityKey ?? null;

  /** The gateway's identity signing key: the one given (derived from the KEK), or a key of this process. */
  async function identity(): Promise<IdentityKey> {
    if (!identityKey) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      identityKey = { privateKey, publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
    }
    return identityKey;
  }

  /** A short-lived signed statement of who is calling, for the app (X-Microapp-Identity). */
  async function identityToken(
    user: { email: string; name: string; department: string | null; roles: string[] },
    app: string,
  ) {
    const { privateKey } = await identity();
    return new SignJWT({ email: user.email, name: user.name, department: user.department, roles: user.roles })
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject(user.email)
      .setAudience(app)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(privateKey);
  }

  function answers(socketPath: string): Promise<boolean> {
    return new Promise((resolve) => {
      const req = request({ socketPath, path: '/', method: 'GET', timeout: 2000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => {
        req.destroy();
        resolve(false);
      });
      req.end();
    });
  }

  async function healthy(p: SandboxedProcess): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) break;
      if (await answers(p.socketPath)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    await p.stop('SIGKILL');
    // The last lines it printed, secrets redacted: enough to name a missing module or a thrown error.
    const printed = p.output().trimEnd().split('\n').slice(-20).join('\n').slice(-2000);
    throw new AppError(
      'unavailable',
      `the app did not start; ${printed ? `the last lines it printed (its secrets redacted):\n${printed}` : 'it printed nothing'}`,
    );
  }

  function supervise(inst: Instance) {
    const proc = inst.process;
    proc.child.once('exit', (code, signal) => {
      if (inst.stopping || instances.get(inst.site) !== inst) return;
      const outOfMemory = proc.outOfMemory();
      if (outOfMemory) {
        deps.onOutOfMemory?.(inst.app);
        void db.transaction().execute((trx) =>
          audit.record(
            trx,
            { actor: 'system:supervisor' },
            {
              action: 'deployment.out_of_memory',
              targetType: 'app',
              target: inst.app,
              reason: `went over its memory limit of ${inst.spec.limits?.memoryMb} MB and was killed by the kernel`,
              summary: {
                version: inst.version,
                deploymentId: inst.deploymentId,
                memoryMb: inst.spec.limits?.memoryMb,
              },
            },
          ),
        );
      }
      const now = Date.now();
      inst.crashes = [...inst.crashes.filter((t) => now - t < restartPolicy.windowMs), now];
      const attempt = inst.crashes.length;
      const ctx = { actor: 'system:supervisor' };
      if (attempt > restartPolicy.maxCrashes) {
        deps.onCrash?.(inst.app, 'gave_up');
        instances.delete(inst.site);
        void release(inst.deploymentId, 'the instance kept crashing and was stopped');
        void db.transaction().execute(async (trx) => {
          await trx
            .updateTable('deployments')
            .set({ state: 'failed', stopped_at: nowIso() })
            .where('id', '=', inst.deploymentId)
            .execute();
          await audit.record(trx, ctx, {
            action: 'deployment.failed',
            targetType: 'app',
            target: inst.app,
            summary: { version: inst.version, crashes: attempt, exitCode: code, signal, outOfMemory },
          });
          // The app's output is not quoted: it may hold what the app should not have printed.
          const owner = inst.spec.env?.MICROAPP_OWNER;
          if (owner)
            await deps.notifications?.notify(trx, {
              recipient: owner,
              app: inst.app,
              kind: 'crash_loop',
              subject: `${inst.app} keeps crashing and was stopped`,
              body: `${inst.app}@${inst.version} crashed ${attempt} times within ${restartPolicy.windowMs / 60_000} minutes (last exit ${signal ?? `code ${code}`}); the platform stopped restarting it. Roll back to the version that ran before, or fix it and deploy again.`,
              action: `microapp rollback ${inst.app}`,
              dedupeKey: `crash:${inst.deploymentId}`,
            });
        });
        return;
      }
      deps.onCrash?.(inst.app, 'restarted');
      const delay = Math.min(restartPolicy.maxDelayMs, restartPolicy.firstDelayMs * 2 ** (attempt - 1));
      setTimeout(async () => {
        if (inst.stopping || instances.get(inst.site) !== inst) return;
        const p = startSandboxed(inst.spec, deps.cgroups ?? null);
        try {
          await healthy(p);
        } catch {
          inst.process = p;
          supervise(inst);
          return;
        }
        inst.process = p;
        supervise(inst);
        await db.transaction().execute((trx) =>
          audit.record(trx, ctx, {
            action: 'deployment.restarted',
            targetType: 'app',
            target: inst.app,
            summary: { version: inst.version, attempt, exitCode: code, signal, outOfMemory },
          }),
        );
      }, delay).unref();
    });
  }

  /** The stored artifact of a version, once its signature and provenance verify and admission allows it. */
  async function admit(target: Target, version: string, ctx: AuditContext) {
    // The key that signed it, current or retired since: a rotation must not strand running versions. Only
    // this platform's key signs provenance, so its signature names the builder; the builder id (which
    // follows the public URL) is for third parties (`microapp verify --builder`).
    const { stored, key, report } = await deps.versions.verifyStored(target.appId, version, 'provenance');
    if (!report)
      throw new AppError(
        'policy_denied',
        `${target.name}@${version} was not signed by a key of this platform (key ${key ?? 'unnamed'})`,
      );
    if (!report.ok)
      throw new AppError(
        'policy_denied',
        `${target.name}@${version} does not verify: ${report.checks
          .filter((c) => !c.ok)
          .map((c) => `${c.check}: ${c.detail}`)
          .join('; ')}`,
      );
    if (deps.engine) {
      const hosts = target.manifest.integrations?.egress ?? [];
      for (const host of hosts.length ? hosts : [null]) {
        const input = {
          request: { method: 'deploy', ...(host ? { host } : {}) },
          manifest: target.manifest,
          app: { name: target.name, tier: target.tier },
        };
        const checked = await deps.engine.admission(input);
        await deps.engine.log(db, checked.decisions, target.name, ctx.requestId);
        if (checked.denials.length)
          throw new AppError(
            'policy_denied',
            `deploy denied: ${checked.denials.map((d) => d.message).join('; ')}`,
          );
      }
    }
    return stored;
  }

  /** Verifies, admits, unpacks and starts a version, then switches traffic to it and stops the old one. */
  async function launch(
    target: Target,
    version: string,
    ctx: AuditContext,
    action: string,
    env: Env = 'live',
  ) {
    const site = siteOf(target.name, env);
    const stored = await admit(target, version, ctx);
    const codeDir = join(
      deps.runtimeDir,
      'code',
      target.name,
      stored.digest.slice('sha256:'.length, 'sha256:'.length + 16),
    );
    if (!existsSync(join(codeDir, '.unpacked'))) {
      // Checked before a byte is written: an artifact that would expand past the limits, or holds a link
      // out of its folder, is refused here even though it is signed (it may predate the publish check).
      await readArtifact(stored.bytes, deps.unpackLimits);
      rmSync(codeDir, { recursive: true, force: true });
      mkdirSync(codeDir, { recursive: true, mode: 0o755 });
      const archive = `${codeDir}.tar.gz`;
      writeFileSync(archive, stored.bytes);
      await x({ file: archive, cwd: codeDir, strict: true, preservePaths: false });
      rmSync(archive, { force: true });
      writeFileSync(join(codeDir, '.unpacked'), stored.digest);
    }
    const id = newId('deployment');
    // Who the instance is to the broker and to its database connectors.
    const brokered: BrokeredApp = {
      name: target.name,
      appId: target.appId,
      version,
      manifest: target.manifest,
      department: target.manifest.audience?.department ?? null,
      tier: target.tier,
      owner: target.owner,
    };
    const egressDir = deps.egress ? await deps.egress.open(id, brokered) : undefined;
    let credentials: Record<string, string> = {};
    try {
      if (deps.egress && deps.credentials) credentials = await deps.credentials.issue(id, brokered);
    } catch (e) {
      await release(id, 'the instance did not start');
      throw e;
    }
    const secretValues = { ...(await deps.secrets.valuesFor(target.appId)), ...credentials };
    const spec: SandboxSpec = {
      appDir: codeDir,
      // Each environment has its own data: a preview never reads or writes what live users entered.
      dataDir: join(deps.runtimeDir, 'data', site),
      // Its data on a filesystem of its own, whose size is its quota (data-volume.ts).
      ...(deps.dataVolumeMb
        ? { dataVolume: volumeOf(join(deps.runtimeDir, 'data', site), deps.dataVolumeMb) }
        : {}),
      // As root, sockets live under a fixed folder with a random name each: the sandbox's mount table then
      // names neither the platform's data folder nor the deployment.
      socketDir: canDropToHostUser()
        ? join(socketRoot, randomBytes(12).toString('hex'))
        : join(deps.runtimeDir, 'sockets', target.name, id),
      name: id,
      entry: target.manifest.runtime?.entry ?? 'server.js',
      // The app's secrets, and a connection URL per database connector (`connector.ID`).
      secrets: secretValues,
      ...(deps.appLogs
        ? {
            log: deps.appLogs.writer({
              appId: target.appId,
              env,
              deploymentId: id,
              version,
              secrets: secretValues,
            }),
          }
        : {}),
      env: {
        MICROAPP_IDENTITY_PUBLIC_KEY: (await identity()).publicPem,
        MICROAPP_OWNER: target.owner,
        MICROAPP_APP: target.name,
      },
      memoryMb: target.manifest.runtime?.memoryMb ?? defaultLimits.memoryMb,
      // An unprivileged host user of the app's own owns what it writes (see host-user.ts).
      hostUid: hostUidFor(target.appId, deps.sandboxUidBase ?? defaultSandboxUidBase),
      ...(egressDir ? { egressDir } : {}),
      limits: {
        memoryMb: target.manifest.runtime?.memoryMb ?? defaultLimits.memoryMb,
        cpu: target.manifest.runtime?.cpu ?? defaultLimits.cpu,
        pids: defaultLimits.pids,
      },
    };
    // As root: the code's image (once per version) and the data volume, made off the event loop.
    if (canDropToHostUser()) {
      spec.codeImage = await codeImageOf(codeDir);
      if (spec.dataVolume && spec.hostUid) await prepareVolume(spec.dataVolume, spec.dataDir, spec.hostUid);
    }
    const p = startSandboxed(spec, deps.cgroups ?? null);
    try {
      await healthy(p);
    } catch (e) {
      await release(id, 'the instance did not start');
      throw e;
    }
    // Traffic moves only now that the new instance answers; the old one stops after the switch.
    const previous = instances.get(site);
    const inst: Instance = {
      deploymentId: id,
      app: target.name,
      site,
      env,
      appId: target.appId,
      version,
      process: p,
      spec,
      stopping: false,
      crashes: [],
      inflight: 0,
      lastRequestAt: Date.now(),
    };
    instances.set(site, inst);
    supervise(inst);
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('deployments')
        .set({ state: 'stopped', stopped_at: nowIso() })
        .where('app_id', '=', target.appId)
        .where('env', '=', env)
        .where('state', '=', 'running')
        .execute();
      await trx
        .insertInto('deployments')
        .values({
          id,
          app_id: target.appId,
          env,
          version,
          digest: stored.digest,
          state: 'running',
          started_by: ctx.actor,
          started_at: nowIso(),
          stopped_at: null,
        })
        .execute();
      await audit.record(trx, ctx, {
        action,
        targetType: 'app',
        target: target.name,
        summary: {
          deploymentId: id,
          version,
          env,
          digest: stored.digest,
          ...(previous ? { previousVersion: previous.version } : {}),
        },
      });
    });
    if (previous) {
      previous.stopping = true;
      // Let requests already on their way to the old instance finish (at most 10 s).
      for (let i = 0; i < 100 && previous.inflight > 0; i++) await new Promise((r) => setTimeout(r, 100));
      await previous.process.stop();
      await release(previous.deploymentId, `replaced by ${version}`);
      rmSync(previous.spec.socketDir, { recursive: true, force: true });
    }
    return {
      id,
      app: target.name,
      version,
      env,
      digest: stored.digest,
      state: 'running',
      // What the kernel enforces; null when this host gives the platform no cgroups (see docs/runtime.md).
      limits: p.limits,
      url: deps.appUrl?.(site) ?? null,
    };
  }

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
      },
      deps.kubernetes,
    );
    await db.transaction().execute((trx) =>
      audit.record(trx, ctx, {
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
      }),
    );
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
      ]);
  }

  /** After a server restart: starts again every deployment recorded as running (each verified again). */
  async function recover(): Promise<{ recovered: string[]; failed: string[] }> {
    const rows = await deployedApps().where('deployments.state', '=', 'running').execute();
    const recovered: string[] = [];
    const failed: string[] = [];
    for (const r of rows) {
      if (instances.has(siteOf(r.name, r.env as Env)) || r.state !== 'approved') continue;
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
    for (const inst of instances.values()) inst.stopping = true;
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
    identityToken,
    identityPublicKey: async () => (await identity()).publicPem,
    shutdown,
  };
}

export type DeploymentService = ReturnType<typeof createDeploymentService>;
