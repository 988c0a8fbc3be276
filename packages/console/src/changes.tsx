import type { RevisionView, RiskInput } from './contracts.ts';

type Change = { what: string; before: string; after: string };

const show = (v: unknown) =>
  Array.isArray(v)
    ? v.length
      ? v.join(', ')
      : 'none'
    : v === null || v === undefined
      ? 'not set'
      : String(v);

/** What changed in the risk-relevant answers between two registrations. */
export function riskChanges(before: RiskInput, after: RiskInput): Change[] {
  const fields: [string, (i: RiskInput) => unknown][] = [
    ['Data classes', (i) => i.dataClasses],
    ['Web services it calls', (i) => i.egress],
    ['Connectors', (i) => i.connectors],
    ['Secrets', (i) => i.secrets],
    ['Department', (i) => i.audience.department],
    ['Most users', (i) => i.audience.maxUsers],
  ];
  return fields
    .map(([what, get]) => ({ what, before: show(get(before)), after: show(get(after)) }))
    .filter((c) => c.before !== c.after);
}

/** The newest earlier registration a reviewer (or the policy) approved: what this one is compared with. */
export function lastApproved(revisions: RevisionView[], current: number): RevisionView | null {
  return (
    revisions.find(
      (r) =>
        r.revision < current &&
        r.reviews.some((v) => v.decision === 'approve' || v.decision === 'auto_approve') &&
        !r.reviews.some((v) => v.decision === 'reject'),
    ) ?? null
  );
}

/** The changes since the last approved registration, as a table a reviewer reads in a glance. */
export function ChangesTable({ revisions, current }: { revisions: RevisionView[]; current: number }) {
  const now = revisions.find((r) => r.revision === current);
  if (!now) return null;
  const base = lastApproved(revisions, current);
  if (!base) return <p>First registration: there is no approved revision to compare with.</p>;
  const changes = riskChanges(base.inputs, now.inputs);
  if (changes.length === 0)
    return <p>No risk-relevant change since revision {base.revision}, the last one approved.</p>;
  return (
    <table className="diff">
      <caption>
        Changed since revision {base.revision} (tier {base.tier}), the last one approved
      </caption>
      <thead>
        <tr>
          <th scope="col">What</th>
          <th scope="col">Approved</th>
          <th scope="col">Now</th>
        </tr>
      </thead>
      <tbody>
        {changes.map((c) => (
          <tr key={c.what}>
            <th scope="row">{c.what}</th>
            <td>
              <del>{c.before}</del>
            </td>
            <td>
              <ins>{c.after}</ins>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
