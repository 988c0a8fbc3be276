import type { ReactNode } from 'react';
import type { ApiError } from './api.ts';

const tierWords: Record<string, string> = { low: 'Low risk', medium: 'Medium risk', high: 'High risk' };
const stateWords: Record<string, string> = {
  pending_review: 'Waiting for review',
  approved: 'Approved',
  rejected: 'Rejected',
  changes_requested: 'Changes requested',
};

/** The risk tier, in words as well as colour. */
export function TierBadge({ tier }: { tier: string }) {
  return <span className={`badge tier-${tier}`}>{tierWords[tier] ?? tier}</span>;
}

/** Where the app's approval stands. */
export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state}`}>{stateWords[state] ?? state}</span>;
}

/** A refusal from the API, read out to screen readers, with what to do next when the API says. */
export function ErrorNote({ error }: { error: ApiError | Error | null }) {
  if (!error) return null;
  const details = 'errors' in error ? error.errors : [];
  return (
    <div className="error" role="alert">
      <p>{error.message}</p>
      {details.length > 1 ? (
        <ul>
          {details.map((d) => (
            <li key={`${d.path}:${d.message}`}>
              {d.path ? <code>{d.path}</code> : null} {d.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** How an action the person took ended: the refusal, or the sentence that says what it did. */
export function Outcome({ error, said }: { error: ApiError | Error | null; said: ReactNode }) {
  return (
    <>
      <ErrorNote error={error} />
      {said ? (
        <p role="status" className="notice">
          {said}
        </p>
      ) : null}
    </>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** A titled block of a page. */
export function Section({ title, children, id }: { title: string; children: ReactNode; id?: string }) {
  const headingId = `${id ?? title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-heading`;
  return (
    <section className="card" id={id} aria-labelledby={headingId}>
      <h2 id={headingId}>{title}</h2>
      {children}
    </section>
  );
}

/** An ISO timestamp as the reader's local date and time, with the exact UTC value on hover. */
export function When({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">never</span>;
  const d = new Date(at);
  return (
    <time dateTime={at} title={at}>
      {d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}
    </time>
  );
}

/** Labelled values, as a description list; rows whose value is null are left out. */
export function Facts({ rows, className }: { rows: [string, ReactNode][]; className?: string }) {
  return (
    <dl className={className ? `facts ${className}` : 'facts'}>
      {rows
        .filter(([, v]) => v !== null)
        .map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
    </dl>
  );
}

/** Each reason a risk score went up, with its points, as the risk policy explained it. */
export function RiskFactors({ factors }: { factors: { id: string; explanation: string; points: number }[] }) {
  return (
    <ul>
      {factors.map((f) => (
        <li key={f.id}>
          {f.explanation} <span className="muted">(+{f.points})</span>
        </li>
      ))}
    </ul>
  );
}
