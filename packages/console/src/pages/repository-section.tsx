import type { ChangeView, RepositoryView } from '../contracts.ts';
import { Link } from '../router.tsx';
import { ErrorNote, Loading, Section, When } from '../ui.tsx';
import { useApi } from '../use-api.ts';

/** Where a change stands, in a few words. */
export function changeStanding(c: ChangeView): string {
  if (c.state === 'closed') return 'closed';
  if (c.state === 'merged')
    return c.release?.state === 'passed'
      ? `live as ${c.release.version}`
      : c.release?.state === 'failed' || c.problem
        ? 'merged, not live'
        : 'merged, building';
  const check = c.checks[0];
  if (check?.state === 'failed') return 'checks failed';
  if (check?.state === 'pending') return 'checks running';
  if (c.reviews.missing.length) return 'waiting for review';
  const k = c.confirmation;
  if (k && k.state !== 'confirmed')
    return k.state === 'waiting'
      ? `waiting for ${k.person} to confirm what ${k.agent} pushed`
      : k.state === 'refused'
        ? `${k.person} refused what ${k.agent} pushed`
        : `${k.person} did not confirm in time: push again`;
  return 'ready';
}

/** The app's code: its repository (where developers clone it), recent commits, and its change requests. */
export function RepositorySection({ name }: { name: string }) {
  const repo = useApi<RepositoryView>(`/api/v1/apps/${name}/repository`);
  const changes = useApi<{ items: ChangeView[] }>(`/api/v1/apps/${name}/changes`);
  return (
    <Section title="Code and changes">
      <ErrorNote error={repo.error ?? changes.error} />
      {repo.loading ? <Loading what="the repository" /> : null}
      {repo.data ? (
        <>
          {repo.data.host ? (
            <p>
              {name}'s code lives at {repo.data.host.kind === 'github' ? 'GitHub' : 'GitLab'}:{' '}
              <a href={repo.data.host.webUrl}>{repo.data.host.id}</a>. A pull request into main there is a
              change request here: the platform tests and checks it, the tier's rule decides who approves it,
              then the platform merges it there and the approved version goes live.
            </p>
          ) : (
            <p>
              Every change to {name} goes through a change request: the platform tests and checks it, the
              tier's rule decides who approves it, then the approved version goes live. Developers clone the
              code with git from <code>{repo.data.cloneUrl}</code> (an API token is the password) and push a
              branch
              {repo.data.archived ? '; the app is retired, so its history is read-only' : ''}.
            </p>
          )}
          <table>
            <caption>Recent changes to the main version</caption>
            <thead>
              <tr>
                <th scope="col">What</th>
                <th scope="col">Who</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {repo.data.commits.slice(0, 5).map((c) => (
                <tr key={c.commit}>
                  <td>
                    {c.subject} <span className="muted">{c.commit.slice(0, 8)}</span>
                  </td>
                  <td>{c.email}</td>
                  <td>
                    <When at={c.date} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {changes.data?.items.length ? (
        <table>
          <caption>Change requests</caption>
          <thead>
            <tr>
              <th scope="col">Change</th>
              <th scope="col">By</th>
              <th scope="col">Where it stands</th>
            </tr>
          </thead>
          <tbody>
            {changes.data.items.slice(0, 10).map((c) => (
              <tr key={c.number}>
                <td>
                  <Link href={`/apps/${name}/changes/${c.number}`}>
                    #{c.number} {c.title}
                  </Link>
                </td>
                <td>{c.openedBy}</td>
                <td>{changeStanding(c)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : changes.data ? (
        <p className="muted">No change requests yet.</p>
      ) : null}
    </Section>
  );
}
