import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type { Kysely } from 'kysely';
import { x } from 'tar';
import type { Database } from '../../db/schema.ts';
import { AppError, forbidden } from '../../errors.ts';
import { newId, nowIso } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import type { SecretService } from '../secrets/secret-service.ts';
import type { KeyStore } from '../signing/key-store.ts';
import { verifyArtifact } from '../signing/verify.ts';
import type { VersionsService } from '../signing/versions-service.ts';
import { type SandboxedProcess, startSandboxed } from './sandbox.ts';

type Instance = { deploymentId: string; app: string; version: string; process: SandboxedProcess };

/**
 * Deploys signed versions into sandboxes: verify the signature and provenance, check admission,
 * unpack, start under bubblewrap with the app's secrets, wait until it answers, and record it.
 */
export function createDeploymentService(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  versions: Pick<VersionsService, 'get' | 'artifact'>;
  keys: Pick<KeyStore, 'current'>;
  secrets: Pick<SecretService, 'valuesFor'>;
  engine: Pick<PolicyEngine, 'admission' | 'log'> | null;
  runtimeDir: string;
  builderId: () => string;
}) {
  const { db, audit } = deps;
  const instances = new Map<string, Instance>();
  let identityKey: {
    privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
    publicPem: string;
  } | null = null;

  async function identity() {
    if (!identityKey) {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      identityKey = { privateKey, publicPem: await exportSPKI(publicKey) };
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

  async function waitUntilAnswering(p: SandboxedProcess): Promise<void> {
    const { request } = await import('node:http');
    for (let i = 0; i < 100; i++) {
      if (p.child.exitCode !== null) break;
      const ok = await new Promise<boolean>((resolve) => {
        const req = request({ socketPath: p.socketPath, path: '/', method: 'GET' }, (res) => {
          res.resume();
          resolve(true);
        });
        req.on('error', () => resolve(false));
        req.end();
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new AppError('unavailable', `the app did not start: ${p.output().slice(-500) || 'no output'}`);
  }

  async function deploy(principal: Principal, name: string, version: string, ctx: AuditContext) {
    const app = await deps.catalog.get(principal, name);
    if (app.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden(`only the owner of ${name} or an admin can deploy it`);
    if (app.state !== 'approved')
      throw new AppError('conflict', `${name} is ${app.state.replace('_', ' ')}; only approved apps run`);
    const v = await deps.versions.get(principal, name, version);
    const bytes = await deps.versions.artifact(principal, name, version);
    // Verify as an outsider would: signature, provenance subject and builder, with the public key only.
    const key = await deps.keys.current();
    const report = verifyArtifact({
      artifact: bytes,
      publicKeyPem: key.publicPem,
      bundles: v.bundles as { artifact: unknown; provenance?: unknown },
      builderId: deps.builderId(),
    });
    if (!report.ok)
      throw new AppError(
        'policy_denied',
        `${name}@${version} does not verify: ${report.checks
          .filter((c) => !c.ok)
          .map((c) => `${c.check}: ${c.detail}`)
          .join('; ')}`,
      );
    if (deps.engine) {
      const hosts = app.manifest.integrations?.egress ?? [];
      for (const host of hosts.length ? hosts : [null]) {
        const input = {
          request: { method: 'deploy', ...(host ? { host } : {}) },
          manifest: app.manifest,
          app: { name, tier: app.tier },
        };
        const checked = await deps.engine.admission(input);
        await deps.engine.log(db, checked.decisions, name, ctx.requestId);
        if (checked.denials.length)
          throw new AppError(
            'policy_denied',
            `deploy denied: ${checked.denials.map((d) => d.message).join('; ')}`,
          );
      }
    }
    await stopInstance(name);
    const codeDir = join(deps.runtimeDir, 'code', name, version);
    rmSync(codeDir, { recursive: true, force: true });
    mkdirSync(codeDir, { recursive: true, mode: 0o755 });
    const archive = join(deps.runtimeDir, `${name}-${version}.tar.gz`);
    writeFileSync(archive, bytes);
    await x({ file: archive, cwd: codeDir, strict: true, preservePaths: false });
    rmSync(archive, { force: true });
    const { publicPem } = await identity();
    const p = startSandboxed({
      appDir: codeDir,
      dataDir: join(deps.runtimeDir, 'data', name),
      socketDir: join(deps.runtimeDir, 'sockets', name),
      entry: app.manifest.runtime?.entry ?? 'server.js',
      secrets: await deps.secrets.valuesFor(app.id),
      env: { MICROAPP_IDENTITY_PUBLIC_KEY: publicPem, MICROAPP_OWNER: app.owner, MICROAPP_APP: name },
      memoryMb: app.manifest.runtime?.memoryMb,
    });
    try {
      await waitUntilAnswering(p);
    } catch (error) {
      await p.stop('SIGKILL');
      throw error;
    }
    const id = newId('deployment');
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('deployments')
        .set({ state: 'stopped', stopped_at: nowIso() })
        .where('app_id', '=', app.id)
        .where('state', '=', 'running')
        .execute();
      await trx
        .insertInto('deployments')
        .values({
          id,
          app_id: app.id,
          version,
          digest: v.digest,
          state: 'running',
          started_by: principal.email,
          started_at: nowIso(),
          stopped_at: null,
        })
        .execute();
      await audit.record(trx, ctx, {
        action: 'deployment.started',
        targetType: 'app',
        target: name,
        summary: { deploymentId: id, version, digest: v.digest },
      });
    });
    instances.set(name, { deploymentId: id, app: name, version, process: p });
    return { id, app: name, version, digest: v.digest, state: 'running' };
  }

  async function stopInstance(name: string) {
    const inst = instances.get(name);
    if (!inst) return false;
    instances.delete(name);
    await inst.process.stop();
    return true;
  }

  async function stop(principal: Principal, name: string, ctx: AuditContext) {
    const app = await deps.catalog.get(principal, name);
    if (app.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden(`only the owner of ${name} or an admin can stop it`);
    const stopped = await stopInstance(name);
    if (!stopped) throw new AppError('conflict', `${name} is not running`);
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

  /** The running instance of an app, for the gateway. */
  function instanceOf(name: string): Instance | undefined {
    const inst = instances.get(name);
    return inst && inst.process.child.exitCode === null ? inst : undefined;
  }

  async function stopAll() {
    for (const name of [...instances.keys()]) await stopInstance(name);
  }

  return {
    deploy,
    stop,
    instanceOf,
    identityToken,
    identityPublicKey: async () => (await identity()).publicPem,
    stopAll,
  };
}

export type DeploymentService = ReturnType<typeof createDeploymentService>;
