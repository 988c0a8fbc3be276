import { useState } from 'react';
import { type ApiError, api } from '../api.ts';
import { highlightRego } from '../rego-highlight.tsx';
import { ErrorNote, Loading, Section, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';

type Current = {
  revision: string;
  builtin: string[];
  org: {
    revision: number;
    files: string[];
    digest: string;
    message: string | null;
    pushedBy: string;
    pushedAt: string;
  } | null;
};
type Revision = {
  revision: number;
  files: string[];
  digest: string;
  message: string | null;
  pushedBy: string;
  pushedAt: string;
};
type TestRun = {
  revision: string;
  passed: number;
  total: number;
  problems: { file: string; message: string }[];
  tests: { name: string; outcome: string; error?: string; durationMs: number }[];
};

/** Policies as code: the active revision's modules with their source, its tests, and a place to try a decision. */
export function PoliciesPage() {
  const current = useApi<Current>('/api/v1/policies');
  const revisions = useApi<{ items: Revision[] }>('/api/v1/policies/revisions');
  const [file, setFile] = useState<string | null>(null);
  const source = useApi<{ file: string; origin: string; source: string }>(
    file ? `/api/v1/policies/source?file=${encodeURIComponent(file)}` : null,
  );
  const files = current.data
    ? [...current.data.builtin, ...(current.data.org?.files.map((f) => `org/${f}`) ?? [])]
    : [];
  return (
    <>
      <h1 tabIndex={-1}>Policies</h1>
      <p className="muted">
        Every registration, deploy, gateway request and outbound call is decided by these Rego modules. Admins
        push organization bundles with <code>microapp policy push</code>; a bundle whose tests fail is
        refused.
      </p>
      <ErrorNote error={current.error} />
      {current.data ? (
        <p>
          Active revision <strong>{current.data.revision}</strong>
          {current.data.org ? (
            <>
              {' '}
              · organization bundle {current.data.org.revision} by {current.data.org.pushedBy},{' '}
              <When at={current.data.org.pushedAt} />
              {current.data.org.message ? `: ${current.data.org.message}` : ''}
            </>
          ) : (
            ' · built-in packs only'
          )}
        </p>
      ) : (
        <Loading what="the policy" />
      )}
      <div className="policy-layout">
        <Section title="Modules">
          <ul className="files">
            {files.map((f) => (
              <li key={f}>
                <button type="button" className="link" aria-pressed={file === f} onClick={() => setFile(f)}>
                  {f}
                </button>
              </li>
            ))}
          </ul>
        </Section>
        <Section title={file ?? 'Source'} id="source">
          {!file ? <p className="muted">Choose a module to read it.</p> : null}
          <ErrorNote error={source.error} />
          {source.data ? (
            // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling block must take focus so keyboard users can scroll it
            <pre className="rego" tabIndex={0} data-testid="rego-source">
              <code>{highlightRego(source.data.source)}</code>
            </pre>
          ) : null}
        </Section>
      </div>
      <div className="grid">
        <TestsSection />
        <TrySection />
      </div>
      <Section title="Organization bundles">
        {revisions.data?.items.length === 0 ? (
          <p>No organization bundle has been pushed: the built-in packs decide.</p>
        ) : null}
        {revisions.data?.items.length ? (
          <table>
            <thead>
              <tr>
                <th scope="col">Revision</th>
                <th scope="col">Pushed</th>
                <th scope="col">By</th>
                <th scope="col">Message</th>
                <th scope="col">Modules</th>
              </tr>
            </thead>
            <tbody>
              {revisions.data.items.map((r) => (
                <tr key={r.revision}>
                  <td>{r.revision}</td>
                  <td>
                    <When at={r.pushedAt} />
                  </td>
                  <td>{r.pushedBy}</td>
                  <td>{r.message ?? ''}</td>
                  <td>{r.files.join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  );
}

function TestsSection() {
  const action = useAction<TestRun>();
  const { result: run, error, busy } = action;
  const failed = run?.tests.filter((t) => t.outcome !== 'pass') ?? [];
  return (
    <Section title="Tests">
      <button
        type="button"
        className="primary"
        disabled={busy}
        onClick={() => action.run(() => api<TestRun>('POST', '/api/v1/policies/test'))}
      >
        {busy ? 'Running…' : 'Run the tests'}
      </button>
      <ErrorNote error={error} />
      {run ? (
        <>
          <p role="status" className={failed.length ? 'error' : 'notice'} data-testid="test-result">
            {run.passed} of {run.total} tests passed on revision {run.revision}.
          </p>
          {failed.length ? (
            <ul>
              {failed.map((t) => (
                <li key={t.name}>
                  <code>{t.name}</code>: {t.outcome}
                  {t.error ? ` (${t.error})` : ''}
                </li>
              ))}
            </ul>
          ) : null}
        </>
      ) : null}
    </Section>
  );
}

function TrySection() {
  const [entrypoint, setEntrypoint] = useState('microapp/network/deny');
  const [input, setInput] = useState(
    JSON.stringify({ request: { method: 'egress', host: 'unsafe.example.org' } }, null, 2),
  );
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  return (
    <Section title="Try a decision">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          setResult(null);
          let parsed: unknown;
          try {
            parsed = JSON.parse(input);
          } catch (err) {
            setError(new Error(`The input is not JSON: ${(err as Error).message}`));
            return;
          }
          try {
            const d = await api<{ result: unknown }>('POST', '/api/v1/policies/evaluate', {
              entrypoint,
              input: parsed,
            });
            setResult(JSON.stringify(d.result, null, 2) ?? 'undefined (no rule matched)');
          } catch (err) {
            setError(err as ApiError);
          }
        }}
      >
        <div className="field">
          <label htmlFor="entrypoint">Entrypoint</label>
          <input
            id="entrypoint"
            value={entrypoint}
            maxLength={300}
            onChange={(e) => setEntrypoint(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="input">Input (JSON)</label>
          <textarea
            id="input"
            rows={6}
            value={input}
            onChange={(e) => setInput(e.target.value)}
            className="mono"
          />
        </div>
        <button type="submit">Evaluate</button>
      </form>
      <ErrorNote error={error} />
      {result !== null ? (
        <pre className="manifest" data-testid="decision">
          {result}
        </pre>
      ) : null}
    </Section>
  );
}
