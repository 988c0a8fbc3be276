import { useState } from 'react';
import { ApiError, api } from '../api.ts';
import { ChangesTable } from '../changes.tsx';
import type { AppView, Assessment, Finding, RevisionView, VersionItem } from '../contracts.ts';
import { type Decision, PolicyResults } from '../policy-results.tsx';
import { PolicyVerdict } from '../policy-verdict.tsx';
import { Link } from '../router.tsx';
import { hasRole, useSession } from '../session.tsx';
import { ErrorNote, Loading, Outcome, RiskFactors, Section, StateBadge, TierBadge } from '../ui.tsx';
import { useApi } from '../use-api.ts';
import { Review as Answers } from './new-app-questions.tsx';

/** The reviewer's inbox: each app waiting for them, with everything needed to decide side by side. */
export function ReviewsPage() {
  const session = useSession();
  const reviewer = hasRole(session, 'reviewer');
  const queue = useApi<{ items: AppView[] }>(`/api/v1/approvals${reviewer ? '?mine=true' : ''}`);
  return (
    <>
      <h1 tabIndex={-1}>Reviews</h1>
      <p className="muted">
        {reviewer
          ? 'Apps waiting for a decision you can make. You never see your own apps here: nobody reviews their own.'
          : 'Every app waiting for review. Only reviewers can decide.'}
      </p>
      <ErrorNote error={queue.error} />
      {queue.loading && !queue.data ? <Loading what="the review queue" /> : null}
      {queue.data?.items.length === 0 ? <p role="status">Nothing is waiting for you.</p> : null}
      {queue.data?.items.map((a) => (
        <Review key={`${a.name}:${a.revision}`} app={a} canDecide={reviewer} onDecided={queue.reload} />
      ))}
    </>
  );
}

function Review({
  app: a,
  canDecide,
  onDecided,
}: {
  app: AppView;
  canDecide: boolean;
  onDecided: () => void;
}) {
  const revisions = useApi<{ items: RevisionView[] }>(`/api/v1/apps/${a.name}/revisions`);
  const versions = useApi<{ items: VersionItem[] }>(`/api/v1/apps/${a.name}/versions`);
  const decisions = useApi<{ items: Decision[] }>(`/api/v1/policies/decisions?subject=${a.name}&limit=20`);
  const check = useApi<Assessment>('/api/v1/assessments', a.manifest);
  const latest = versions.data?.items[0];
  const headingId = `review-${a.name}`;
  return (
    <article className="review card" aria-labelledby={headingId}>
      <h2 id={headingId}>
        <Link href={`/apps/${a.name}`}>{a.name}</Link> <span className="muted">revision {a.revision}</span>
      </h2>
      <p className="badges">
        <TierBadge tier={a.tier} /> <StateBadge state={a.state} />{' '}
        <span className="muted">owner {a.owner}</span>
      </p>
      <p>{a.manifest.purpose}</p>
      <div className="grid">
        <Section title="Why this tier" id={`${a.name}-factors`}>
          <RiskFactors factors={a.assessment.factors} />
          <p>
            Waiting for:{' '}
            {a.approval.missing
              .map((s) => (s.specialty ? `${s.specialty} review` : 'any reviewer'))
              .join(', ') || 'nobody'}
          </p>
        </Section>
        <Section title="What changed" id={`${a.name}-changes`}>
          {revisions.data ? (
            <ChangesTable revisions={revisions.data.items} current={a.revision} />
          ) : (
            <Loading what="revisions" />
          )}
        </Section>
        <Section title="The answers" id={`${a.name}-manifest`}>
          <Answers manifest={a.manifest} lifetimeDays={null} />
          <details>
            <summary>The manifest as registered</summary>
            {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling block must take focus so keyboard users can scroll it */}
            <pre className="manifest" tabIndex={0}>
              {JSON.stringify(a.manifest, null, 2)}
            </pre>
          </details>
        </Section>
        <Section title="Scan findings" id={`${a.name}-findings`}>
          {versions.error ? <ErrorNote error={versions.error} /> : null}
          {versions.data && !latest ? <p>No version has been built yet: nothing to scan.</p> : null}
          {latest ? (
            <>
              <p>
                Version {latest.version}: scan {latest.scan.passed ? 'passed' : 'failed'}
              </p>
              <Findings findings={latest.scan.findings} />
            </>
          ) : null}
        </Section>
        <Section title="Policy results" id={`${a.name}-policy`}>
          {/* Asked now, as its deploy would ask: a domain blocked since the app registered shows here. */}
          {check.error ? <ErrorNote error={check.error} /> : null}
          {check.data ? (
            <PolicyVerdict
              policy={check.data.policy}
              stage="deploy"
              advice="Its deploy would be refused as it stands: ask the owner to change it before you approve."
            />
          ) : null}
          {decisions.error ? <ErrorNote error={decisions.error} /> : null}
          {decisions.data?.items.length === 0 ? <p>No policy decision recorded for this app.</p> : null}
          {decisions.data?.items.length ? <PolicyResults decisions={decisions.data.items} /> : null}
        </Section>
      </div>
      {canDecide ? <DecisionForm app={a} onDecided={onDecided} /> : null}
    </article>
  );
}

/** Scan findings with the versions that fix them. */
export function Findings({ findings }: { findings: Finding[] }) {
  if (findings.length === 0) return <p>No known vulnerability in any dependency.</p>;
  return (
    <table>
      <caption className="sr-only">Vulnerabilities found</caption>
      <thead>
        <tr>
          <th scope="col">Severity</th>
          <th scope="col">Package</th>
          <th scope="col">Advisory</th>
          <th scope="col">Fixed in</th>
        </tr>
      </thead>
      <tbody>
        {findings.map((f) => (
          <tr key={`${f.ids[0]}:${f.package}@${f.version}`}>
            <td>
              <span className={`badge sev-${f.severity}`}>{f.severity}</span>
            </td>
            <td>
              {f.package}@{f.version}
            </td>
            <td>
              {f.ids.join(', ')}: {f.summary}
              {f.exception
                ? ` (exception until ${f.exception.expiresAt.slice(0, 10)}: ${f.exception.reason})`
                : ''}
            </td>
            <td>{f.fixed.join(', ') || 'no fix yet'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DecisionForm({ app: a, onDecided }: { app: AppView; onDecided: () => void }) {
  const [comment, setComment] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const decide = async (decision: 'approve' | 'reject' | 'request_changes') => {
    setBusy(true);
    setError(null);
    try {
      const body = comment.trim() ? { decision, comment: comment.trim() } : { decision };
      await api('POST', `/api/v1/apps/${a.name}/reviews`, body);
      setDone(
        decision === 'approve' ? 'Approved.' : decision === 'reject' ? 'Rejected.' : 'Changes requested.',
      );
      setTimeout(onDecided, 1500);
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'network', String(e), []));
    } finally {
      setBusy(false);
    }
  };
  const id = `comment-${a.name}`;
  return (
    <form className="decision" onSubmit={(e) => e.preventDefault()} aria-label={`Decide on ${a.name}`}>
      <div className="field">
        <label htmlFor={id}>Comment (required to reject or request changes)</label>
        <textarea
          id={id}
          rows={2}
          maxLength={4000}
          value={comment}
          onChange={(e) => setComment(e.target.value)}
        />
      </div>
      <Outcome error={error} said={done} />
      <div className="actions">
        <button type="button" className="primary" disabled={busy} onClick={() => decide('approve')}>
          Approve {a.name}
        </button>
        <button type="button" disabled={busy} onClick={() => decide('request_changes')}>
          Request changes
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => decide('reject')}>
          Reject
        </button>
      </div>
    </form>
  );
}
