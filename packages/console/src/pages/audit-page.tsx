import { api, query } from '../api.ts';
import type { AuditEvent, VerifyResult } from '../contracts.ts';
import { navigate, useLocation } from '../router.tsx';
import { hasRole, useSession } from '../session.tsx';
import { ErrorNote, Loading, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';

/** The audit explorer: filter the tamper-evident log, and check its hash chain from the page. */
export function AuditPage() {
  const session = useSession();
  const { search } = useLocation();
  const filters = {
    actor: search.get('actor') ?? '',
    app: search.get('app') ?? '',
    action: search.get('action') ?? '',
    since: search.get('since') ?? '',
  };
  const path = `/api/v1/audit/events${query({
    ...filters,
    since: filters.since ? new Date(`${filters.since}T00:00:00Z`).toISOString() : undefined,
    limit: 1000,
  })}`;
  const events = useApi<{ items: AuditEvent[]; next: number | null }>(path);
  const apply = (form: HTMLFormElement) => {
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const k of ['actor', 'app', 'action', 'since']) {
      const v = String(data.get(k) ?? '').trim();
      if (v) next.set(k, v);
    }
    navigate(`/audit${next.size ? `?${next}` : ''}`);
  };
  return (
    <>
      <h1 tabIndex={-1}>Audit</h1>
      <p className="muted">
        {hasRole(session, 'auditor', 'admin')
          ? 'Every change on the platform, in order. Each event is chained to the one before by its hash.'
          : 'The events about your apps. Auditors see the whole log.'}
      </p>
      {hasRole(session, 'auditor', 'admin') ? <VerifyChain /> : null}
      <form
        className="filters"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          apply(e.currentTarget);
        }}
      >
        <div className="field">
          <label htmlFor="actor">Actor (e-mail)</label>
          <input
            id="actor"
            name="actor"
            defaultValue={filters.actor}
            key={`a${filters.actor}`}
            maxLength={320}
          />
        </div>
        <div className="field">
          <label htmlFor="app">App</label>
          <input id="app" name="app" defaultValue={filters.app} key={`p${filters.app}`} maxLength={63} />
        </div>
        <div className="field">
          <label htmlFor="action">Action, or a prefix ending in "."</label>
          <input
            id="action"
            name="action"
            defaultValue={filters.action}
            key={`c${filters.action}`}
            maxLength={100}
          />
        </div>
        <div className="field">
          <label htmlFor="since">Since (date)</label>
          <input id="since" name="since" type="date" defaultValue={filters.since} key={`s${filters.since}`} />
        </div>
        <div className="field">
          <span aria-hidden="true">&nbsp;</span>
          <button type="submit">Filter</button>
        </div>
      </form>
      <ErrorNote error={events.error} />
      {events.loading && !events.data ? <Loading what="events" /> : null}
      {events.data ? (
        <>
          <p className="muted" role="status">
            {events.data.items.length} event{events.data.items.length === 1 ? '' : 's'}
            {events.data.next !== null ? ' (the first 1,000; narrow the filter to see the rest)' : ''}
          </p>
          <ExportEvents path={path} filters={filters} />
          <AuditTable events={[...events.data.items].reverse()} />
        </>
      ) : null}
    </>
  );
}

/**
 * The filtered events as a file an auditor keeps: every page of them (not only the first 1,000 shown), one
 * JSON event per line with its sequence number and chain hashes, as the API returns them.
 */
function ExportEvents({ path, filters }: { path: string; filters: Record<string, string> }) {
  const { run, result, error, busy } = useAction<string>();
  const download = () =>
    run(async () => {
      const lines: string[] = [];
      let after: number | null = null;
      do {
        const page: { items: AuditEvent[]; next: number | null } = await api(
          'GET',
          after === null ? path : `${path}&after=${after}`,
        );
        for (const e of page.items) lines.push(JSON.stringify(e));
        after = page.next;
      } while (after !== null);
      const url = URL.createObjectURL(
        new Blob([lines.length ? `${lines.join('\n')}\n` : ''], { type: 'application/x-ndjson' }),
      );
      const a = document.createElement('a');
      a.href = url;
      const named = Object.entries(filters)
        .filter(([, v]) => v)
        .map(([k, v]) => `${k}-${v.replace(/[^a-z0-9.@-]+/gi, '_')}`)
        .join('_');
      a.download = `microapp-audit${named ? `_${named}` : ''}.jsonl`;
      a.click();
      URL.revokeObjectURL(url);
      return `Downloaded ${lines.length} event${lines.length === 1 ? '' : 's'} as ${a.download}.`;
    });
  return (
    <p>
      <button type="button" onClick={() => void download()} disabled={busy}>
        {busy ? 'Preparing the file…' : 'Download these events (JSON lines)'}
      </button>{' '}
      <ErrorNote error={error} />
      {result ? (
        <span role="status" className="muted">
          {result}
        </span>
      ) : null}
    </p>
  );
}

function VerifyChain() {
  const { run, result, error, busy } = useAction<VerifyResult>();
  return (
    <div className="card verify">
      <button
        type="button"
        className="primary"
        disabled={busy}
        onClick={() => run(() => api<VerifyResult>('GET', '/api/v1/audit/verify'))}
      >
        {busy ? 'Verifying…' : 'Verify the chain'}
      </button>
      <ErrorNote error={error} />
      {result ? (
        <p role="status" className={result.ok ? 'notice' : 'error'} data-testid="verify-result">
          {result.ok
            ? `The chain is intact: ${result.checked} events checked, head ${result.head.slice(0, 16)}…`
            : `The chain is broken at event ${result.broken.seq}: ${result.broken.reason}. ${result.checked} events checked before it.`}
        </p>
      ) : null}
    </div>
  );
}

const spaced = (key: string) => key.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
const valueText = (v: unknown): string =>
  Array.isArray(v)
    ? v.map(valueText).join(', ') || 'none'
    : v && typeof v === 'object'
      ? Object.entries(v)
          .map(([k, x]) => `${spaced(k)} ${valueText(x)}`)
          .join(', ')
      : String(v);

/** An event's details as words ("previous version 1.0.0"), not JSON; the export keeps them exact. */
function SummaryText({ summary }: { summary: Record<string, unknown> }) {
  const entries = Object.entries(summary ?? {});
  if (entries.length === 0) return null;
  return (
    <ul className="facts-inline">
      {entries.map(([k, v]) => (
        <li key={k}>
          <span className="muted">{spaced(k)}</span> {valueText(v)}
        </li>
      ))}
    </ul>
  );
}

/** Audit events, newest first. */
export function AuditTable({ events }: { events: AuditEvent[] }) {
  if (events.length === 0) return <p>No event matches.</p>;
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must take focus so keyboard users can scroll it
    <section className="table-scroll" tabIndex={0} aria-label="Audit events">
      <table className="audit">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.seq}>
              <td>{e.seq}</td>
              <td>
                <When at={e.occurredAt} />
              </td>
              <td>{e.actor}</td>
              <td>
                <code>{e.action}</code>
              </td>
              <td>{e.target}</td>
              <td className="summary">
                {e.reason ? <p>{e.reason}</p> : null}
                <SummaryText summary={e.summary} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
