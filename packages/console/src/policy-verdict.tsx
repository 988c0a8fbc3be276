import type { Assessment } from './contracts.ts';

type Denial = Assessment['policy']['denials'][number];

/** A deny rule's message in plain words: a blocked domain says who blocked it, when and why. */
function DenialText({ d }: { d: Denial }) {
  if (d.blocked && d.host)
    return (
      <>
        <strong>{d.host}</strong> is blocked by your organization
        {d.host !== d.blocked.domain ? <> (everything under {d.blocked.domain})</> : null}. {d.blocked.by}{' '}
        blocked it on {d.blocked.at.slice(0, 10)}: “{d.blocked.reason}”
      </>
    );
  return <>{d.message.replace(/^deployment denied: /, '')}</>;
}

/**
 * What the organization's policy says of these answers, before anyone reviews them: allowed, or each
 * refusal with what to change. `stage` keeps only what would stop a deploy (a reviewer's question).
 */
export function PolicyVerdict({
  policy,
  stage,
  advice,
}: {
  policy: Assessment['policy'];
  stage?: Denial['stage'];
  advice: string;
}) {
  const denials = stage ? policy.denials.filter((d) => d.stage === stage) : policy.denials;
  if (denials.length === 0)
    return (
      <p className="ok" data-testid="policy-verdict">
        The organization's policy allows this.
      </p>
    );
  return (
    <div className="policy-verdict" data-testid="policy-verdict">
      <p className="bad">
        <strong>The organization's policy refuses this.</strong> {advice}
      </p>
      <ul>
        {denials.map((d) => (
          <li key={d.message} className="bad">
            <DenialText d={d} />
          </li>
        ))}
      </ul>
    </div>
  );
}
