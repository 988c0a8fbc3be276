import { useState } from 'react';
import { type ApiError, api } from '../api.ts';
import type { ConnectorView, JobView, TemplateInfo } from '../contracts.ts';
import { Link } from '../router.tsx';
import { ErrorNote, Outcome, Section, When } from '../ui.tsx';
import { useApi } from '../use-api.ts';
import { AdvisoryImport } from './advisory-import.tsx';
import { ConnectorForm, split } from './connector-form.tsx';

type Snapshot = {
  id: string;
  digest: string;
  records: number;
  importedBy: string;
  importedAt: string;
} | null;

/** What platform admins run: connectors, advisory data, templates and the scheduled jobs. */
export function AdminPage() {
  const connectors = useApi<{ items: ConnectorView[] }>('/api/v1/connectors');
  const advisories = useApi<{ snapshot: Snapshot }>('/api/v1/advisories');
  const templates = useApi<{ items: TemplateInfo[] }>('/api/v1/templates');
  const jobs = useApi<{ items: JobView[] }>('/api/v1/jobs');
  return (
    <>
      <h1 tabIndex={-1}>Administration</h1>
      <Section title="Connectors">
        <p className="muted">
          Company systems apps reach as <code>http://connector.ID/…</code>. The egress broker adds the
          credential; apps never hold it, and nobody can read it back.
        </p>
        <ErrorNote error={connectors.error} />
        {connectors.data?.items.length ? (
          <table>
            <thead>
              <tr>
                <th scope="col">Connector</th>
                <th scope="col">Base URL</th>
                <th scope="col">Allows</th>
                <th scope="col">On</th>
                <th scope="col">May receive</th>
                <th scope="col">Credential</th>
              </tr>
            </thead>
            <tbody>
              {connectors.data.items.map((c) => (
                <tr key={c.id}>
                  <th scope="row">{c.id}</th>
                  <td>{c.baseUrl}</td>
                  <td>
                    {c.grants?.vault
                      ? `${c.grants.privileges.join(', ')} (a role per instance from Vault's ${c.grants.vault.mount}/${c.grants.vault.role}, checked against these grants)`
                      : c.grants
                        ? `${c.grants.privileges.join(', ')} (a role per instance, ${c.grants.leaseMinutes} min lease)`
                        : c.methods.join(', ')}
                  </td>
                  <td>{(c.grants?.tables ?? c.paths).join(', ')}</td>
                  <td>{c.dataClasses.join(', ')}</td>
                  <td>{c.grants?.vault ? 'Vault' : c.hasCredential ? 'set' : 'none'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : connectors.data ? (
          <p>No connector is defined.</p>
        ) : null}
        <ConnectorForm onSaved={connectors.reload} />
      </Section>
      <div className="grid">
        <Section title="Advisory data">
          <ErrorNote error={advisories.error} />
          {advisories.data?.snapshot ? (
            <p>
              {advisories.data.snapshot.records.toLocaleString()} OSV record
              {advisories.data.snapshot.records === 1 ? '' : 's'}, imported by{' '}
              {advisories.data.snapshot.importedBy} <When at={advisories.data.snapshot.importedAt} /> (
              <code>{advisories.data.snapshot.digest.slice(0, 19)}…</code>).
            </p>
          ) : advisories.data ? (
            <p className="error">
              No advisory data: scans cannot run. Import OSV's npm export (all.zip from
              osv-vulnerabilities.storage.googleapis.com/npm/) below, or with{' '}
              <code>microapp advisories import all.zip</code>.
            </p>
          ) : null}
          <AdvisoryImport onImported={advisories.reload} />
        </Section>
        <Section title="Templates">
          <ul>
            {templates.data?.items.map((t) => (
              <li key={t.name}>
                <strong>{t.title}</strong>{' '}
                <span className="muted">
                  {t.name} {t.version}
                </span>
                : {t.description}
              </li>
            ))}
          </ul>
        </Section>
      </div>
      <BlockedDomains />
      <div className="grid">
        <Exemptions />
        <RoleMapping />
      </div>
      <Section title="Scheduled jobs">
        <ErrorNote error={jobs.error} />
        {jobs.data ? (
          <table>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Every</th>
                <th scope="col">Last finished</th>
                <th scope="col">Next run</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.items.map((j) => (
                <tr key={j.name}>
                  <th scope="row">{j.name}</th>
                  <td>
                    {j.everySeconds >= 3600 ? `${j.everySeconds / 3600} h` : `${j.everySeconds / 60} min`}
                  </td>
                  <td>
                    <When at={j.lastFinishedAt} />
                  </td>
                  <td>
                    <When at={j.nextRunAt} />
                  </td>
                  <td>{j.lastError ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  );
}

type Blocked = {
  domains: string[];
  revision: number | null;
  updatedBy: string | null;
  updatedAt: string | null;
};

function BlockedDomains() {
  const blocked = useApi<Blocked>('/api/v1/blocked-domains');
  const [draft, setDraft] = useState<string | null>(null);
  const [why, setWhy] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const text = draft ?? blocked.data?.domains.join('\n') ?? '';
  return (
    <Section title="Blocked domains">
      <p className="muted">
        No app deploys with these in its approved egress, and the egress broker refuses every request to them
        and to every name under them, whatever an app was approved for. Each change is a new policy revision,
        checked like any other and kept in the audit trail.
      </p>
      <ErrorNote error={blocked.error} />
      {blocked.data?.updatedBy ? (
        <p>
          Policy revision {blocked.data.revision}, by {blocked.data.updatedBy}{' '}
          <When at={blocked.data.updatedAt} />.
        </p>
      ) : null}
      <form
        aria-label="Change the blocked domains"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          setSaved(null);
          try {
            const r = await api<{ domains: string[]; revision: number }>('PUT', '/api/v1/blocked-domains', {
              domains: split(text),
              message: why.trim(),
            });
            setSaved(`Saved as policy revision ${r.revision}: ${r.domains.length} blocked.`);
            setDraft(null);
            setWhy('');
            blocked.reload();
          } catch (err) {
            setError(err as ApiError);
          }
        }}
      >
        <div className="grid">
          <div className="field">
            <label htmlFor="blocked-list">Blocked domains, one per line</label>
            <textarea
              id="blocked-list"
              rows={5}
              value={text}
              placeholder="files.example.net"
              onChange={(e) => setDraft(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="blocked-why">Why (kept with the change)</label>
            <input
              id="blocked-why"
              value={why}
              required
              minLength={3}
              onChange={(e) => setWhy(e.target.value)}
            />
          </div>
        </div>
        <Outcome error={error} said={saved} />
        <button type="submit" className="primary">
          Save the blocked domains
        </button>
      </form>
    </Section>
  );
}

type Exemption = { app: string; owner: string; tier: string; stage: string; reason: string; by: string };

/** Apps an admin exempted from inactivity checks: what is not being watched, and why. */
function Exemptions() {
  const list = useApi<{ items: Exemption[] }>('/api/v1/lifecycle/exemptions');
  return (
    <Section title="Inactivity exemptions">
      <ErrorNote error={list.error} />
      {list.data?.items.length ? (
        <table>
          <thead>
            <tr>
              <th scope="col">App</th>
              <th scope="col">Owner</th>
              <th scope="col">Why</th>
              <th scope="col">By</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((x) => (
              <tr key={x.app}>
                <th scope="row">
                  <Link href={`/apps/${x.app}`}>{x.app}</Link>
                </th>
                <td>{x.owner}</td>
                <td>{x.reason}</td>
                <td>{x.by}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : list.data ? (
        <p>No app is exempted: every app is judged by its use.</p>
      ) : null}
    </Section>
  );
}

type RoleMap = {
  source: string;
  issuer: string | null;
  claims: { groups: string | null; department: string | null; manager: string | null };
  groups: { group: string; roles: string[]; specialties: string[] }[];
};

/** Which identity-provider groups give which roles: configuration, shown here, changed where the server runs. */
function RoleMapping() {
  const map = useApi<RoleMap>('/api/v1/identity/role-mapping');
  return (
    <Section title="Roles from the identity provider">
      <ErrorNote error={map.error} />
      {map.data ? (
        <>
          <p className="muted">
            From {map.data.source}; changed in the server's configuration, not here. Groups come from the{' '}
            <code>{map.data.claims.groups ?? 'groups'}</code> claim
            {map.data.issuer ? (
              <>
                {' '}
                of <code>{map.data.issuer}</code>
              </>
            ) : null}
            .
          </p>
          <table>
            <thead>
              <tr>
                <th scope="col">Group</th>
                <th scope="col">Roles</th>
                <th scope="col">Specialties</th>
              </tr>
            </thead>
            <tbody>
              {map.data.groups.map((g) => (
                <tr key={g.group}>
                  <th scope="row">{g.group}</th>
                  <td>{g.roles.join(', ')}</td>
                  <td>{g.specialties.join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </Section>
  );
}

/** Import a new OSV snapshot: every later scan uses it, and deployed versions are matched against it at once. */
