import { useEffect, useRef, useState } from 'react';
import { ApiError, api } from '../api.ts';
import type {
  AppView,
  BuildView,
  ChangeView,
  FormField,
  RepositoryView,
  TemplateInfo,
} from '../contracts.ts';
import { Link } from '../router.tsx';
import { ErrorNote, Section, When } from '../ui.tsx';
import { useApi } from '../use-api.ts';
import { FormBuilder, finished, type Row, rowsOf } from './form-builder.tsx';

const stepWords: Record<string, string> = {
  source: 'Prepare the source',
  manifest: 'Check the registration',
  install: 'Install dependencies',
  test: 'Run the tests',
  package: 'Gather what runs (production dependencies)',
  sbom: 'List the components (SBOM)',
  scan: 'Scan for known vulnerabilities',
  licenses: 'Check licenses',
  policy: 'Check policies',
  artifact: 'Make the signed artifact',
  publish: 'Sign and publish',
  deploy: 'Start it behind sign-in',
};

/**
 * Build and deploy from the console: the form builder for form apps, then Deploy commits the answers to
 * the app's repository as a change request. The platform checks it with its pipeline (the same as
 * `microapp ci`), the tier's rule merges it (at once for a low-risk app, after a reviewer otherwise), and
 * the merged version is built, signed and started; each step shows as it finishes, ending with the link.
 */
export function DeploySection({ app, onDeployed }: { app: AppView; onDeployed: () => void }) {
  const template = app.manifest.template;
  const builds = useApi<{ items: BuildView[] }>(`/api/v1/apps/${app.name}/builds`);
  const repo = useApi<RepositoryView>(`/api/v1/apps/${app.name}/repository`);
  const templates = useApi<{ items: TemplateInfo[] }>(template?.name === 'form' ? '/api/v1/templates' : null);
  const [build, setBuild] = useState<BuildView | null>(null);
  const [change, setChange] = useState<ChangeView | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [fields, setFields] = useState<Row[] | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  // The builder starts from the questions on the repository's main branch, the last build's, or the template's.
  useEffect(() => {
    if (fields || !builds.data || repo.loading) return;
    const last = (repo.data?.form as FormField[] | null) ?? builds.data.items.find((b) => b.fields)?.fields;
    const shipped = templates.data?.items.find((t) => t.name === 'form')?.formFields as
      | FormField[]
      | undefined;
    if (last) setFields(rowsOf(last));
    else if (shipped) setFields(rowsOf(shipped));
  }, [builds.data, templates.data, fields, repo.data, repo.loading]);
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);

  if (!template)
    return (
      <Section title="Build and deploy">
        <p>
          This app was not made from a template, so its code comes from its developer: each change they push
          is built, tested, scanned and signed by the platform, then deployed once approved.
        </p>
        <details>
          <summary>For developers</summary>
          <p>
            From the app's folder, <code>microapp build --deploy --wait</code> runs the same pipeline and
            shows each step.
          </p>
        </details>
      </Section>
    );

  const later = (fn: () => Promise<void>, ms: number) => {
    timer.current = setTimeout(() => {
      fn().catch((e) => setError(e instanceof ApiError ? e : new ApiError(0, 'network', String(e), [])));
    }, ms);
  };
  /** Follows the change request: its check build, the reviews it waits for, then the build that ships it. */
  const follow = async (c: ChangeView) => {
    setChange(c);
    const id = c.state === 'merged' ? c.release?.build : c.checks[0]?.build;
    const b = id ? await api<BuildView>('GET', `/api/v1/apps/${app.name}/builds/${id}`) : null;
    if (b) setBuild(b);
    const again = () =>
      later(
        async () => follow(await api<ChangeView>('GET', `/api/v1/apps/${app.name}/changes/${c.number}`)),
        c.state === 'open' && c.checks[0]?.state === 'passed' ? 4000 : 700,
      );
    if (c.state === 'open' && c.checks[0]?.state !== 'failed') again();
    else if (c.state === 'merged' && !c.problem && (!b || b.state === 'queued' || b.state === 'running'))
      again();
    else {
      builds.reload();
      repo.reload();
      if (b?.state === 'passed' && c.state === 'merged') onDeployed();
    }
  };
  const deploy = async () => {
    setError(null);
    setBuild(null);
    try {
      await follow(
        await api<ChangeView>('POST', `/api/v1/apps/${app.name}/changes`, {
          ...(template.name === 'form' && fields ? { fields: fields.map((r) => finished(r.field)) } : {}),
        }),
      );
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'network', String(e), []));
    }
  };
  const waiting =
    change !== null &&
    (change.state === 'open'
      ? change.checks[0]?.state !== 'failed'
      : change.state === 'merged' &&
        !change.problem &&
        build?.state !== 'passed' &&
        build?.state !== 'failed');
  const busy = waiting;
  const last = builds.data?.items[0];

  return (
    <Section title="Build and deploy">
      {app.state !== 'approved' ? (
        <p>Deploying starts once the app is approved.</p>
      ) : (
        <>
          {template.name === 'form' && fields ? (
            <FormBuilder
              fields={fields}
              onChange={setFields}
              disabled={busy}
              typed={repo.data?.formTypes ?? true}
            />
          ) : null}
          <p className="hint">
            Deploy saves your answers as a change to the app's code, runs its tests in a sandbox, scans it and
            checks its policies; {app.approval.required.length ? 'a reviewer then approves it, and ' : ''}the
            platform signs the new version and starts it behind sign-in.
          </p>
          <button type="button" className="primary" onClick={deploy} disabled={busy}>
            {busy ? 'Deploying…' : `Deploy ${app.name}`}
          </button>
        </>
      )}
      <ErrorNote error={error} />
      {change ? <ChangeStatus change={change} /> : null}
      {build ? <BuildProgress build={build} /> : null}
      {!build && last ? (
        <p className="muted">
          Last build: {last.state}
          {last.version ? `, version ${last.version}` : ''}, <When at={last.createdAt} /> by{' '}
          {last.requestedBy}
          {last.url ? (
            <>
              {' '}
              · <a href={last.url}>Open {app.name}</a>
              {template.name === 'form' ? (
                <>
                  {' '}
                  · <a href={`${last.url.replace(/\/$/, '')}/answers`}>See the answers</a> ·{' '}
                  <a href={`${last.url.replace(/\/$/, '')}/export.csv`}>Download the answers (CSV)</a>
                </>
              ) : null}
            </>
          ) : null}
        </p>
      ) : null}
    </Section>
  );
}

/** Where the change request stands, in the words of someone who asked to deploy. */
function ChangeStatus({ change: c }: { change: ChangeView }) {
  const check = c.checks[0];
  const text =
    c.state === 'closed'
      ? `Change #${c.number} was closed without going live.`
      : c.state === 'merged'
        ? c.problem
          ? `Change #${c.number} was approved and merged, but the new version could not be built: ${c.problem}`
          : `Change #${c.number} was merged (${c.merged?.by.replace(/^microapp \((.*)\)$/, '$1')}); building the version that goes live…`
        : check?.state === 'failed'
          ? `Change #${c.number} did not pass its checks: ${check.detail}`
          : check?.state === 'passed'
            ? `Change #${c.number} passed its checks and waits for ${c.reviews.missing.map((m) => (m.specialty ? `a ${m.specialty} reviewer` : 'a reviewer')).join(' and ')} to approve it. It goes live once approved; you can leave this page.`
            : `Change #${c.number} is being checked…`;
  return (
    <p className="notice" data-testid="change-status">
      {text} <Link href={`/apps/${c.app}/changes/${c.number}`}>See change #{c.number}</Link>
    </p>
  );
}

function BuildProgress({ build }: { build: BuildView }) {
  const check = build.commit !== null && !build.commit.publish;
  const names = Object.keys(stepWords).filter(
    (s) => (s !== 'deploy' || build.deploy) && (!check || (s !== 'publish' && s !== 'artifact')),
  );
  const done = new Map(build.steps.map((s) => [s.step, s]));
  const current =
    build.state === 'running' || build.state === 'queued' ? names.find((n) => !done.has(n)) : undefined;
  return (
    <div className="build" data-testid={check ? 'check-progress' : 'build-progress'}>
      <p role="status" aria-live="polite">
        {build.state === 'queued'
          ? 'Waiting for the builder…'
          : build.state === 'running'
            ? `Step ${Math.min(build.steps.length + 1, build.total)} of ${build.total}: ${stepWords[current ?? ''] ?? 'working'}…`
            : build.state === 'passed'
              ? build.commit && !build.commit.publish
                ? `Checks passed for version ${build.version}.`
                : `Done: version ${build.version} is ${build.deploy ? 'running' : 'published'}.`
              : `The build stopped: ${build.error}`}
      </p>
      <ol className="pipeline">
        {names.map((n) => {
          const s = done.get(n);
          const state = s ? s.status : n === current ? 'running' : 'waiting';
          return (
            <li key={n} className={`step-${state}`}>
              <span className="step-mark" aria-hidden="true">
                {state === 'passed'
                  ? '✓'
                  : state === 'failed'
                    ? '✗'
                    : state === 'skipped'
                      ? '–'
                      : state === 'running'
                        ? '…'
                        : '·'}
              </span>{' '}
              {stepWords[n]} <span className="sr-only">({state})</span>
              {s ? <span className="muted"> · {s.durationMs} ms</span> : null}
              {s && s.status !== 'passed' ? (
                <div className="muted step-detail">{s.detail.split('\n')[0]}</div>
              ) : null}
              {s?.next ? <div className="step-detail">Next: {s.next}</div> : null}
            </li>
          );
        })}
      </ol>
      {build.url ? (
        <p className="notice">
          <a href={build.url} className="button primary">
            Open {build.app}
          </a>{' '}
          {build.fields ? (
            <>
              <a href={`${build.url.replace(/\/$/, '')}/answers`} className="button">
                See the answers
              </a>{' '}
              <a href={`${build.url.replace(/\/$/, '')}/export.csv`} className="button">
                Download the answers (CSV)
              </a>{' '}
            </>
          ) : null}
          Colleagues sign in with their company account; only the audience you registered gets in.
        </p>
      ) : null}
    </div>
  );
}
