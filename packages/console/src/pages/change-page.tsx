import { useState } from 'react';
import { api } from '../api.ts';
import type { ChangeView } from '../contracts.ts';
import { Link } from '../router.tsx';
import { hasRole, useSession } from '../session.tsx';
import { ErrorNote, Facts, Loading, Outcome, Section, When } from '../ui.tsx';
import { useAction } from '../use-action.ts';
import { useApi } from '../use-api.ts';
import { changeStanding } from './repository-section.tsx';

/** One line of a unified diff, marked for the eye and for a screen reader. */
function DiffLine({ line }: { line: string }) {
  const kind =
    line.startsWith('+') && !line.startsWith('+++')
      ? 'added'
      : line.startsWith('-') && !line.startsWith('---')
        ? 'removed'
        : 'same';
  return (
    <span className={`diff-${kind}`}>
      {kind === 'added' ? (
        <span className="sr-only">added: </span>
      ) : kind === 'removed' ? (
        <span className="sr-only">removed: </span>
      ) : null}
      {line}
      {'\n'}
    </span>
  );
}

/**
 * A change request as a reviewer reads it: the checks, the rule, the reviews, and the diff of the code
 * beside the diff of the manifest; a reviewer approves or asks for changes on the commit they read.
 */
export function ChangePage({ name, number }: { name: string; number: number }) {
  const session = useSession();
  const c = useApi<ChangeView>(`/api/v1/apps/${name}/changes/${number}`);
  const [comment, setComment] = useState('');
  const decide = useAction<ChangeView>();
  const change = decide.result ?? c.data;
  if (c.error) return <ErrorNote error={c.error} />;
  if (!change) return <Loading what={`change #${number}`} />;
  const reviewer = hasRole(session, 'reviewer') && change.openedBy !== session.user.email;
  const send = (decision: 'approved' | 'changes_requested') =>
    decide.run(() =>
      api<ChangeView>('POST', `/api/v1/apps/${name}/changes/${number}/reviews`, {
        decision,
        head: change.head,
        ...(comment.trim() ? { comment: comment.trim() } : {}),
      }),
    );
  return (
    <>
      <p>
        <Link href={`/apps/${name}`}>← {name}</Link>
      </p>
      <h1>
        Change #{change.number}: {change.title}
      </h1>
      <Section title="Where it stands">
        <Facts
          rows={[
            ['Standing', changeStanding(change)],
            ['Opened by', change.openedBy],
            ['Branch', `${change.branch} at ${change.head.slice(0, 12)}`],
            ['Rule', change.rule],
            [
              'Pull request',
              change.hostChange ? (
                <a key="pr" href={change.hostChange.url}>
                  #{change.hostChange.number} at the company's git host
                </a>
              ) : null,
            ],
            [
              'Pushed by an agent',
              change.confirmation ? (
                <>
                  {change.confirmation.agent}
                  {change.confirmation.model ? ` (${change.confirmation.model})` : ''}, for{' '}
                  {change.confirmation.person}, who confirms before it merges: {change.confirmation.state}
                  {change.confirmation.checkpoint && change.confirmation.state === 'waiting' ? (
                    <>
                      {' '}
                      (<Link href={`/agents/requests/${change.confirmation.checkpoint}`}>answer it</Link>)
                    </>
                  ) : null}
                </>
              ) : null,
            ],
            ...change.checks.map((k): [string, React.ReactNode] => [
              `Check: ${k.name}`,
              `${k.state} (${k.detail})`,
            ]),
            ['Merged', change.merged ? `${change.merged.commit.slice(0, 12)} by ${change.merged.by}` : null],
            ['Problem', change.problem],
          ]}
        />
        {change.reviews.given.length ? (
          <ul>
            {change.reviews.given.map((g) => (
              <li key={`${g.reviewer}-${g.at}`}>
                {g.reviewer} {g.decision === 'approved' ? 'approved' : 'asked for changes'}
                {g.head !== change.head ? ' (an earlier version of the change)' : ''} <When at={g.at} />
                {g.comment ? `: ${g.comment}` : ''}
              </li>
            ))}
          </ul>
        ) : null}
        {reviewer && change.state === 'open' ? (
          <form
            className="inline"
            onSubmit={(e) => {
              e.preventDefault();
              void send('approved');
            }}
          >
            <label htmlFor="change-comment">Comment (required to ask for changes)</label>
            <input
              id="change-comment"
              value={comment}
              maxLength={4000}
              onChange={(e) => setComment(e.target.value)}
            />
            <button type="submit" className="primary" disabled={decide.busy}>
              Approve this change
            </button>
            <button
              type="button"
              disabled={decide.busy || !comment.trim()}
              onClick={() => void send('changes_requested')}
            >
              Ask for changes
            </button>
          </form>
        ) : null}
        <Outcome
          error={decide.error}
          said={decide.result ? `Recorded. This change is now ${changeStanding(decide.result)}.` : null}
        />
      </Section>
      <Section title="The app's registered answers (microapp.yaml)">
        {change.manifest?.changed ? (
          <div className="side-by-side">
            <figure>
              <figcaption>Before</figcaption>
              <pre>{change.manifest.before ?? '(none)'}</pre>
            </figure>
            <figure>
              <figcaption>With this change</figcaption>
              <pre>{change.manifest.after ?? '(none)'}</pre>
            </figure>
          </div>
        ) : (
          <p>Unchanged: the change keeps the answers that were approved.</p>
        )}
      </Section>
      <Section title="The code">
        {change.diff ? (
          <>
            <ul>
              {change.diff.files.map((f) => (
                <li key={f.path}>
                  <code>{f.path}</code> +{f.added} −{f.removed}
                </li>
              ))}
            </ul>
            {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling block must take focus so keyboard users can scroll it */}
            <pre className="diff-patch" tabIndex={0}>
              {change.diff.patch.split('\n').map((line, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: a patch's lines are identified by their place
                <DiffLine key={i} line={line} />
              ))}
            </pre>
            {change.diff.truncated ? <p className="muted">The diff is longer than shown here.</p> : null}
          </>
        ) : null}
      </Section>
    </>
  );
}
