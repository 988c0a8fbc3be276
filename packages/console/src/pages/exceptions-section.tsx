// An app's vulnerability exceptions: which findings a security reviewer accepted, why and until when;
// reviewers accept findings and revoke exceptions here. Every decision is the API's.
import { useId } from 'react';
import { api } from '../api.ts';
import type { AppView, ExceptionView } from '../contracts.ts';
import { hasRole, useSession } from '../session.tsx';
import { ErrorNote, Loading, Outcome, Section } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';

const day = (iso: string) => iso.slice(0, 10);

function stateOf(x: ExceptionView) {
  if (x.state === 'revoked') return `revoked by ${x.revokedBy} on ${day(x.revokedAt ?? '')}`;
  if (x.state === 'expired') return `expired on ${day(x.expiresAt)}`;
  return `accepted until ${day(x.expiresAt)}`;
}

/** The exceptions of one app, and (for reviewers) the form that accepts findings and the revoke buttons. */
export function ExceptionsSection({ app }: { app: AppView }) {
  const session = useSession();
  const list = useApi<{ items: ExceptionView[] }>(`/api/v1/apps/${app.name}/scan-exceptions`);
  const action = useAction<string>();
  const run = (what: () => Promise<string>) =>
    action.run(async () => {
      const said = await what();
      list.reload();
      return said;
    });
  const canRevoke = hasRole(session, 'reviewer', 'admin');
  const canGrant = hasRole(session, 'reviewer') && app.owner !== session.user.email;
  const items = list.data?.items ?? [];
  return (
    <Section title="Vulnerability exceptions">
      <p className="muted">
        A finding an exception accepts does not block builds, deploys or renewals until the exception ends;
        deploys check again, so a revoked or expired one blocks at once.
      </p>
      <ErrorNote error={list.error} />
      {list.loading && !list.data ? <Loading what="the exceptions" /> : null}
      {list.data && items.length === 0 ? <p>No finding of {app.name} has been accepted.</p> : null}
      {items.length ? (
        <table>
          <caption className="sr-only">Exceptions of {app.name}, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Advisory</th>
              <th scope="col">Package</th>
              <th scope="col">State</th>
              <th scope="col">Why</th>
              <th scope="col">Accepted by</th>
              {canRevoke ? <th scope="col">Action</th> : null}
            </tr>
          </thead>
          <tbody>
            {items.map((x) => (
              <tr key={x.id}>
                <td>{x.advisory}</td>
                <td>{x.package === '*' ? 'every package' : x.package}</td>
                <td>
                  <span className={`badge exception-${x.state}`}>{x.state}</span> {stateOf(x)}
                </td>
                <td>{x.reason}</td>
                <td>{x.approvedBy}</td>
                {canRevoke ? (
                  <td>
                    {x.state === 'live' ? (
                      <button
                        type="button"
                        disabled={action.busy}
                        aria-label={`Revoke the exception for ${x.advisory} in ${x.package}`}
                        onClick={() =>
                          run(async () => {
                            await api('DELETE', `/api/v1/apps/${app.name}/scan-exceptions/${x.id}`);
                            return `The exception for ${x.advisory} is revoked: the finding blocks ${app.name} again from its next scan or deploy.`;
                          })
                        }
                      >
                        Revoke
                      </button>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {canGrant ? <GrantForm name={app.name} busy={action.busy} run={run} /> : null}
      <Outcome error={action.error} said={action.result} />
    </Section>
  );
}

function GrantForm({
  name,
  busy,
  run,
}: {
  name: string;
  busy: boolean;
  run: (what: () => Promise<string>) => Promise<void>;
}) {
  const id = useId();
  const now = Date.now();
  const min = new Date(now + 86_400_000).toISOString().slice(0, 10);
  const max = new Date(now + 180 * 86_400_000).toISOString().slice(0, 10);
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const data = new FormData(form);
        const advisories = String(data.get('advisories') ?? '')
          .split(/[\s,]+/)
          .filter(Boolean);
        const body = {
          advisories,
          package: String(data.get('package') ?? '').trim() || '*',
          reason: String(data.get('reason') ?? '').trim(),
          expires: String(data.get('expires') ?? ''),
        };
        void run(async () => {
          const r = await api<{ items: ExceptionView[] }>(
            'POST',
            `/api/v1/apps/${name}/scan-exceptions`,
            body,
          );
          form.reset();
          return `Accepted ${r.items.map((x) => x.advisory).join(', ')} for ${body.package === '*' ? 'every package' : body.package} until ${body.expires}.`;
        });
      }}
    >
      <h3>Accept findings (security reviewers)</h3>
      <div className="field">
        <label htmlFor={`${id}-advisories`}>Advisory ids, as the scan shows them</label>
        <input
          id={`${id}-advisories`}
          name="advisories"
          required
          placeholder="GHSA-xxxx-xxxx-xxxx CVE-2024-12345"
          aria-describedby={`${id}-advisories-help`}
        />
        <p className="muted" id={`${id}-advisories-help`}>
          One or several, separated by spaces or commas. Each must be in the advisory data.
        </p>
      </div>
      <div className="field">
        <label htmlFor={`${id}-package`}>Package (leave empty for every package of the app)</label>
        <input id={`${id}-package`} name="package" maxLength={214} placeholder="lodash" />
      </div>
      <div className="field">
        <label htmlFor={`${id}-reason`}>Why the risk is acceptable</label>
        <textarea id={`${id}-reason`} name="reason" rows={2} minLength={10} maxLength={2000} required />
      </div>
      <div className="field">
        <label htmlFor={`${id}-expires`}>Until (at most 180 days)</label>
        <input id={`${id}-expires`} name="expires" type="date" min={min} max={max} required />
      </div>
      <button type="submit" disabled={busy}>
        Accept until that date
      </button>
    </form>
  );
}
