// An app's versions: what runs in live and preview, each version's scan, components and signature.
import { api } from '../api.ts';
import type { VersionItem } from '../contracts.ts';
import { ErrorNote, Outcome, Section, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';
import { Findings } from './reviews-page.tsx';

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

export function VersionsSection({
  name,
  canDeploy,
  template,
  onChanged,
}: {
  name: string;
  canDeploy: boolean;
  /** Made from a template: the console's Deploy builds it, so no developer's command is suggested. */
  template: boolean;
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
    <Section title="Versions and deployments" id="versions">
      {v.error ? <ErrorNote error={v.error} /> : null}
      <p>
        Live: {live?.url ? <a href={live.url}>{live.version}</a> : 'not running'} · Preview (you and
        reviewers): {preview?.url ? <a href={preview.url}>{preview.version}</a> : 'not running'}
      </p>
      {v.data && v.data.items.length === 0 ? (
        <>
          <p>
            No version yet. {template ? 'Deploy it under “Build and deploy” above: ' : 'Its first build '}
            is tested, scanned, signed and listed here.
          </p>
          {template ? null : (
            <details>
              <summary>For developers</summary>
              <p>
                <code>microapp ci</code> in the app's folder builds and publishes a version.
              </p>
            </details>
          )}
        </>
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
          {x.agentSession ? (
            <p>
              Built by the agent {x.agentSession.agent}
              {x.agentSession.model ? ` (${x.agentSession.model})` : ''} for {x.agentSession.person}:{' '}
              {x.agentSession.calls} tool call{x.agentSession.calls === 1 ? '' : 's'},{' '}
              {x.agentSession.checkpointsApproved} checkpoint
              {x.agentSession.checkpointsApproved === 1 ? '' : 's'} approved
              {x.agentSession.approvedBy.length ? ` by ${x.agentSession.approvedBy.join(', ')}` : ''}. Its
              signed record is verified with the version.
            </p>
          ) : null}
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
      <Outcome error={error} said={message} />
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
