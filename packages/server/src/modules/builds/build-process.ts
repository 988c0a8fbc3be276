import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { Kysely } from 'kysely';
import semver from 'semver';
import type { Database } from '../../db/schema.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { EgressBroker } from '../egress/egress-broker.ts';
import type { ReplicaLease } from '../replicas/replica-lease.ts';
import type { ControlGroup } from '../runtime/cgroups.ts';
import type { BuildStep } from './build-types.ts';

/** The pipeline's own command: the platform runs exactly what a creator runs on a laptop or in CI. */
export const cliBin = resolve(import.meta.dirname, '../../../../cli/bin/microapp.js');

/**
 * Runs one child process of the pipeline (`microapp ARGS`); stderr lines that are JSON are step results.
 * In a control group, a shell joins it first; past `timeoutMs` it is killed (exit 124).
 */
export function spawnPipeline(o: {
  args: string[];
  env: Record<string, string>;
  onStep: (s: BuildStep) => void;
  group?: ControlGroup | null | undefined;
  timeoutMs: number;
  platformUrl: string;
  running: Set<ChildProcess>;
}): Promise<{ code: number; stdout: string; stderr: string }> {
  const { args, env, onStep, group, timeoutMs, running } = o;
  return new Promise((done) => {
    const command = [process.execPath, cliBin, '--server', o.platformUrl, ...args];
    // In a control group, a shell joins it (every hierarchy) and then becomes the pipeline: nothing of the
    // build runs outside the limits. A group that cannot be joined stops the build (exit 97).
    const [file, argv] = group
      ? [
          '/bin/sh',
          [
            '-c',
            'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"',
            'sh',
            ...group.procs,
            '--',
            ...command,
          ],
        ]
      : [command[0]!, command.slice(1)];
    const child = spawn(file, argv, {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        NO_COLOR: '1',
        ...trustSettings(process.env),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d) => {
      stdout = (stdout + d).slice(-1024 * 1024);
    });
    child.stderr.on('data', (d: Buffer) => {
      partial += d.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('{"step"')) {
          try {
            const {
              index: _i,
              total: _t,
              ...step
            } = JSON.parse(line) as BuildStep & {
              index: number;
              total: number;
            };
            onStep(step);
            continue;
          } catch {}
        }
        stderr = `${stderr}${line}\n`.slice(-16 * 1024);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      done({ code: signal ? 124 : (code ?? 1), stdout, stderr });
    });
    child.on('error', (e) => done({ code: 1, stdout, stderr: e.message }));
  });
}

/**
 * The install step's only way out: a broker socket that lets npm reach the registry (the company mirror,
 * or the public one) and nothing else, attributed to the app, with the relay a build's sandbox runs.
 */
export function openBuildEgress(
  egress: Pick<EgressBroker, 'open'>,
  buildId: string,
  app: { id: string; name: string; owner: string; tier: string; manifest: Manifest },
  npmRegistry: string | undefined,
): Promise<string> {
  const registry = new URL(npmRegistry ?? 'https://registry.npmjs.org/');
  return egress.open(
    `build-${buildId}`,
    {
      name: app.name,
      appId: app.id,
      version: 'build',
      manifest: {
        ...app.manifest,
        integrations: { ...app.manifest.integrations, egress: [registry.hostname], connectors: [] },
      },
      department: app.manifest.audience?.department ?? null,
      tier: app.tier,
      owner: app.owner,
    },
    { build: true },
  );
}

/** The version a template build publishes: the next patch after the newest one, or 0.1.0. */
export async function nextVersion(db: Kysely<Database>, appId: string): Promise<string> {
  const rows = await db.selectFrom('app_versions').select('version').where('app_id', '=', appId).execute();
  const newest = rows
    .map((r) => r.version)
    .filter((v) => semver.valid(v))
    .sort(semver.rcompare)[0];
  return newest ? semver.inc(newest, 'patch')! : '0.1.0';
}

/** Marks builds left queued or running by a restart as failed; returns how many. */
/**
 * The CA settings the server runs with (a corporate CA in front of the platform's own URL, say): the pipeline
 * talks to the platform with them, or under a company CA every platform build fails at its first call.
 */
export function trustSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of [
    'NODE_EXTRA_CA_CERTS',
    'SSL_CERT_FILE',
    'SSL_CERT_DIR',
    'NODE_USE_SYSTEM_CA',
  ] as const) {
    const value = env[name];
    if (value) kept[name] = value;
  }
  return kept;
}

export async function failInterrupted(
  db: Kysely<Database>,
  now: string,
  active: string[],
  lease: Pick<ReplicaLease, 'id' | 'mayTakeOver'>,
  mine: boolean,
): Promise<number> {
  const stale = await db
    .selectFrom('builds')
    .select(['id', 'replica_id'])
    .where('state', 'in', active)
    .execute();
  let failed = 0;
  for (const b of stale) {
    if (b.replica_id === lease.id ? !mine : !(await lease.mayTakeOver(b.replica_id))) continue;
    const r = await db
      .updateTable('builds')
      .set({
        state: 'failed',
        error:
          b.replica_id === lease.id || b.replica_id === null
            ? 'the platform restarted during this build; start it again'
            : `the replica running this build (${b.replica_id}) stopped; start it again`,
        finished_at: now,
      })
      .where('id', '=', b.id)
      .where('state', 'in', active)
      .executeTakeFirst();
    failed += Number(r.numUpdatedRows);
  }
  return failed;
}
