import { useState } from 'react';
import { api } from '../api.ts';
import { ChangesTable } from '../changes.tsx';
import type {
  AppView,
  AuditEvent,
  LifecycleView,
  RevisionView,
  UsageSummary,
  VersionItem,
} from '../contracts.ts';
import { type Decision, PolicyResults } from '../policy-results.tsx';
import { useLocation } from '../router.tsx';
import { hasRole, useSession } from '../session.tsx';
import { ErrorNote, Facts, Loading, RiskFactors, Section, StateBadge, TierBadge, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';
import { AuditTable } from './audit-page.tsx';
import { DeploySection } from './deploy-section.tsx';
import { ManageSection } from './manage-section.tsx';
import { Findings } from './reviews-page.tsx';

/** One app: who owns it, its risk and approval, versions and findings, use, lifecycle and audit trail. */
export function AppPage({ name }: { name: string }) {
  const { search } = useLocation();
  const app = useApi<AppView>(`/api/v1/apps/${name}`);
  const session = useSession();
  const [deployed, setDeployed] = useState(0);
  if (app.error?.status === 404)
    return (
      <>
        <h1 tabIndex={-1}>No app called {name}</h1>
        <p>It does not exist, or it belongs to a department whose apps you cannot see.</p>
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
            Score {a.assessment.score} under <code>{a.assessment.rulesVersion}</code>
          </p>
          <RiskFactors factors={a.assessment.factors} />
          <p>
            {a.approval.missing.length === 0
              ? 'No review is missing.'
              : `Waiting for: ${a.approval.missing.map((s) => (s.specialty ? `a ${s.specialty} reviewer` : 'a reviewer')).join(', ')}.`}
          </p>
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
        <LifecycleSection name={a.name} key={`lifecycle-${deployed}`} />
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
      <RevisionsSection name={a.name} current={a.revision} />
      <VersionsSection
        name={a.name}
        key={`versions-${deployed}`}
        canDeploy={a.owner === session.user.email || hasRole(session, 'admin')}
        onChanged={() => app.reload()}
      />
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

function LifecycleSection({ name }: { name: string }) {
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

type Deployment = {
  id: string;
  version: string;
  env: 'live' | 'preview';
  state: string;
  startedBy: string;
  startedAt: string;
  stoppedAt: string | null;
  /** Where it answers, while it runs. */
  url: string | null;
};

function VersionsSection({
  name,
  canDeploy,
  onChanged,
}: {
  name: string;
  canDeploy: boolean;
  onChanged: () => void;
}) {
  const v = useApi<{ items: VersionItem[] }>(`/api/v1/apps/${name}/versions`);
  const d = useApi<{ items: Deployment[] }>(`/api/v1/apps/${name}/deployments`);
  const { run, result: message, error } = useAction<string>();
  const act = (what: () => Promise<string>) =>
    run(async () => {
      const said = await what();
      d.reload();
      onChanged();
      return said;
    });
  const running = (env: string) => d.data?.items.find((x) => x.env === env && x.state === 'running');
  const live = running('live');
  const preview = running('preview');
  return (
    <Section title="Versions and deployments">
      {v.error ? <ErrorNote error={v.error} /> : null}
      <p>
        Live: {live?.url ? <a href={live.url}>{live.version}</a> : 'not running'} · Preview (you and
        reviewers): {preview?.url ? <a href={preview.url}>{preview.version}</a> : 'not running'}
      </p>
      {v.data && v.data.items.length === 0 ? (
        <p>
          No version yet. Build one with <code>microapp ci</code> in the app's folder; it is tested, scanned,
          signed and published here.
        </p>
      ) : null}
      {v.data?.items.map((x) => (
        <details key={x.version}>
          <summary>
            <strong>{x.version}</strong> by {x.publishedBy}, <When at={x.publishedAt} /> ·{' '}
            {x.scan.passed ? 'scan passed' : 'scan failed'} · {x.scan.findings.length} finding
            {x.scan.findings.length === 1 ? '' : 's'} · {x.sbomComponents} components
          </summary>
          <p>
            Digest <code className="digest">{x.digest}</code>
          </p>
          <Findings findings={x.scan.findings} />
          <Verification name={name} version={x.version} />
          <Components name={name} version={x.version} count={x.sbomComponents} />
          {canDeploy ? (
            <p className="actions">
              <button
                type="button"
                onClick={() =>
                  act(async () => {
                    await api('POST', `/api/v1/apps/${name}/deployments`, {
                      version: x.version,
                      env: 'preview',
                    });
                    return `${x.version} is running in preview: try it, then promote it.`;
                  })
                }
              >
                Try {x.version} in preview
              </button>
              <button
                type="button"
                className="primary"
                onClick={() =>
                  act(async () => {
                    await api('POST', `/api/v1/apps/${name}/promotions`, { version: x.version });
                    return `${x.version} is live.`;
                  })
                }
              >
                Promote {x.version} to live
              </button>
            </p>
          ) : null}
        </details>
      ))}
      <ErrorNote error={error} />
      {message ? (
        <p role="status" className="notice">
          {message}
        </p>
      ) : null}
      {d.data?.items.length ? (
        <table>
          <caption>Deployment history</caption>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Version</th>
              <th scope="col">Where</th>
              <th scope="col">State</th>
              <th scope="col">By</th>
            </tr>
          </thead>
          <tbody>
            {d.data.items.map((x) => (
              <tr key={x.id}>
                <td>
                  <When at={x.startedAt} />
                </td>
                <td>{x.version}</td>
                <td>{x.env}</td>
                <td>{x.state}</td>
                <td>{x.startedBy}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Section>
  );
}

type SbomComponent = {
  name: string;
  version: string;
  purl?: string;
  licenses?: { license?: { id?: string; name?: string }; expression?: string }[];
};

/** The version's SBOM, component by component (CycloneDX, as the pipeline wrote it). */
function Components({ name, version, count }: { name: string; version: string; count: number }) {
  const { run, result, error, busy } = useAction<SbomComponent[]>();
  if (count === 0) return <p className="muted">No third-party components: nothing but the app's own code.</p>;
  return (
    <div>
      <button
        type="button"
        disabled={busy}
        onClick={() =>
          run(async () => {
            const v = await api<{ sbom: { components?: SbomComponent[] } }>(
              'GET',
              `/api/v1/apps/${name}/versions/${version}`,
            );
            return v.sbom.components ?? [];
          })
        }
      >
        List the {count} components of {version}
      </button>
      <ErrorNote error={error} />
      {result ? (
        <table>
          <caption className="sr-only">Components of {version}</caption>
          <thead>
            <tr>
              <th scope="col">Package</th>
              <th scope="col">Version</th>
              <th scope="col">License</th>
            </tr>
          </thead>
          <tbody>
            {result.map((c) => (
              <tr key={c.purl ?? `${c.name}@${c.version}`}>
                <td>{c.name}</td>
                <td>{c.version}</td>
                <td>
                  {c.licenses?.map((l) => l.expression ?? l.license?.id ?? l.license?.name).join(', ') ||
                    'not stated'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}

type Verification = {
  ok: boolean;
  key: string | null;
  checks: { check: string; ok: boolean; detail: string }[];
};

/** The version checked as a third party would: the artifact's signature and every attestation. */
function Verification({ name, version }: { name: string; version: string }) {
  const { run, result, error, busy } = useAction<Verification>();
  return (
    <div>
      <button
        type="button"
        disabled={busy}
        onClick={() =>
          run(() => api<Verification>('GET', `/api/v1/apps/${name}/versions/${version}/verification`))
        }
      >
        Check the signatures of {version}
      </button>
      <ErrorNote error={error} />
      {result ? (
        <ul className="checks" data-testid={`verification-${version}`}>
          {result.checks.map((c) => (
            <li key={c.check}>
              <span className={c.ok ? 'ok' : 'bad'}>{c.ok ? 'Verified' : 'Failed'}</span> {c.check}:{' '}
              <span className="muted">{c.detail}</span>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
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

type LogView = {
  env: string;
  running: boolean;
  version: string | null;
  items: { seq: number; at: string; stream: string; version: string; line: string }[];
};

function LogsSection({ name }: { name: string }) {
  const live = useApi<LogView>(`/api/v1/apps/${name}/logs?env=live&limit=300`);
  const preview = useApi<LogView>(`/api/v1/apps/${name}/logs?env=preview&limit=300`);
  return (
    <Section title="Logs">
      <p>What the app printed, newest last, with its secrets blanked out before they were stored.</p>
      <button
        type="button"
        onClick={() => {
          live.reload();
          preview.reload();
        }}
      >
        Refresh
      </button>
      {[live, preview].map((l) => (
        <ErrorNote key={`error-${l === live ? 'live' : 'preview'}`} error={l.error} />
      ))}
      {[live.data, preview.data].map((l) =>
        l && (l.running || l.items.length) ? (
          <div key={l.env}>
            <h3>
              {l.env === 'live' ? 'Live' : 'Preview'} {l.running ? `(${l.version})` : '(not running)'}
            </h3>
            {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling block must take focus so keyboard users can scroll it */}
            <pre className="manifest" tabIndex={0} data-testid={`logs-${l.env}`}>
              {l.items.length
                ? l.items.map((i) => `${i.at.slice(0, 19).replace('T', ' ')} ${i.line}`).join('\n')
                : 'Nothing printed yet.'}
            </pre>
          </div>
        ) : null,
      )}
    </Section>
  );
}

/** Bytes as people read them: 512 B, 3.4 KB, 12 MB. */
function bytes(n: number) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** A number with a bar scaled to the column's largest value; the bar is decoration, the number is the data. */
function Bar({ value, peak, label }: { value: number; peak: number; label: string }) {
  return (
    <td>
      <span className="bar" style={{ width: `${(value / Math.max(1, peak)) * 100}%` }} aria-hidden="true" />
      {label}
    </td>
  );
}

function UsageSection({ name }: { name: string }) {
  const u = useApi<UsageSummary>(`/api/v1/apps/${name}/usage?days=30`);
  if (!u.data) return u.error ? <ErrorNote error={u.error} /> : null;
  const d = u.data;
  const peak = (pick: (x: UsageSummary['byDay'][number]) => number) => Math.max(1, ...d.byDay.map(pick));
  const peaks = {
    requests: peak((x) => x.requests),
    users: peak((x) => x.users),
    errors: peak((x) => x.serverErrors),
    latency: peak((x) => x.averageLatencyMs ?? 0),
    egress: peak((x) => x.egressBytes),
  };
  return (
    <Section title="Use in the last 30 days">
      <Facts
        className="stats"
        rows={[
          ['Requests', d.requests],
          ['People', d.users],
          ['Server errors', d.serverErrors],
          ['Average latency', d.averageLatencyMs === null ? 'n/a' : `${Math.round(d.averageLatencyMs)} ms`],
          ['Sent and received outside', bytes(d.egressBytes)],
        ]}
      />
      {d.byDay.length ? (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a block that scrolls sideways on a phone must take focus so keyboard users can scroll it
        <section className="table-scroll" tabIndex={0} aria-label="Use day by day">
          <table className="bars">
            <caption>
              Day by day: requests, people, server errors, average latency and data through the egress broker
            </caption>
            <thead>
              <tr>
                <th scope="col">Day</th>
                <th scope="col">Requests</th>
                <th scope="col">People</th>
                <th scope="col">Server errors</th>
                <th scope="col">Average latency</th>
                <th scope="col">Outside traffic</th>
              </tr>
            </thead>
            <tbody>
              {d.byDay.map((x) => (
                <tr key={x.day}>
                  <th scope="row">{x.day}</th>
                  <Bar value={x.requests} peak={peaks.requests} label={String(x.requests)} />
                  <Bar value={x.users} peak={peaks.users} label={String(x.users)} />
                  <Bar value={x.serverErrors} peak={peaks.errors} label={String(x.serverErrors)} />
                  <Bar
                    value={x.averageLatencyMs ?? 0}
                    peak={peaks.latency}
                    label={x.averageLatencyMs === null ? 'n/a' : `${Math.round(x.averageLatencyMs)} ms`}
                  />
                  <Bar value={x.egressBytes} peak={peaks.egress} label={bytes(x.egressBytes)} />
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : (
        <p className="muted">Nobody has used it in this period.</p>
      )}
    </Section>
  );
}

function AppAudit({ name }: { name: string }) {
  const e = useApi<{ items: AuditEvent[] }>(`/api/v1/audit/events?app=${name}&limit=200`);
  if (e.error) return <ErrorNote error={e.error} />;
  if (!e.data) return <Loading what="the audit trail" />;
  return <AuditTable events={[...e.data.items].reverse()} />;
}
