import { useState } from 'react';
import { api } from '../api.ts';
import type { CheckpointView, DelegationView } from '../contracts.ts';
import { Link } from '../router.tsx';
import { ErrorNote, Facts, Loading, Section, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';

const toolWords: Record<string, string> = {
  register_app: 'register or change an app',
  build_app: 'build an app',
  deploy_app: 'deploy an app',
  decommission_app: 'decommission an app',
  request_escalation: 'do something beyond what you allowed',
  merge_change: 'merge a change it pushed to an app',
};

type Manifest = {
  name?: string;
  purpose?: string;
  dataClasses?: string[];
  integrations?: { egress?: string[]; connectors?: string[] };
  secrets?: string[];
};

const list = (xs: string[] | undefined) => (xs?.length ? xs.join(', ') : 'none');

/** Exactly what will happen if the person approves: the call's arguments in words, not JSON. */
function WhatHappens({ request: r }: { request: CheckpointView }) {
  const input = r.input as Record<string, unknown>;
  if (r.tool === 'register_app') {
    const m = (input.manifest ?? {}) as Manifest;
    return (
      <Facts
        rows={[
          ['App', m.name ?? r.app],
          ['Purpose', m.purpose ?? null],
          ['Data it handles', list(m.dataClasses)],
          ['Outside hosts it may reach', list(m.integrations?.egress)],
          ['Connectors', list(m.integrations?.connectors)],
          ['Secrets', list(m.secrets)],
        ]}
      />
    );
  }
  if (r.tool === 'deploy_app')
    return (
      <Facts
        rows={[
          ['App', r.app],
          ['Version', String(input.version ?? '')],
          ['Where', input.environment === 'live' ? "Live, for the app's audience" : 'Preview'],
        ]}
      />
    );
  if (r.tool === 'decommission_app')
    return (
      <Facts
        rows={[
          ['App', r.app],
          ['Reason the agent gave', String(input.reason ?? '')],
        ]}
      />
    );
  if (r.tool === 'merge_change')
    return (
      <Facts
        rows={[
          ['App', r.app],
          [
            'Change',
            <Link key="change" href={`/apps/${r.app}/changes/${String(input.change ?? '')}`}>
              #{String(input.change ?? '')}: {String(input.title ?? '')} (read its code and checks)
            </Link>,
          ],
          ['Commit it pushed', `${String(input.head ?? '').slice(0, 12)} on ${String(input.branch ?? '')}`],
          ['Then', 'it merges into main once its checks and reviews pass, and the platform ships it'],
        ]}
      />
    );
  if (r.tool === 'request_escalation')
    return (
      <Facts
        rows={[
          ['App', r.app],
          ['What the agent asks', String(input.request ?? '')],
        ]}
      />
    );
  return <Facts rows={[['App', r.app]]} />;
}

const stateWords: Record<string, string> = {
  pending: 'Waiting for you',
  approved: 'Approved',
  refused: 'Refused',
  expired: 'Expired',
  used: 'Approved and done',
};

/** One request an agent waits on, with the person's answer. */
function RequestCard({
  request: r,
  onDecided,
}: {
  request: CheckpointView;
  onDecided: (decided: CheckpointView) => void;
}) {
  const [note, setNote] = useState('');
  const action = useAction<CheckpointView>();
  const decide = (verb: 'approve' | 'refuse') =>
    action.run(async () => {
      const out = await api<CheckpointView>(
        'POST',
        `/api/v1/agents/requests/${r.id}/${verb}`,
        note ? { note } : {},
      );
      onDecided(out);
      return out;
    });
  const headingId = `request-${r.id}`;
  return (
    <article className="card" aria-labelledby={headingId}>
      <h3 id={headingId}>
        {r.agent} asks to {toolWords[r.tool] ?? r.tool.replace(/_/g, ' ')}
        {r.app ? ` (${r.app})` : ''}
      </h3>
      <p className="muted">
        {stateWords[r.state] ?? r.state} · asked <When at={r.createdAt} />
        {r.model ? ` · model ${r.model}` : ''}
      </p>
      <p>The policy asks you because it:</p>
      <ul>
        {r.reasons.map((x) => (
          <li key={x}>{x}</li>
        ))}
      </ul>
      <WhatHappens request={r} />
      {r.state === 'pending' ? (
        <div className="actions">
          <label htmlFor={`note-${r.id}`}>A note for the record (optional)</label>
          <textarea
            id={`note-${r.id}`}
            value={note}
            maxLength={500}
            onChange={(e) => setNote(e.target.value)}
          />
          <p>
            <button
              type="button"
              className="primary"
              disabled={action.busy}
              onClick={() => decide('approve')}
            >
              Approve
            </button>{' '}
            <button type="button" disabled={action.busy} onClick={() => decide('refuse')}>
              Refuse
            </button>
          </p>
        </div>
      ) : r.decidedBy ? (
        <p>
          {stateWords[r.state]} by {r.decidedBy} <When at={r.decidedAt} />
          {r.note ? `: ${r.note}` : ''}
        </p>
      ) : null}
      <ErrorNote error={action.error} />
      {action.result ? (
        <p role="status">
          {action.result.state === 'approved'
            ? r.tool === 'merge_change'
              ? 'Approved: the change merges once its checks and reviews pass, then goes live.'
              : 'Approved: the agent goes on at its next call.'
            : 'Refused: the agent is told so.'}
        </p>
      ) : null}
    </article>
  );
}

/** The agents acting for the signed-in person: what waits for them, and each agent's delegation. */
export function AgentsPage() {
  const pending = useApi<{ items: CheckpointView[] }>('/api/v1/agents/requests?state=pending');
  // The answered request leaves the list: what was decided is said here, where it stays.
  const [said, setSaid] = useState<string | null>(null);
  const agents = useApi<{ items: DelegationView[] }>('/api/v1/agents');
  const revoke = useAction<DelegationView>();
  return (
    <>
      <h1 tabIndex={-1}>Agents</h1>
      <p className="muted">
        AI agents you allowed to build apps for you. They never approve apps, read secrets or change policy,
        and some of their steps wait for you here.
      </p>
      <Section title="Waiting for you" id="agent-requests">
        <ErrorNote error={pending.error} />
        {pending.loading && !pending.data ? <Loading what="requests" /> : null}
        {said ? <p role="status">{said}</p> : null}
        {pending.data?.items.length === 0 && !said ? <p>No agent is waiting for you.</p> : null}
        {pending.data?.items.map((r) => (
          <RequestCard
            key={r.id}
            request={r}
            onDecided={(d) => {
              setSaid(
                d.state === 'approved'
                  ? d.tool === 'merge_change'
                    ? `Approved: ${d.agent}'s change merges once its checks and reviews pass, then goes live.`
                    : `Approved: ${d.agent} goes on at its next call.`
                  : `Refused: ${d.agent} is told so${d.note ? `, with your note` : ''}.`,
              );
              pending.reload();
            }}
          />
        ))}
      </Section>
      <Section title="Agents acting for you" id="agent-delegations">
        <ErrorNote error={agents.error ?? revoke.error} />
        {agents.data?.items.length === 0 ? (
          <p>No agent acts for you. Connect one as docs/agents.md says.</p>
        ) : null}
        {agents.data?.items.length ? (
          <table>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">Model</th>
                <th scope="col">Until</th>
                <th scope="col">Calls</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {agents.data.items.map((d) => (
                <tr key={d.id}>
                  <td>
                    {d.agent.client} {d.agent.version ?? ''}
                  </td>
                  <td>{d.agent.model ?? 'not declared'}</td>
                  <td>
                    <When at={d.expiresAt} />
                  </td>
                  <td>{d.calls}</td>
                  <td>{d.state}</td>
                  <td>
                    {d.state === 'active' ? (
                      <button
                        type="button"
                        disabled={revoke.busy}
                        onClick={() =>
                          revoke.run(async () => {
                            const out = await api<DelegationView>('DELETE', `/api/v1/agents/${d.id}`);
                            agents.reload();
                            pending.reload();
                            return out;
                          })
                        }
                      >
                        Revoke {d.agent.client}
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  );
}

/** One request, where the notification's link leads. */
export function AgentRequestPage({ id }: { id: string }) {
  const request = useApi<CheckpointView>(`/api/v1/agents/requests/${id}`);
  return (
    <>
      <h1 tabIndex={-1}>A request from your agent</h1>
      <ErrorNote error={request.error} />
      {request.loading && !request.data ? <Loading what="the request" /> : null}
      {request.data ? <RequestCard request={request.data} onDecided={() => request.reload()} /> : null}
      <p>
        <Link href="/agents">Every agent and request</Link>
      </p>
    </>
  );
}
