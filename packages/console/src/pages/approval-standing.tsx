import type { AppView } from '../contracts.ts';
import { Link } from '../router.tsx';

const who = (slots: AppView['approval']['missing']) =>
  slots.map((s) => (s.specialty ? `a ${s.specialty} reviewer` : 'a reviewer')).join(' and ');

/** The newest request for changes or rejection of the app's current revision, with its comment. */
export function reviewersWord(a: AppView) {
  return [...a.approval.reviews]
    .reverse()
    .find((r) => r.revision === a.revision && (r.decision === 'request_changes' || r.decision === 'reject'));
}

/**
 * Where the app's approval stands, in words, with what its owner can do next: a request for changes is the
 * call to action (the reviewer's comment, and a button to change the answers), not one bullet among others.
 */
export function ApprovalStanding({ app: a, canChange }: { app: AppView; canChange: boolean }) {
  const decided = reviewersWord(a);
  const change = canChange ? (
    <Link href={`/new?edit=${a.name}`} className="button">
      Change the answers
    </Link>
  ) : null;
  switch (a.state) {
    case 'approved':
      return (
        <>
          <p>Approved (revision {a.revision}).</p>
          {canChange ? <p>{change}</p> : null}
        </>
      );
    case 'pending_review':
      return (
        <>
          <p>Waiting for {who(a.approval.missing) || 'a review'}.</p>
          {canChange ? <p>{change}</p> : null}
        </>
      );
    case 'changes_requested':
      return (
        <div className="notice" data-testid="approval-standing">
          <p>
            <strong>{decided?.reviewer ?? 'A reviewer'} asked for changes</strong> to revision {a.revision}
            {decided?.comment ? <>: “{decided.comment}”</> : '.'}
          </p>
          {canChange ? (
            <p>{change} Your answers come prefilled; sending them asks the reviewers again.</p>
          ) : (
            <p>The owner changes the answers; the reviewers are then asked again.</p>
          )}
        </div>
      );
    case 'rejected':
      return (
        <div className="notice" data-testid="approval-standing">
          <p>
            <strong>Rejected by {decided?.reviewer ?? 'a reviewer'}</strong>
            {decided?.comment ? <>: “{decided.comment}”</> : '.'}
          </p>
          {canChange ? <p>{change} A changed registration is reviewed again.</p> : null}
        </div>
      );
    default:
      return null;
  }
}
