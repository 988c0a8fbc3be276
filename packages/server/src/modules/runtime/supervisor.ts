import { request } from 'node:http';
import { AppError } from '../../errors.ts';
import { nowIso } from '../../ids.ts';
import type { DeploymentDeps, Instance } from './deployment-types.ts';
import { restartPolicy } from './deployment-types.ts';
import { type SandboxedProcess, startSandboxed } from './sandbox.ts';
import { underWay } from './under-way.ts';

/**
 * Whether the app answers GET `path` on its socket: with a readiness path of its own, with a status below
 * 400; at `/` (the default, where an app may answer 401 to a request without an identity), with any status.
 */
function answers(socketPath: string, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(path === '/' || (res.statusCode ?? 500) < 400);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** What a failed start's output says in plain words, when it is a failure people often meet. */
export function startFailure(output: string): string {
  const missing = /Cannot find (?:module|package) '([^']+)'/.exec(output)?.[1];
  if (missing && !missing.startsWith('.') && !missing.startsWith('/'))
    return `it cannot load the package ${missing}, which is not in what was built: list it under "dependencies" in package.json (not "devDependencies"), run npm install, and build again. `;
  if (missing)
    return `it cannot load its own file ${missing}: check the path and that the file is not in .gitignore or data/. `;
  if (/EADDRINUSE|listen EACCES/.test(output))
    return 'it tried to listen on a TCP port: listen on process.env.PORT (a socket path). ';
  return '';
}

/** Waits until a new instance answers (10 s by default); else stops it and says what it printed last. */
export async function healthy(
  p: SandboxedProcess,
  readiness: { path: string; timeoutMs: number } = { path: '/', timeoutMs: 10_000 },
): Promise<void> {
  const until = Date.now() + readiness.timeoutMs;
  while (Date.now() < until) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) break;
    if (await answers(p.socketPath, readiness.path)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  await p.stop('SIGKILL');
  // The last lines it printed, secrets redacted: enough to name a missing module or a thrown error.
  const output = p.output();
  const printed = output.trimEnd().split('\n').slice(-20).join('\n').slice(-2000);
  throw new AppError(
    'unavailable',
    `the app did not start; ${startFailure(output)}${printed ? `the last lines it printed (its secrets redacted):\n${printed}` : 'it printed nothing'}`,
  );
}

/**
 * Keeps instances running: a crashed one is restarted with backoff (and an out-of-memory kill recorded);
 * one that crashes more than `restartPolicy.maxCrashes` times in its window is given up on, its deployment
 * marked failed and its owner told.
 */
export function createSupervisor(
  deps: Pick<DeploymentDeps, 'db' | 'audit' | 'notifications' | 'onCrash' | 'onOutOfMemory' | 'cgroups'>,
  instances: Map<string, Instance>,
  release: (deploymentId: string, reason: string) => Promise<void>,
) {
  const { db, audit } = deps;
  // Restarts under way: a server that stops waits for them (`settle`), and each stops what it started.
  const restarting = underWay();

  function supervise(inst: Instance) {
    const proc = inst.process;
    const { child } = proc;
    // A process that exited before it was watched (a restart that never answered) counts as a crash now.
    if (child.exitCode !== null || child.signalCode !== null)
      queueMicrotask(() => onExit(child.exitCode, child.signalCode));
    else child.once('exit', onExit);
    function onExit(code: number | null, signal: NodeJS.Signals | null) {
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
              action: `/apps/${inst.app}#roll-back`,
              dedupeKey: `crash:${inst.deploymentId}`,
            });
        });
        return;
      }
      deps.onCrash?.(inst.app, 'restarted');
      const delay = Math.min(restartPolicy.maxDelayMs, restartPolicy.firstDelayMs * 2 ** (attempt - 1));
      setTimeout(() => {
        if (inst.stopping || instances.get(inst.site) !== inst) return;
        const p = startSandboxed(inst.spec, deps.cgroups ?? null);
        void restarting.track(
          (async () => {
            const ready = await healthy(p, inst.spec.readiness).then(
              () => true,
              () => false,
            );
            // Stopped or replaced while it started (the old process was the one stopped): this one goes too.
            if (inst.stopping || instances.get(inst.site) !== inst) return p.stop();
            inst.process = p;
            supervise(inst);
            if (!ready) return;
            await db.transaction().execute((trx) =>
              audit.record(trx, ctx, {
                action: 'deployment.restarted',
                targetType: 'app',
                target: inst.app,
                summary: { version: inst.version, attempt, exitCode: code, signal, outOfMemory },
              }),
            );
          })().catch(() => {}),
        );
      }, delay).unref();
    }
  }

  // `settle` waits for the restarts under way; call it once every instance is marked stopping.
  return { supervise, settle: restarting.settled };
}
