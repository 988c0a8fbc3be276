import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef, useState } from 'react';
import { ApiError, api, query } from '../api.ts';
import { type AppSummary, dataClasses } from '../contracts.ts';
import { Link, navigate, useLocation } from '../router.tsx';
import { ErrorNote, StateBadge, TierBadge } from '../ui.tsx';

type Page = { items: AppSummary[]; nextCursor: string | null };
const filterNames = [
  'q',
  'owner',
  'department',
  'tier',
  'state',
  'dataClass',
  'scorecard',
  'stage',
  'running',
  'expiringDays',
  'idleDays',
] as const;
const stages = ['active', 'warned', 'stopped', 'escalated', 'decommissioned'];
const pageSize = 100;
/** A first guess at a row's height; each row is measured as it renders (rows wrap on a phone). */
const rowHeight = 72;

/**
 * The catalog: the server filters and pages (100 apps at a time, by cursor); the list renders only the
 * rows in view, so ten thousand apps scroll as smoothly as ten.
 */
export function CatalogPage() {
  const { search } = useLocation();
  const filters = Object.fromEntries(filterNames.map((f) => [f, search.get(f) ?? ''])) as Record<
    (typeof filterNames)[number],
    string
  >;
  const key = query(filters);
  const [items, setItems] = useState<AppSummary[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<Error | null>(null);
  const generation = useRef(0);

  const load = async (from: string | null, replace: boolean) => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const page = await api<Page>(
        'GET',
        `/api/v1/apps${query({ ...filters, view: 'summary', limit: pageSize, cursor: from ?? undefined })}`,
      );
      if (mine !== generation.current) return;
      setItems((old) => (replace ? page.items : [...old, ...page.items]));
      setCursor(page.nextCursor);
      setDone(page.nextCursor === null);
      setError(null);
    } catch (e) {
      if (mine === generation.current) setError(e instanceof ApiError ? e : (e as Error));
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new filter set starts again from the first page
  useEffect(() => {
    setItems([]);
    setDone(false);
    void load(null, true);
  }, [key]);

  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: items.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => rowHeight,
    overscan: 8,
  });
  const rows = virtual.getVirtualItems();
  const last = rows.at(-1)?.index ?? 0;
  // biome-ignore lint/correctness/useExhaustiveDependencies: fetch the next page as the end comes into view
  useEffect(() => {
    if (!loading && !done && cursor && last >= items.length - 20) void load(cursor, false);
  }, [last, loading, done, cursor, items.length]);

  const setFilter = (name: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(name, value);
    else next.delete(name);
    const s = next.toString();
    navigate(s ? `/?${s}` : '/');
  };

  return (
    <>
      <h1 tabIndex={-1}>Catalog</h1>
      <form
        className="filters"
        aria-label="Filter the catalog"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          setFilter('q', String(data.get('q') ?? '').trim());
        }}
      >
        <div className="field">
          <label htmlFor="q">Search by name or purpose</label>
          <div className="inline">
            <input id="q" name="q" type="search" defaultValue={filters.q} key={filters.q} maxLength={100} />
            <button type="submit">Search</button>
          </div>
        </div>
        <Select
          id="tier"
          label="Risk tier"
          value={filters.tier}
          options={['low', 'medium', 'high']}
          onChange={setFilter}
        />
        <Select
          id="state"
          label="State"
          value={filters.state}
          options={['pending_review', 'approved', 'rejected', 'changes_requested']}
          onChange={setFilter}
        />
        <Select
          id="dataClass"
          label="Data class"
          value={filters.dataClass}
          options={[...dataClasses]}
          onChange={setFilter}
        />
        <Select
          id="scorecard"
          label="Scorecard"
          value={filters.scorecard}
          options={['passing', 'failing']}
          onChange={setFilter}
        />
        <Select id="stage" label="Lifecycle" value={filters.stage} options={stages} onChange={setFilter} />
        <Select
          id="running"
          label="Running"
          value={filters.running}
          options={[
            ['yes', 'running'],
            ['no', 'not running'],
          ]}
          onChange={setFilter}
        />
        <Select
          id="expiringDays"
          label="Expires"
          value={filters.expiringDays}
          options={[
            ['7', 'within 7 days'],
            ['30', 'within 30 days'],
            ['90', 'within 90 days'],
          ]}
          onChange={setFilter}
        />
        <Select
          id="idleDays"
          label="Not used for"
          value={filters.idleDays}
          options={[
            ['30', '30 days or more'],
            ['60', '60 days or more'],
            ['90', '90 days or more'],
          ]}
          onChange={setFilter}
        />
        <TextFilter id="owner" label="Owner (e-mail)" value={filters.owner} onChange={setFilter} />
        <TextFilter id="department" label="Department" value={filters.department} onChange={setFilter} />
      </form>
      <ErrorNote error={error} />
      <p className="muted" aria-live="polite">
        {loading && items.length === 0
          ? 'Loading apps…'
          : `${items.length}${done ? '' : '+'} app${items.length === 1 ? '' : 's'}${done ? '' : ', more load as you scroll'}`}
      </p>
      <div ref={scroller} className="catalog-scroll" data-testid="catalog-list">
        <ul className="catalog-list" style={{ height: virtual.getTotalSize() }} aria-label="Apps">
          {rows.map((row) => {
            const app = items[row.index]!;
            return (
              <li
                key={app.id}
                ref={virtual.measureElement}
                data-index={row.index}
                className="catalog-row"
                style={{ transform: `translateY(${row.start}px)` }}
                aria-setsize={done ? items.length : -1}
                aria-posinset={row.index + 1}
              >
                <div className="row-main">
                  <Link href={`/apps/${app.name}`} className="app-name">
                    {app.name}
                  </Link>
                  <span className="muted purpose">{app.purpose}</span>
                </div>
                <div className="row-meta">
                  <TierBadge tier={app.tier} />
                  <StateBadge state={app.state} />
                  {app.stage && app.stage !== 'active' ? (
                    <span className={`badge stage-${app.stage}`}>{app.stage}</span>
                  ) : null}
                  {app.running !== undefined ? (
                    <span className="muted">{app.running ? 'running' : 'not running'}</span>
                  ) : null}
                  {app.stage !== 'decommissioned' && app.expiresAt ? (
                    <span className="muted">expires {app.expiresAt.slice(0, 10)}</span>
                  ) : null}
                  <span className="muted">
                    {app.lastUsedAt ? `last used ${app.lastUsedAt.slice(0, 10)}` : 'never used'}
                  </span>
                  {app.scorecard ? (
                    <span className="muted">
                      scorecard {app.scorecard.passed}/{app.scorecard.total}
                    </span>
                  ) : null}
                  <span className="muted">
                    {app.owner}
                    {app.department ? ` · ${app.department}` : ''}
                  </span>
                </div>
              </li>
            );
          })}
        </ul>
      </div>
    </>
  );
}

function Select(props: {
  id: string;
  label: string;
  value: string;
  /** Values, or [value, label] pairs. */
  options: (string | [string, string])[];
  onChange: (name: string, value: string) => void;
}) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(props.id, e.target.value)}>
        <option value="">Any</option>
        {props.options.map((o) => {
          const [value, label] = Array.isArray(o) ? o : [o, o.replace('_', ' ')];
          return (
            <option key={value} value={value}>
              {label}
            </option>
          );
        })}
      </select>
    </div>
  );
}

function TextFilter(props: {
  id: string;
  label: string;
  value: string;
  onChange: (n: string, v: string) => void;
}) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        defaultValue={props.value}
        key={props.value}
        maxLength={254}
        onBlur={(e) =>
          e.target.value.trim() !== props.value && props.onChange(props.id, e.target.value.trim())
        }
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            e.preventDefault();
            props.onChange(props.id, e.currentTarget.value.trim());
          }
        }}
      />
    </div>
  );
}
