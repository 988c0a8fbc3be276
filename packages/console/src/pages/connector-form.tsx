import { useState } from 'react';
import { type ApiError, api } from '../api.ts';
import { dataClasses } from '../contracts.ts';
import { Outcome } from '../ui.tsx';

const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
/** Words of a list typed with spaces or commas. */
export const split = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

/** An admin defines a company system once: base URL, credential, methods, paths and data classes. */
export function ConnectorForm({ onSaved }: { onSaved: () => void }) {
  const [form, setForm] = useState({ id: '', baseUrl: '', paths: '', credential: '' });
  const [chosen, setChosen] = useState<string[]>(['GET']);
  const [classes, setClasses] = useState<string[]>(['internal']);
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const toggle = (list: string[], v: string, on: boolean) =>
    on ? [...list, v] : list.filter((x) => x !== v);
  return (
    <form
      className="connector-form"
      aria-label="Define a connector"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        setSaved(null);
        try {
          await api('PUT', `/api/v1/connectors/${encodeURIComponent(form.id.trim())}`, {
            baseUrl: form.baseUrl.trim(),
            methods: chosen,
            paths: split(form.paths),
            dataClasses: classes,
            ...(form.credential ? { credential: form.credential } : {}),
          });
          setSaved(
            `Saved ${form.id}.${form.credential ? ' The credential is stored encrypted and will not be shown again.' : ''}`,
          );
          setForm({ ...form, credential: '' });
          onSaved();
        } catch (err) {
          setError(err as ApiError);
        }
      }}
    >
      <h3>Define or change a connector</h3>
      <div className="grid">
        <div className="field">
          <label htmlFor="c-id">Connector id</label>
          <input
            id="c-id"
            value={form.id}
            maxLength={63}
            onChange={(e) => setForm({ ...form, id: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor="c-url">Base URL</label>
          <input
            id="c-url"
            type="url"
            value={form.baseUrl}
            onChange={(e) => setForm({ ...form, baseUrl: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor="c-paths">Allowed path prefixes (comma-separated)</label>
          <input
            id="c-paths"
            value={form.paths}
            onChange={(e) => setForm({ ...form, paths: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor="c-cred">Credential (write-only; leave empty to keep the current one)</label>
          <input
            id="c-cred"
            type="password"
            autoComplete="new-password"
            value={form.credential}
            onChange={(e) => setForm({ ...form, credential: e.target.value })}
          />
        </div>
      </div>
      <fieldset>
        <legend>Methods</legend>
        <div className="checks">
          {methods.map((m) => (
            <label key={m} className="check">
              <input
                type="checkbox"
                checked={chosen.includes(m)}
                onChange={(e) => setChosen(toggle(chosen, m, e.target.checked))}
              />{' '}
              {m}
            </label>
          ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>Data it may receive</legend>
        <div className="checks">
          {dataClasses.map((d) => (
            <label key={d} className="check">
              <input
                type="checkbox"
                checked={classes.includes(d)}
                onChange={(e) => setClasses(toggle(classes, d, e.target.checked))}
              />{' '}
              {d}
            </label>
          ))}
        </div>
      </fieldset>
      <Outcome error={error} said={saved} />
      <button type="submit" className="primary">
        Save the connector
      </button>
    </form>
  );
}

/** The organization's blocked domains: no app deploys with one, no request reaches one or a name under it. */
