import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { ChangeRequestsTable } from '../../db/schema-repos.ts';
import { AppError, conflict, forbidden, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { AgentGit } from '../agents/agent-git.ts';
import { slotFor } from '../approvals/approval-rules.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { BuildService } from '../builds/build-service.ts';
import type { AppView } from '../catalog/app-view.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import { createChangeMerger } from './change-merge.ts';
import { createChangeState, nextChangeNumber } from './change-state.ts';
import { type ChangeView, changeView } from './change-view.ts';
import type { RefUpdate } from './git-http.ts';
import type { HostedRepos } from './hosted-repos.ts';
import type { RepoService } from './repo-service.ts';
import { mainBranch, type RepoStore } from './repo-store.ts';

export type { ChangeView } from './change-view.ts';

/**
 * Change requests: a branch pushed to an app's repository is a change request. The platform runs the
 * pipeline on its head commit (the same build as any other, without publishing), the app's tier says who
 * must approve (low: nobody, merged once the checks pass; medium and high: the reviewers its registration
 * needed), and once both hold the platform merges it and builds, signs and deploys the merged commit.
 */
export function createChangeService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  catalog: Pick<CatalogService, 'get'>;
  store: RepoStore;
  repos: Pick<RepoService, 'sourceUrl' | 'holdCommit'>;
  builds: Pick<BuildService, 'request'>;
  notifications?: Pick<NotificationService, 'notify'>;
  publicUrl: () => string;
  agents: () => Pick<AgentGit, 'confirmation' | 'spend'> | null;
  /** The company's GitHub or GitLab, when apps' repositories live there. */
  hosted: () => Pick<HostedRepos, 'merge'> | null;
}) {
  const { db, store, audit } = deps;
  const changeState = createChangeState(deps);
  const { find, appFor, state, authorOf, buildCommit } = changeState;
  const { settle, ship } = createChangeMerger({ ...deps, state: changeState });

  /** Starts the pipeline on the change's head commit; a change that cannot be checked says why. */
  async function check(cr: ChangeRequestsTable, principal: Principal, app: AppView, ctx: AuditContext) {
    const { build, problem } = await buildCommit(principal, app, cr, cr.head_commit, false, ctx);
    await db
      .updateTable('change_requests')
      .set({ check_build_id: build, check_error: problem, updated_at: deps.clock.nowIso() })
      .where('id', '=', cr.id)
      .where('head_commit', '=', cr.head_commit)
      .execute();
  }

  /**
   * The app's builder is free: start what waited for it, a merged change's release first (someone
   * approved it), then the oldest change whose check has not started.
   */
  async function resume(appId: string) {
    const release = await db
      .selectFrom('change_requests')
      .selectAll()
      .where('app_id', '=', appId)
      .where('state', '=', 'merged')
      .where('merged_commit', 'is not', null)
      .where('release_build_id', 'is', null)
      .where('check_error', 'is', null)
      .orderBy('number', 'asc')
      .executeTakeFirst();
    if (release) return ship(release);
    const waiting = await db
      .selectFrom('change_requests')
      .selectAll()
      .where('app_id', '=', appId)
      .where('state', '=', 'open')
      .where('check_build_id', 'is', null)
      .where('check_error', 'is', null)
      .orderBy('updated_at', 'asc')
      .executeTakeFirst();
    if (!waiting) return;
    const author = await authorOf(waiting).catch(() => null);
    const app = author ? await appFor(author, waiting.app_name).catch(() => null) : null;
    if (author && app) await check(waiting, author, app, { actor: author.email });
  }

  /**
   * A push: each branch it changed opens, updates or (deleted) closes its change request. Returns the
   * change requests it opened or moved. An agent's push marks them as its own: they then wait for its
   * person to confirm (see agents/agent-git.ts).
   */
  async function pushed(
    principal: Principal,
    app: AppView,
    updates: RefUpdate[],
    ctx: AuditContext,
  ): Promise<ChangeRequestsTable[]> {
    const touched: ChangeRequestsTable[] = [];
    const agent = principal.agent?.delegationId ?? null;
    await db.transaction().execute((trx) =>
      audit.record(trx, ctx, {
        action: 'repository.pushed',
        targetType: 'app',
        target: app.name,
        summary: { updates: updates.map((u) => ({ ref: u.ref, before: u.before, after: u.after })) },
      }),
    );
    for (const u of updates) {
      const branch = u.ref.replace(/^refs\/heads\//, '');
      if (branch === mainBranch || branch === u.ref) continue;
      const open = await db
        .selectFrom('change_requests')
        .selectAll()
        .where('app_id', '=', app.id)
        .where('branch', '=', branch)
        .where('state', '=', 'open')
        .executeTakeFirst();
      const now = deps.clock.nowIso();
      if (!u.after) {
        if (open) await close(open, ctx, 'its branch was deleted');
        continue;
      }
      const main = await store.head(app.id);
      const base = main ? await store.mergeBase(app.id, main, u.after).catch(() => main) : u.after;
      let cr: ChangeRequestsTable;
      if (open) {
        await db
          .updateTable('change_requests')
          .set({
            head_commit: u.after,
            base_commit: base,
            agent_delegation_id: agent,
            host_number: null,
            host_url: null,
            check_build_id: null,
            check_error: null,
            updated_at: now,
          })
          .where('id', '=', open.id)
          .execute();
        cr = { ...open, head_commit: u.after, base_commit: base, agent_delegation_id: agent };
      } else {
        const [subject] = (await store.log(app.id, u.after, 1)).map((c) => c.subject);
        cr = await db.transaction().execute(async (trx) => {
          const row: ChangeRequestsTable = {
            id: newId('change'),
            app_id: app.id,
            app_name: app.name,
            number: await nextChangeNumber(trx, app.id),
            branch,
            title: (subject || branch).slice(0, 200),
            state: 'open',
            base_commit: base,
            head_commit: u.after!,
            opened_by: principal.email,
            opened_by_id: principal.userId,
            agent_delegation_id: agent,
            host_number: null,
            host_url: null,
            check_build_id: null,
            check_error: null,
            merged_commit: null,
            merged_by: null,
            release_build_id: null,
            created_at: now,
            updated_at: now,
            closed_at: null,
          };
          await trx.insertInto('change_requests').values(row).execute();
          return row;
        });
      }
      await db.transaction().execute((trx) =>
        audit.record(trx, ctx, {
          action: open ? 'change.updated' : 'change.opened',
          targetType: 'app',
          target: app.name,
          summary: {
            change: cr.number,
            branch,
            head: cr.head_commit,
            base: cr.base_commit,
            ...(principal.agent ? { agent: principal.agent.client, delegation: agent } : {}),
          },
        }),
      );
      touched.push(cr);
      await check(cr, principal, app, ctx);
    }
    return touched;
  }

  async function close(cr: ChangeRequestsTable, ctx: AuditContext, why: string) {
    const now = deps.clock.nowIso();
    const done = await db
      .updateTable('change_requests')
      .set({ state: 'closed', closed_at: now, updated_at: now })
      .where('id', '=', cr.id)
      .where('state', '=', 'open')
      .executeTakeFirst();
    if (Number(done.numUpdatedRows) === 0) return;
    await db.transaction().execute((trx) =>
      audit.record(trx, ctx, {
        action: 'change.closed',
        targetType: 'app',
        target: cr.app_name,
        summary: { change: cr.number, branch: cr.branch, why },
      }),
    );
  }

  async function list(principal: Principal, name: string, filter: { state?: string } = {}) {
    const app = await appFor(principal, name);
    let q = db.selectFrom('change_requests').selectAll().where('app_id', '=', app.id);
    if (filter.state) q = q.where('state', '=', filter.state);
    const rows = await q.orderBy('number', 'desc').limit(100).execute();
    const source = await deps.repos.sourceUrl(app);
    return Promise.all(rows.map(async (cr) => changeView(cr, app, await state(cr, app), source)));
  }

  /** One change request with its commits, its code diff and its manifest diff, for a reviewer. */
  async function get(principal: Principal, name: string, number: number): Promise<ChangeView> {
    const app = await appFor(principal, name);
    const cr = await find(app.id, number);
    if (!cr) throw notFound(`change request #${number} of ${name}`);
    const view = changeView(cr, app, await state(cr, app), await deps.repos.sourceUrl(app));
    const base = cr.base_commit;
    await deps.repos.holdCommit(app, cr.head_commit).catch(() => {});
    const [commits, diff, before, after] = await Promise.all([
      store.log(app.id, `${base}..${cr.head_commit}`, 50),
      store.diff(app.id, base, cr.head_commit),
      store.readFile(app.id, base, 'microapp.yaml'),
      store.readFile(app.id, cr.head_commit, 'microapp.yaml'),
    ]);
    const manifest = { changed: before !== after, before, after };
    return { ...view, commits, diff, manifest };
  }

  /** A reviewer's decision on the head commit; an approval that completes the rule merges the change. */
  async function review(
    principal: Principal,
    name: string,
    number: number,
    input: { decision: 'approved' | 'changes_requested'; comment?: string; head?: string },
    ctx: AuditContext,
  ) {
    if (!hasRole(principal, 'reviewer'))
      throw forbidden(
        `reviewing a change needs the reviewer role; you have ${principal.roles.join(', ') || 'none'}`,
      );
    const app = await appFor(principal, name);
    const cr = await find(app.id, number);
    if (!cr) throw notFound(`change request #${number} of ${name}`);
    if (cr.state !== 'open')
      throw conflict(`change request #${number} is ${cr.state}; only open changes are reviewed`);
    if (cr.opened_by === principal.email || app.owner === principal.email)
      throw forbidden('you cannot review a change to your own app: another reviewer must');
    if (input.head && input.head !== cr.head_commit)
      throw conflict(
        `the change moved to ${cr.head_commit.slice(0, 12)} after you read it; read it again before deciding`,
      );
    const s = await state(cr, app);
    if (s.current.some((r) => r.reviewer_id === principal.userId))
      throw conflict('you already reviewed this commit of the change');
    let specialty: string | null = null;
    if (input.decision === 'approved') {
      if (app.approval.required.length === 0)
        throw conflict(`${name} is low tier: its changes merge without a review once their checks pass`);
      const slot = slotFor(s.missing, principal.specialties);
      if (!slot)
        throw s.missing.length === 0
          ? conflict('no review is missing on this change')
          : forbidden(
              `this change still needs a review by ${s.missing.map((m) => m.specialty ?? 'any reviewer').join(' and ')}; you are not one`,
            );
      specialty = slot.specialty;
    }
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('change_reviews')
        .values({
          id: newId('changeReview'),
          change_id: cr.id,
          head_commit: cr.head_commit,
          reviewer: principal.email,
          reviewer_id: principal.userId,
          specialty,
          decision: input.decision,
          comment: input.comment ?? null,
          created_at: deps.clock.nowIso(),
        })
        .execute();
      await audit.record(trx, ctx, {
        action: 'change.reviewed',
        targetType: 'app',
        target: name,
        summary: { change: number, head: cr.head_commit, decision: input.decision, specialty },
      });
      if (input.decision === 'changes_requested')
        await deps.notifications?.notify(trx, {
          recipient: cr.opened_by,
          app: name,
          kind: 'change_reviewed',
          subject: `Changes requested on ${name} #${number}`,
          body: `${principal.email} asks for changes to "${cr.title}"${input.comment ? `: ${input.comment}` : ''}. Push to ${cr.branch} again.`,
          action: null,
          dedupeKey: `change-review:${cr.id}:${principal.userId}:${cr.head_commit}`,
        });
    });
    await settle(cr.id, ctx, principal.email);
    return get(principal, name, number);
  }

  /** A finished build: the change it checked may now merge, and what waited for the builder starts. */
  async function buildFinished(buildId: string) {
    const cr = await db
      .selectFrom('change_requests')
      .select('id')
      .where('check_build_id', '=', buildId)
      .where('state', '=', 'open')
      .executeTakeFirst();
    if (cr) await settle(cr.id);
    const build = await db.selectFrom('builds').select('app_id').where('id', '=', buildId).executeTakeFirst();
    if (build) await resume(build.app_id);
  }

  /** The person answered their agent's request to merge a change: it may merge now. */
  async function confirmed(appName: string, number: number) {
    const cr = await db
      .selectFrom('change_requests')
      .select('id')
      .where('app_name', '=', appName)
      .where('number', '=', number)
      .where('state', '=', 'open')
      .executeTakeFirst();
    if (cr) await settle(cr.id);
  }

  async function closeByOwner(principal: Principal, name: string, number: number, ctx: AuditContext) {
    const app = await appFor(principal, name);
    const cr = await find(app.id, number);
    if (!cr) throw notFound(`change request #${number} of ${name}`);
    if (cr.opened_by !== principal.email && app.owner !== principal.email && !hasRole(principal, 'admin'))
      throw forbidden('only the person who opened a change, the app’s owner or an admin can close it');
    if (cr.state !== 'open')
      throw new AppError('conflict', `change request #${number} is already ${cr.state}`);
    await close(cr, ctx, `closed by ${principal.email}`);
    return get(principal, name, number);
  }

  return { pushed, list, get, review, settle, buildFinished, confirmed, close: closeByOwner };
}

export type ChangeService = ReturnType<typeof createChangeService>;
