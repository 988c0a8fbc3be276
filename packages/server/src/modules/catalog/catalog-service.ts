import type { ReadCache } from '../../db/read-cache.ts';
import type { AppsTable } from '../../db/schema.ts';
import { AppError, notFound } from '../../errors.ts';
import { nowIso } from '../../ids.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { defaultLifecycleSettings } from '../lifecycle/lifecycle-rules.ts';
import type { Scorecard } from '../lifecycle/scorecard.ts';
import { riskInputOf } from '../risk/risk-evaluator.ts';
import type { Tier } from '../risk/risk-rules.ts';
import { type AppView, toAppSummary } from './app-view.ts';
import { type LifecycleFacts, type LifecycleFilter, lifecycleFactsOf } from './catalog-lifecycle.ts';
import { checkPolicies } from './catalog-policy.ts';
import { type CatalogDeps, createRegistration } from './catalog-registration.ts';
import type { AppFilter } from './catalog-repository.ts';
import { revisionsOf } from './catalog-revisions.ts';
import { type Assessment, canView, tierMeaning } from './catalog-rules.ts';
import type { Manifest } from './manifest-schema.ts';

export type { CatalogDeps, RegistrationOutcome } from './catalog-registration.ts';
export { type Assessment, canView, type RevisionView } from './catalog-rules.ts';

/**
 * A page of the catalog: each app's view (kept by the read cache, so the same object while the app is
 * unchanged) and its scorecard, or its catalog row (`view=summary`, which holds its scorecard).
 */
export type CatalogPage = {
  items: (
    | { view: AppView; scorecard?: Scorecard }
    | { row: AppsTable; scorecard?: Scorecard; facts?: LifecycleFacts }
  )[];
  nextCursor: string | null;
};

// The JSON of each object written while something keeps the object (a view, a scorecard): a page of 50
// full views is about 80 KB, and writing it on every request was a fifth of a catalog request's CPU.
const texts = new WeakMap<object, string>();
const textOf = (value: object) => {
  let text = texts.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    texts.set(value, text);
  }
  return text;
};

/**
 * A catalog page as the API answers it: `{ items, nextCursor }`, each item its view with its scorecard
 * after the view's last key, the same text as JSON.stringify of `{ ...view, scorecard }`.
 */
export function pageJson(page: CatalogPage): string {
  const items = page.items.map((item) => {
    if ('row' in item) return summaryJson(item.row, item.scorecard, item.facts);
    const text = textOf(item.view);
    if (!item.scorecard) return text;
    return `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"scorecard":${textOf(item.scorecard)}}`;
  });
  return `{"items":[${items.join(',')}],"nextCursor":${JSON.stringify(page.nextCursor)}}`;
}

// A kept row's catalog row (AppSummary) as JSON, with the scorecard it was written with.
const summaries = new WeakMap<AppsTable, { card: Scorecard | undefined; text: string }>();

/**
 * An app's catalog row as JSON: `{ ...toAppSummary(row, scorecard), ...facts }`. The part from the row and
 * its scorecard is written once while the cache keeps both; the lifecycle facts (last use, running), read
 * on every request, are written after it.
 */
function summaryJson(row: AppsTable, card: Scorecard | undefined, facts: LifecycleFacts | undefined) {
  let kept = summaries.get(row);
  if (!kept || kept.card !== card) {
    kept = { card, text: JSON.stringify(toAppSummary(row, card)) };
    summaries.set(row, kept);
  }
  return facts ? `${kept.text.slice(0, -1)},${JSON.stringify(facts).slice(1)}` : kept.text;
}

/** The catalog: register and re-register apps from their manifests, score their risk, list and show them. */
export function createCatalogService(deps: CatalogDeps) {
  const { db, repo, risk, routing } = deps;
  const { register, onRegistered } = createRegistration(deps);

  /**
   * One app; `scorecard: false` skips the governance checks, and `cache` keeps the app's row and view
   * until they change (the gateway asks on every request).
   */
  async function get(
    principal: Principal,
    name: string,
    options: { scorecard?: boolean; cache?: ReadCache } = {},
  ): Promise<AppView> {
    const { cache } = options;
    const app = await (cache
      ? cache.memo('app', name, () => repo.findApp(db, name))
      : repo.findApp(db, name));
    // An app the caller may not see is reported as missing, so names in other departments do not leak.
    if (!app || !canView(principal, app)) throw notFound(`app ${name}`);
    const view = await (cache ? cache.memo('app-view', name, () => repo.view(db, app)) : repo.view(db, app));
    const card =
      deps.scorecards && options.scorecard !== false
        ? (await deps.scorecards([app], cache)).get(app.id)
        : undefined;
    return card ? { ...view, scorecard: card } : view;
  }

  async function list(
    principal: Principal,
    filter: Omit<AppFilter, 'visibleTo' | 'after'> & {
      cursor?: string;
      scorecard?: 'passing' | 'failing';
      stage?: LifecycleFilter['stage'];
      running?: 'yes' | 'no';
      idleDays?: number;
      /** Only apps that stop within this many days unless renewed (computed, so read on like scorecards). */
      expiringDays?: number;
      /** `summary`: catalog rows (AppSummary), without each app's manifest, assessment and reviews. */
      view?: 'full' | 'summary';
    },
    options: { cache?: ReadCache } = {},
  ): Promise<CatalogPage> {
    let after: string | undefined;
    if (filter.cursor) {
      after = Buffer.from(filter.cursor, 'base64url').toString('utf8');
      if (!/^[a-z0-9-]{1,63}$/.test(after))
        throw new AppError('bad_request', 'the cursor is not valid; start from the first page');
    }
    const restricted = !hasRole(principal, 'reviewer', 'admin', 'auditor');
    const { scorecard: wanted, cursor: _, view, stage, running, idleDays, expiringDays, ...rest } = filter;
    const now = deps.clock?.nowIso() ?? nowIso();
    const lifecycle =
      stage || running || idleDays !== undefined
        ? {
            lifecycle: {
              now,
              ...(stage ? { stage } : {}),
              ...(running ? { running: running === 'yes' } : {}),
              ...(idleDays !== undefined ? { idleDays } : {}),
            },
          }
        : {};
    const lifetimes = deps.maxLifetimeDays ?? defaultLifecycleSettings.maxLifetimeDays;
    const horizon =
      expiringDays !== undefined ? new Date(Date.parse(now) + expiringDays * 86_400_000).toISOString() : null;
    const visibleTo = restricted
      ? { visibleTo: { department: principal.department, email: principal.email, userId: principal.userId } }
      : {};
    // Scorecards are computed, not stored: a scorecard filter reads on, a page at a time, until the page
    // is full; the cursor is the last app read, so pages stay stable.
    const kept: { row: AppsTable; card?: Scorecard; facts?: LifecycleFacts }[] = [];
    let more = true;
    while (kept.length <= filter.limit && more) {
      const query = { ...rest, after, limit: filter.limit + 1, ...visibleTo, ...lifecycle };
      // A lifecycle filter reads the clock: only the others' pages are kept.
      const rows =
        options.cache && !lifecycle.lifecycle ? await keptPage(options.cache, query) : await repo.list(query);
      more = rows.length > filter.limit;
      const cards = deps.scorecards
        ? await deps.scorecards(rows, options.cache)
        : new Map<string, Scorecard>();
      const facts =
        view === 'summary' || horizon
          ? await lifecycleFactsOf(db, rows, lifetimes)
          : new Map<string, LifecycleFacts>();
      for (const row of rows) {
        const card = cards.get(row.id);
        const f = facts.get(row.id);
        const passing = card ? card.passed === card.total : true;
        const expiring =
          !horizon || (f !== undefined && f.stage !== 'decommissioned' && f.expiresAt <= horizon);
        if ((!wanted || (wanted === 'passing') === passing) && expiring)
          kept.push({ row, ...(card ? { card } : {}), ...(f ? { facts: f } : {}) });
        if (kept.length > filter.limit) break;
      }
      after = rows.at(-1)?.name;
      if (!wanted && !horizon) break;
    }
    const page = kept.slice(0, filter.limit);
    const nextCursor =
      kept.length > filter.limit ? Buffer.from(page.at(-1)!.row.name).toString('base64url') : null;
    if (view === 'summary')
      return {
        items: page.map((k) => ({
          row: k.row,
          ...(k.card ? { scorecard: k.card } : {}),
          ...(k.facts ? { facts: k.facts } : {}),
        })),
        nextCursor,
      };
    const rows = page.map((k) => k.row);
    const views = options.cache ? await keptViews(options.cache, rows) : await repo.viewMany(db, rows);
    const items = views.map((view, i) => {
      const card = page[i]!.card;
      // A view never has a scorecard of its own: pageJson writes the card in after its last key.
      return card && !('scorecard' in view) ? { view, scorecard: card } : { view };
    });
    return { items, nextCursor };
  }

  /**
   * A page of the catalog from the read cache: the names on it, and each app's row, kept until the apps
   * change (the cache's triggers watch them). A page keeps names only, so many pages cost little memory.
   */
  async function keptPage(cache: ReadCache, query: AppFilter): Promise<AppsTable[]> {
    const names = await cache.memo('catalog-page', JSON.stringify(query), async () => {
      const rows = await repo.list(query);
      for (const row of rows) void cache.memo('app', row.name, async () => row);
      return rows.map((r) => r.name);
    });
    const rows = await Promise.all(names.map((n) => cache.memo('app', n, () => repo.findApp(db, n))));
    return rows.filter((r): r is AppsTable => r !== undefined);
  }

  /** Each app's view as `get` keeps it; the ones not kept yet are read together, in two queries. */
  function keptViews(cache: ReadCache, apps: AppsTable[]): Promise<AppView[]> {
    let read: Promise<AppView[]> | null = null;
    return Promise.all(
      apps.map((app, i) =>
        cache.memo('app-view', app.name, async () => {
          read ??= repo.viewMany(db, apps);
          return (await read)[i]!;
        }),
      ),
    );
  }

  /**
   * Score a manifest without registering it: the tier, its reasons and the reviews it would need, so a
   * wizard can show them while the user answers. Nothing is written and nothing is audited.
   */
  async function assess(principal: Principal, manifest: Manifest): Promise<Assessment> {
    const assessment = await risk.assess(riskInputOf(manifest));
    const routed = await routing.requiredReviews(assessment.tier);
    const policy = deps.admission
      ? await checkPolicies(deps.admission, {
          manifest,
          user: { email: principal.email, department: principal.department },
          tier: assessment.tier,
          ...(deps.blockNotes ? { blockNotes: deps.blockNotes } : {}),
        })
      : null;
    return {
      policy: policy
        ? { revision: policy.revision, allowed: policy.denials.length === 0, denials: policy.denials }
        : { revision: null, allowed: true, denials: [] },
      tier: assessment.tier,
      score: assessment.score,
      factors: assessment.factors,
      rulesVersion: assessment.rulesVersion,
      requiredReviews: routed.slots,
      meaning: tierMeaning(assessment.tier, routed.slots),
      lifetimeDays: lifetimeOf(manifest, assessment.tier),
    };
  }

  /** How long the app would run before a renewal: its tier's limit, or its own date when that comes first. */
  function lifetimeOf(manifest: Manifest, tier: Tier): number | null {
    const cap = deps.maxLifetimeDays?.[tier];
    if (!cap) return null;
    if (!manifest.lifetime?.expires) return cap;
    const today = Date.parse(deps.clock?.nowIso() ?? nowIso());
    const own = Math.ceil((Date.parse(`${manifest.lifetime.expires}T23:59:59.999Z`) - today) / 86_400_000);
    return Math.max(0, Math.min(cap, own));
  }

  /** Every registration of an app, newest first: what the risk rules saw and how reviewers decided. */
  const revisions = (principal: Principal, name: string) => revisionsOf(db, repo, principal, name);

  return { register, get, list, assess, revisions, onRegistered };
}

export type CatalogService = ReturnType<typeof createCatalogService>;
