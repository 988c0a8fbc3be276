import { useState } from 'react';
import { api } from '../api.ts';
import { ChangesTable } from '../changes.tsx';
import type { AppView, AuditEvent, LifecycleView, RevisionView } from '../contracts.ts';
import { type Decision, PolicyResults } from '../policy-results.tsx';
import { useFragmentTarget, useLocation } from '../router.tsx';
import { hasRole, useSession } from '../session.tsx';
import { ErrorNote, Facts, Loading, RiskFactors, Section, StateBadge, TierBadge, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';
import { LogsSection, UsageSection } from './activity-section.tsx';
import { ApprovalStanding } from './approval-standing.tsx';
import { AskForAccess } from './ask-access.tsx';
import { AuditTable } from './audit-page.tsx';
import { DeploySection } from './deploy-section.tsx';
import { ExceptionsSection } from './exceptions-section.tsx';
import { LifecycleAsks } from './lifecycle-asks.tsx';
import { ManageSection } from './manage-section.tsx';
import { RepositorySection } from './repository-section.tsx';
import { VersionsSection } from './versions-section.tsx';

/** One app: who owns it, its risk and approval, versions and findings, use, lifecycle and audit trail. */
export function AppPage({ name }: { name: string }) {
  const { search } = useLocation();
  const app = useApi<AppView>(`/api/v1/apps/${name}`);
  const session = useSession();
  const [deployed, setDeployed] = useState(0);
  useFragmentTarget(Boolean(app.data));
  if (app.error?.status === 404)
    return (
      <>
        <h1 tabIndex={-1}>No app called {name}</h1>
        <p>It does not exist, or it belongs to a department whose apps you cannot see.</p>
        <AskForAccess name={name} focus={search.get('ask') === '1'} />
      </>
    );
  if (!app.data) return app.error ? <ErrorNote error={app.error} /> : <Loading what={name} />;
  const a = app.data;
  return (
    <>
      <h1 tabIndex={-1}>{a.name}</h1>
      {search.get('registered') ? (
        <p className="notice" role="status">
          Registered.{' '}
          {a.state === 'approved'
            ? 'It is approved and can be built and deployed.'
            : 'Reviewers have been asked to look at it; you will be told when they decide.'}
        </p>
      ) : null}
      {search.get('changed') ? (
        <p className="notice" role="status">
          Changes sent (revision {a.revision}).{' '}
          {a.state === 'approved'
            ? 'Nothing that needs a review changed: it stays approved.'
            : 'Reviewers have been asked to look again; you will be told when they decide.'}
        </p>
      ) : null}
      <p className="badges">
        <TierBadge tier={a.tier} /> <StateBadge state={a.state} />
      </p>
      <p>{a.manifest.purpose}</p>
      <div className="grid">
        <Section title="Overview">
          <Facts
            rows={[
              ['Owner', a.owner],
              ['Department', a.department ?? 'none'],
              ['Data', a.manifest.dataClasses.join(', ')],
              ['Calls', a.manifest.integrations?.egress?.join(', ') || 'nothing outside'],
              [
                'Template',
                a.manifest.template
                  ? `${a.manifest.template.name} ${a.manifest.template.version}`
                  : 'own code',
              ],
              [
                'Registered',
                <>
                  <When at={a.createdAt} /> (revision {a.revision})
                </>,
              ],
            ]}
          />
        </Section>
        <Section title="Risk and approval">
          <p>
            Risk score {a.assessment.score} of 100{' '}
            <span className="muted">(rules {a.assessment.rulesVersion})</span>
          </p>
          <RiskFactors factors={a.assessment.factors} />
          <ApprovalStanding app={a} canChange={a.owner === session.user.email || hasRole(session, 'admin')} />
          {a.approval.reviews.length ? (
            <ul>
              {a.approval.reviews.map((r) => (
                <li key={r.id}>
                  <strong>{r.decision.replace('_', ' ')}</strong> by {r.reviewer}
                  {r.specialty ? ` (${r.specialty})` : ''} on revision {r.revision}, <When at={r.at} />
                  {r.comment ? `: ${r.comment}` : ''}
                </li>
              ))}
            </ul>
          ) : null}
        </Section>
        {a.scorecard ? (
          <Section title="Scorecard">
            <p>
              {a.scorecard.passed} of {a.scorecard.total} checks pass
            </p>
            <ul className="checks">
              {a.scorecard.checks.map((c) => (
                <li key={c.id}>
                  <span className={c.ok ? 'ok' : 'bad'}>{c.ok ? 'Pass' : 'Fail'}</span> {c.detail}
                </li>
              ))}
            </ul>
          </Section>
        ) : null}
        <LifecycleSection
          name={a.name}
          owner={a.owner}
          key={`lifecycle-${deployed}`}
          onChanged={() => app.reload()}
        />
      </div>
      {a.owner === session.user.email || hasRole(session, 'admin') ? (
        <DeploySection
          app={a}
          onDeployed={() => {
            setDeployed((n) => n + 1);
            app.reload();
          }}
        />
      ) : null}
      {a.owner === session.user.email || hasRole(session, 'admin') ? (
        <ManageSection
          name={a.name}
          onChanged={() => {
            setDeployed((n) => n + 1);
            app.reload();
          }}
        />
      ) : null}
      <RepositorySection name={a.name} key={`repo-${deployed}`} />
      <RevisionsSection name={a.name} current={a.revision} />
      <VersionsSection
        name={a.name}
        key={`versions-${deployed}`}
        canDeploy={a.owner === session.user.email || hasRole(session, 'admin')}
        template={Boolean(a.manifest.template)}
        onChanged={() => app.reload()}
      />
      <ExceptionsSection app={a} key={`exceptions-${deployed}`} />
      <AccessSection app={a} />
      {hasRole(session, 'reviewer', 'admin', 'auditor') ? <PolicySection name={a.name} /> : null}
      <UsageSection name={a.name} />
      {a.owner === session.user.email || hasRole(session, 'admin') ? (
        <LogsSection name={a.name} key={`logs-${deployed}`} />
      ) : null}
      <Section title="Audit trail">
        <AppAudit name={a.name} key={`audit-${deployed}`} />
      </Section>
    </>
  );
}

/** What the policy engine decided about the app lately: the decision log, newest result per rule. */
function PolicySection({ name }: { name: string }) {
  const decisions = useApi<{ items: Decision[] }>(`/api/v1/policies/decisions?subject=${name}&limit=50`);
  return (
    <Section title="Policy decisions">
      <ErrorNote error={decisions.error} />
      {decisions.data?.items.length === 0 ? <p>No policy decision recorded for this app.</p> : null}
      {decisions.data?.items.length ? <PolicyResults decisions={decisions.data.items} /> : null}
    </Section>
  );
}

function LifecycleSection({
  name,
  owner,
  onChanged,
}: {
  name: string;
  owner: string;
  onChanged: () => void;
}) {
  const l = useApi<LifecycleView>(`/api/v1/apps/${name}/lifecycle`);
  return (
    <Section title="Lifecycle">
      {l.error ? <ErrorNote error={l.error} /> : null}
      {l.data ? (
        <Facts
          rows={[
            ['Stage', l.data.stage.replace('_', ' ')],
            ['Expires', <When key="expires" at={l.data.expiresAt} />],
            ['Last used', <When key="last-used" at={l.data.lastUsedAt} />],
            [
              'Next step',
              l.data.nextStep ? (
                <>
                  {l.data.nextStep.action} on <When at={l.data.nextStep.at} />
                </>
              ) : (
                'none scheduled'
              ),
            ],
            ['Exempt', l.data.exemption ? `${l.data.exemption.reason} (${l.data.exemption.by})` : null],
          ]}
        />
      ) : l.loading ? (
        <Loading what="the lifecycle" />
      ) : null}
      {l.data ? (
        <LifecycleAsks
          name={name}
          owner={owner}
          lifecycle={l.data}
          onChanged={() => {
            l.reload();
            onChanged();
          }}
        />
      ) : null}
    </Section>
  );
}

function RevisionsSection({ name, current }: { name: string; current: number }) {
  const r = useApi<{ items: RevisionView[] }>(`/api/v1/apps/${name}/revisions`);
  return (
    <Section title="What changed">
      {r.error ? <ErrorNote error={r.error} /> : null}
      {r.data ? <ChangesTable revisions={r.data.items} current={current} /> : null}
    </Section>
  );
}

type AccessDecision = {
  app: string;
  user: string;
  allowed: boolean;
  reason: string | null;
  revision: string;
};

/** Who may open the app: its audience, and the access policy's answer for a person (yourself, or anyone for
 * reviewers, admins and auditors). */
function AccessSection({ app }: { app: AppView }) {
  const session = useSession();
  const [email, setEmail] = useState(session.user.email);
  const { run, result, error, busy } = useAction<AccessDecision>();
  const audience = app.manifest.audience;
  return (
    <Section title="Who may use it">
      <p>
        Audience:{' '}
        {audience?.department ? `the ${audience.department} department` : 'not limited to a department'}
        {audience?.maxUsers ? `, up to ${audience.maxUsers} people` : ''}; its owner, reviewers and admins
        too. The access policy (<code>microapp.access</code>) decides each request.
      </p>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void run(() =>
            api<AccessDecision>(
              'GET',
              `/api/v1/apps/${app.name}/access?user=${encodeURIComponent(email.trim())}`,
            ),
          );
        }}
      >
        {hasRole(session, 'reviewer', 'admin', 'auditor') ? (
          <>
            <label htmlFor="access-email" className="sr-only">
              E-mail to check
            </label>
            <input id="access-email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
          </>
        ) : null}
        <button type="submit" disabled={busy}>
          {hasRole(session, 'reviewer', 'admin', 'auditor') ? 'Check access' : 'Check my access'}
        </button>
      </form>
      <ErrorNote error={error} />
      {result ? (
        <p role="status" className={result.allowed ? 'notice' : 'error'}>
          {result.user} {result.allowed ? 'may' : 'may not'} use {result.app}
          {result.reason ? `: ${result.reason}` : '.'}{' '}
          <span className="muted">(policy {result.revision})</span>
        </p>
      ) : null}
    </Section>
  );
}

function AppAudit({ name }: { name: string }) {
  const e = useApi<{ items: AuditEvent[] }>(`/api/v1/audit/events?app=${name}&limit=200`);
  if (e.error) return <ErrorNote error={e.error} />;
  if (!e.data) return <Loading what="the audit trail" />;
  return <AuditTable events={[...e.data.items].reverse()} />;
}
