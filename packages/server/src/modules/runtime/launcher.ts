import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { x } from 'tar';
import { AppError } from '../../errors.ts';
import { newId, nowIso } from '../../ids.ts';
import { componentsOf } from '../advisories/advisory-service.ts';
import type { AuditContext } from '../audit/audit-service.ts';
import type { BrokeredApp } from '../egress/egress-broker.ts';
import { readArtifact } from '../signing/artifact-contents.ts';
import { defaultLimits } from './cgroups.ts';
import { codeImageOf, prepareVolume, volumeOf } from './data-volume.ts';
import { type DeploymentDeps, type Env, type Instance, siteOf, type Target } from './deployment-types.ts';
import { canDropToHostUser, defaultSandboxUidBase, hostUidFor, socketRoot } from './host-user.ts';
import type { IdentitySigner } from './identity-key.ts';
import { type SandboxSpec, startSandboxed } from './sandbox.ts';
import { type StartFields, startCommand } from './start-command.ts';
import { healthy } from './supervisor.ts';
import { underWay } from './under-way.ts';

/**
 * Starting a version: `admit` verifies its signature and provenance and asks the admission policy;
 * `launch` unpacks it, starts it in a sandbox, switches traffic once it answers, and stops the old one.
 */
export function createLauncher(
  deps: DeploymentDeps,
  state: {
    instances: Map<string, Instance>;
    release: (deploymentId: string, reason: string) => Promise<void>;
    supervise: (inst: Instance) => void;
    identity: IdentitySigner;
  },
) {
  const { db, audit } = deps;
  const { instances, release, supervise } = state;

  /** The stored artifact of a version, once its signature and provenance verify and admission allows it. */
  async function admit(
    target: Target,
    version: string,
    ctx: AuditContext,
    options: { rescan?: boolean } = {},
  ) {
    // The key that signed it, current or retired since: a rotation must not strand running versions. Only
    // this platform's key signs provenance, so its signature names the builder; the builder id (which
    // follows the public URL) is for third parties (`microapp verify --builder`).
    const { stored, key, report } = await deps.versions.verifyStored(target.appId, version, 'provenance');
    if (!report)
      throw new AppError(
        'policy_denied',
        `${target.name}@${version} was not signed by a key of this platform (key ${key ?? 'unnamed'})`,
      );
    if (!report.ok || !stored)
      throw new AppError(
        'policy_denied',
        `${target.name}@${version} does not verify: ${report.checks
          .filter((c) => !c.ok)
          .map((c) => `${c.check}: ${c.detail}`)
          .join('; ')}`,
      );
    if (options.rescan && deps.advisories) await rescan(target, version, stored.sbom);
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

  // Starts under way, so that a server stopping waits for them and stops what they started; none begins
  // once it stops (a deploy, a wake-up or a takeover racing the shutdown would leave a sandbox running).
  const starting = underWay();
  let closed = false;

  /** Verifies, admits, unpacks and starts a version, then switches traffic to it and stops the old one. */
  function launch(...args: Parameters<typeof launchNow>): ReturnType<typeof launchNow> {
    if (closed)
      return Promise.reject(new AppError('unavailable', 'this server is stopping: try again in a moment'));
    return starting.track(launchNow(...args));
  }

  /** Refuses new starts and waits for those under way; the instances they started are then in `instances`. */
  async function close() {
    closed = true;
    await starting.settled();
  }

  async function launchNow(
    target: Target,
    version: string,
    ctx: AuditContext,
    action: string,
    env: Env = 'live',
  ) {
    const site = siteOf(target.name, env);
    // A person's deploy or promotion scans the version again; a restart, a wake-up or a rollback does not.
    const rescan = action === 'deployment.started' || action === 'deployment.promoted';
    const stored = await admit(target, version, ctx, { rescan });
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
    const appSecrets = await deps.secrets.valuesFor(target.appId);
    // The broker knows the app's secrets only to refuse a call to a model API that carries one.
    const egressDir = deps.egress ? await deps.egress.open(id, brokered, { secrets: appSecrets }) : undefined;
    let credentials: Record<string, string> = {};
    try {
      if (deps.egress && deps.credentials) credentials = await deps.credentials.issue(id, brokered);
    } catch (e) {
      await release(id, 'the instance did not start');
      throw e;
    }
    const secretValues = { ...appSecrets, ...credentials };
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
      ...startSpec(target.manifest.runtime),
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
      ...(target.manifest.runtime?.port ? { port: target.manifest.runtime.port } : {}),
      readiness: {
        path: target.manifest.runtime?.readiness?.path ?? '/',
        timeoutMs: (target.manifest.runtime?.readiness?.timeoutSeconds ?? 10) * 1000,
      },
      env: {
        // The manifest's settings (names the platform sets are refused at registration).
        ...(target.manifest.runtime?.env ?? {}),
        MICROAPP_IDENTITY_PUBLIC_KEY: state.identity.publicPem(),
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
      await healthy(p, spec.readiness);
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
          replica_id: deps.lease?.id ?? null,
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

  /** Scans a version's SBOM against today's advisories and exceptions; refuses it when a finding blocks. */
  async function rescan(target: Target, version: string, sbom: unknown) {
    const scan = await deps.advisories!.scan(componentsOf(sbom), { tier: target.tier, app: target.name });
    if (scan.passed) return;
    throw new AppError(
      'policy_denied',
      `${target.name}@${version} has ${scan.blocking.length} finding(s) that block a ${target.tier}-tier app today: ${scan.blocking
        .map((f) => `${f.ids[0]} in ${f.package}@${f.version}`)
        .join(
          ', ',
        )}. An exception expired or was revoked since it was published, or the advisory is new: build a version with the fix, or ask a security reviewer for an exception (\`microapp advisories except\`)`,
    );
  }

  return { admit, launch, close };
}

/** The sandbox's start fields for a manifest's runtime: the file, its arguments, Node options if any. */
function startSpec(runtime: StartFields | undefined): Pick<SandboxSpec, 'entry' | 'args' | 'nodeOptions'> {
  const start = startCommand(runtime);
  return {
    entry: start.entry,
    ...(start.args.length ? { args: start.args } : {}),
    ...(start.nodeOptions.length ? { nodeOptions: start.nodeOptions } : {}),
  };
}
