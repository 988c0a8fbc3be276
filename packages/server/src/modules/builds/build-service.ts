import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { BuildsTable, Database } from '../../db/schema.ts';
import { conflict, forbidden, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { Tracing } from '../../tracing.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { EgressBroker } from '../egress/egress-broker.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { ReplicaLease } from '../replicas/replica-lease.ts';
import {
  type CgroupDriver,
  type ControlGroup,
  defaultBuildLimits,
  type ResourceLimits,
} from '../runtime/cgroups.ts';
import type { DeploymentService } from '../runtime/deployment-service.ts';
import { killTree } from '../runtime/process-stats.ts';
import type { TokenService } from '../tokens/token-service.ts';
import { refuseUnbuildable } from './build-checks.ts';
import { failInterrupted, nextVersion, openBuildEgress, spawnPipeline } from './build-process.ts';
import { checkBuildQuota } from './build-quota.ts';
import { prepareSource } from './build-source-step.ts';
import {
  type BuildRequest,
  type BuildStep,
  type BuildView,
  buildSettings,
  buildView,
  type CommitSource,
  requestSummary,
} from './build-types.ts';

export { cliBin } from './build-process.ts';
export type { BuildRequest, BuildStep, BuildView } from './build-types.ts';

const active = ['queued', 'running'];

/**
 * Builds on the platform: a template scaffolded with the app's registered manifest (the console's Deploy),
 * or an uploaded source archive (`microapp build`). Each build runs `microapp ci --sandbox` as the person
 * who asked, with a one-hour token of theirs that is revoked when the build ends; install and test run under
 * bubblewrap. One build at a time per server; a build interrupted by a restart is marked failed.
 */
export function createBuildService(deps: {
  db: Kysely<Database>;
  /** This replica's lease: it owns the builds it runs, and fails only its own or a dead replica's. */
  lease: Pick<ReplicaLease, 'id' | 'mayTakeOver'>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  tokens: Pick<TokenService, 'create' | 'revoke'>;
  deployments: Pick<DeploymentService, 'deploy'>;
  workDir: string;
  platformUrl: () => string;
  /** Where an app answers once deployed. */
  appUrl: (site: string) => string;
  /** Longest a pipeline may run before it is stopped. */
  timeoutMs?: number;
  /** The egress broker: a build's install step reaches the npm registry through it, and nothing else. */
  egress?: Pick<EgressBroker, 'open' | 'close'>;
  /** The registry builds install from (a company mirror, or the public registry). */
  npmRegistry?: string;
  /** The CA bundle the registry's certificate chains to (a company CA), which the install steps trust. */
  npmCaFile?: string;
  /** A file with the registry's read token; the pipeline hands it to its install steps only. */
  npmTokenFile?: string;
  /** The templates a build scaffolds from (MICROAPP_TEMPLATES_DIR); unset, the ones the CLI ships. */
  templatesDir?: string;
  /** OpenTelemetry: a span per build, a child span per step. */
  tracing?: Pick<Tracing, 'start'>;
  /**
   * Control groups, when the host gives the platform some: each build (the pipeline and every step it runs)
   * is held to `buildLimits` of memory, CPU and processes, as an app instance is to its own.
   */
  cgroups?: CgroupDriver | null;
  buildLimits?: ResourceLimits;
  /** Builds one person (not an admin) may request in an hour. */
  buildsPerHour?: number;
}) {
  const { db, audit } = deps;
  const timeoutMs = deps.timeoutMs ?? 15 * 60_000;
  let queue: Promise<void> = Promise.resolve();
  const waiting = new Map<string, { principal: Principal; ctx: AuditContext; archive?: Buffer }>();
  const running = new Set<ChildProcess>();
  let closed = false;
  /** Told of every finished build (a change request waits for its check). */
  const finished: ((id: string, state: 'passed' | 'failed') => Promise<void>)[] = [];

  const appUrl = deps.appUrl;

  const view = (row: BuildsTable) => buildView(row, appUrl);

  async function request(principal: Principal, name: string, input: BuildRequest, ctx: AuditContext) {
    const app = await deps.catalog.get(principal, name);
    if (app.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden(`only the owner of ${name} or an admin can build it`);
    if (deps.buildsPerHour && !hasRole(principal, 'admin'))
      await checkBuildQuota(db, deps.clock, principal.email, deps.buildsPerHour);
    const template = refuseUnbuildable(app, name, input);
    const id = newId('build');
    const now = deps.clock.nowIso();
    await db.transaction().execute(async (trx) => {
      const busy = await trx
        .selectFrom('builds')
        .select('id')
        .where('app_id', '=', app.id)
        .where('state', 'in', active)
        .executeTakeFirst();
      if (busy) throw conflict(`${name} is already being built (${busy.id}); wait for it to finish`);
      await trx
        .insertInto('builds')
        .values({
          id,
          app_id: app.id,
          app_name: name,
          requested_by: principal.email,
          source: input.kind,
          settings: JSON.stringify(buildSettings(input, principal.agent?.delegationId)),
          deploy: input.deploy && (input.kind !== 'commit' || input.publish) ? 1 : 0,
          state: 'queued',
          steps: '[]',
          version: null,
          digest: null,
          error: null,
          created_at: now,
          started_at: null,
          finished_at: null,
          token_id: null,
          replica_id: deps.lease.id,
        })
        .execute();
      await audit.record(trx, ctx, {
        action: 'build.requested',
        targetType: 'app',
        target: name,
        summary: requestSummary(id, input, template),
      });
    });
    waiting.set(id, { principal, ctx, ...(input.kind !== 'template' ? { archive: input.archive } : {}) });
    queue = queue.then(() => run(id)).catch(() => {});
    return get(principal, name, id);
  }

  async function get(principal: Principal, name: string, id: string): Promise<BuildView> {
    await deps.catalog.get(principal, name);
    const row = await db.selectFrom('builds').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.app_name !== name) throw notFound(`build ${id} of ${name}`);
    return view(row);
  }

  async function list(principal: Principal, name: string): Promise<BuildView[]> {
    await deps.catalog.get(principal, name);
    const rows = await db
      .selectFrom('builds')
      .selectAll()
      .where('app_name', '=', name)
      .orderBy('created_at', 'desc')
      .limit(50)
      .execute();
    return rows.map(view);
  }

  async function update(id: string, patch: Partial<BuildsTable>) {
    await db.updateTable('builds').set(patch).where('id', '=', id).execute();
  }

  /**
   * Runs one child process of the pipeline (see build-process.ts), counted among the running ones; none
   * once the server stops (a build between two steps would otherwise start its next after `close`).
   */
  const spawnCli = (
    args: string[],
    env: Record<string, string>,
    onStep: (s: BuildStep) => void,
    group?: ControlGroup | null,
  ) =>
    closed
      ? Promise.resolve({
          code: 1,
          stdout: '',
          stderr: 'the server stopped during the build; start it again',
        })
      : spawnPipeline({ args, env, onStep, group, timeoutMs, platformUrl: deps.platformUrl(), running });

  async function run(id: string) {
    const job = waiting.get(id);
    waiting.delete(id);
    const row = await db.selectFrom('builds').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || !job || closed) return;
    const { principal, ctx } = job;
    const source = (JSON.parse(row.settings) as { source?: CommitSource }).source;
    const steps: BuildStep[] = [];
    const dir = join(deps.workDir, id);
    const src = join(dir, 'src');
    let token: { id: string; value: string } | null = null;
    let version: string | null = null;
    let digest: string | null = null;
    let error: string | null = null;
    let brokered = false;
    let group: ControlGroup | null = null;
    const span = deps.tracing?.start(`build ${row.app_name}`, {
      'microapp.app': row.app_name,
      'microapp.build': id,
      'microapp.build.source': row.source,
    });
    const record = async (s: BuildStep) => {
      const now = Date.now();
      span
        ?.child(
          `build step ${s.step}`,
          { 'microapp.build.step': s.step, 'microapp.build.step.status': s.status },
          now - s.durationMs,
        )
        .end(s.status === 'failed' ? `the ${s.step} step failed` : null, now);
      // Paths on the platform mean nothing to the person watching: show them relative to the app folder.
      const detail = [join(dir, 'work', 'outputs'), join(dir, 'work', 'app'), src].reduce(
        (d, path) => d.replaceAll(`${path}/`, '').replaceAll(path, '.'),
        s.detail,
      );
      steps.push({ ...s, detail });
      await update(id, { steps: JSON.stringify(steps) });
    };
    try {
      await update(id, { state: 'running', started_at: deps.clock.nowIso() });
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const app = await deps.catalog.get(principal, row.app_name);
      const issued = await deps.tokens.create(
        principal.userId,
        { name: `platform build ${id}`, scopes: ['apps:read', 'apps:write'], expiresInDays: 1 / 24 },
        ctx,
      );
      token = { id: issued.info.id, value: issued.token };
      await update(id, { token_id: token.id });
      const env = { MICROAPP_TOKEN: token.value, HOME: dir };
      const started = performance.now();
      const prepared = await prepareSource({
        app,
        row,
        src,
        env,
        archive: job.archive,
        source,
        templatesDir: deps.templatesDir,
        spawnCli: (args, childEnv) => spawnCli(args, childEnv, () => {}),
        nextVersion: () => nextVersion(db, app.id),
      });
      version = prepared.version;
      await record({
        step: 'source',
        status: 'passed',
        durationMs: Math.round(performance.now() - started),
        detail: prepared.detail,
      });
      const egressDir = deps.egress
        ? await openBuildEgress(deps.egress, id, { ...app, name: row.app_name }, deps.npmRegistry)
        : null;
      brokered = egressDir !== null;
      const limits = deps.buildLimits ?? defaultBuildLimits;
      group = deps.cgroups ? deps.cgroups.create(`build-${id}`, limits) : null;
      const ci = await spawnCli(
        // The steps after the tests read a checked copy in `work`, which the sandbox never had.
        [
          'ci',
          '--dir',
          src,
          '--sandbox',
          '--work',
          join(dir, 'work'),
          '--progress',
          'jsonl',
          '--json',
          ...(source && !source.publish ? ['--no-publish'] : []),
        ],
        {
          ...env,
          ...(egressDir ? { MICROAPP_EGRESS_DIR: egressDir } : {}),
          ...(deps.npmRegistry ? { MICROAPP_NPM_REGISTRY: deps.npmRegistry } : {}),
          ...(deps.npmCaFile ? { MICROAPP_NPM_CA_FILE: deps.npmCaFile } : {}),
          ...(deps.npmTokenFile ? { MICROAPP_NPM_TOKEN_FILE: deps.npmTokenFile } : {}),
        },
        (s) => {
          void record(s);
        },
        group,
      );
      if (ci.code === 97) throw new Error('the build could not join its control group; see the server log');
      if (group && group.oomKills() > 0) {
        const failed = steps.find((s) => s.status === 'failed');
        throw new Error(
          `the build ran out of memory (builds may use ${limits.memoryMb} MB, MICROAPP_BUILD_MEMORY_MB)${failed ? `: the ${failed.step} step was stopped` : ''}`,
        );
      }
      if (ci.code === 124)
        throw new Error(
          `the pipeline ran longer than ${Math.round(timeoutMs / 60_000)} minutes and was stopped`,
        );
      let result: { ok?: boolean; artifact?: { digest: string } | null } = {};
      try {
        result = JSON.parse(ci.stdout) as typeof result;
      } catch {
        throw new Error(
          `the pipeline did not finish: ${ci.stderr.trim().split('\n').slice(-5).join(' ') || `exit ${ci.code}`}`,
        );
      }
      digest = result.artifact?.digest ?? null;
      if (!result.ok) {
        const failed = steps.find((s) => s.status === 'failed');
        throw new Error(
          failed ? `the ${failed.step} step failed: ${failed.detail.split('\n')[0]}` : 'the pipeline failed',
        );
      }
      if (row.deploy && version) {
        const t0 = performance.now();
        await deps.deployments.deploy(principal, row.app_name, version, ctx);
        await record({
          step: 'deploy',
          status: 'passed',
          durationMs: Math.round(performance.now() - t0),
          detail: `${row.app_name}@${version} is running at ${appUrl(row.app_name)}`,
        });
      }
    } catch (e) {
      error = (e as Error).message;
    } finally {
      if (brokered) await deps.egress?.close(`build-${id}`).catch(() => {});
      group?.remove();
      if (token) await deps.tokens.revoke(principal, token.id, ctx).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      const state = error ? 'failed' : 'passed';
      span?.set({ 'microapp.version': version ?? '', 'microapp.build.state': state });
      span?.end(error);
      await update(id, {
        state,
        error,
        version,
        digest,
        steps: JSON.stringify(steps),
        finished_at: deps.clock.nowIso(),
      });
      await db.transaction().execute((trx) =>
        audit.record(trx, ctx, {
          action: error ? 'build.failed' : 'build.passed',
          targetType: 'app',
          target: row.app_name,
          // What failed, never what the app printed: the trail is append-only, and output may hold a secret.
          ...(error ? { reason: (error.split(/[:;]\s/)[0] ?? error).slice(0, 200) } : {}),
          summary: { build: id, version, digest, deployed: Boolean(row.deploy) && !error },
        }),
      );
      for (const listener of finished) await listener(id, state).catch(() => {});
    }
  }

  /**
   * Builds nobody will finish (their requester's credentials were in memory): this replica's own from before
   * its restart (`mine`), and those of replicas whose lease ran out. A live replica's builds are its own.
   */
  const recover = (which: 'mine-and-dead' | 'dead' = 'mine-and-dead') =>
    failInterrupted(db, deps.clock.nowIso(), active, deps.lease, which === 'mine-and-dead');

  /** Stops every build under way, and returns once none of their processes runs. */
  async function close() {
    closed = true;
    await Promise.all([...running].map((child) => (child.pid ? killTree(child.pid) : undefined)));
  }

  const onFinished = (listener: (id: string, state: 'passed' | 'failed') => Promise<void>) => {
    finished.push(listener);
  };

  return { request, get, list, recover, close, onFinished };
}

export type BuildService = ReturnType<typeof createBuildService>;
