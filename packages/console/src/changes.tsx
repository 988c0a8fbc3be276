import type { Manifest, RevisionView, RiskInput } from './contracts.ts';

type Change = { what: string; before: string; after: string };

const show = (v: unknown) =>
  Array.isArray(v)
    ? v.length
      ? [...v].sort().join(', ')
      : 'none'
    : v === null || v === undefined || v === ''
      ? 'not set'
      : String(v);

const diff = <T,>(before: T, after: T, fields: [string, (x: T) => unknown][]): Change[] =>
  fields
    .map(([what, get]) => ({ what, before: show(get(before)), after: show(get(after)) }))
    .filter((c) => c.before !== c.after);

/** What changed in the risk-relevant answers between two registrations (for revisions without their answers). */
export function riskChanges(before: RiskInput, after: RiskInput): Change[] {
  return diff(before, after, [
    ['Data classes', (i) => i.dataClasses],
    ['Web services it calls', (i) => i.egress],
    ['Connectors', (i) => i.connectors],
    ['Secrets', (i) => i.secrets],
    ['Department', (i) => i.audience.department],
    ['Most users', (i) => i.audience.maxUsers],
    ['People from elsewhere', (i) => i.audience.people ?? []],
  ]);
}

/** What changed in the answers between two manifests: everything a person answered, not only the risk. */
export function answerChanges(before: Manifest, after: Manifest): Change[] {
  return diff(before, after, [
    ['Purpose', (m) => m.purpose],
    ['Data classes', (m) => m.dataClasses],
    ['Web services it calls', (m) => m.integrations?.egress ?? []],
    ['Connectors', (m) => m.integrations?.connectors ?? []],
    ['Secrets', (m) => m.secrets ?? []],
    ['Department', (m) => m.audience?.department],
    ['Most users', (m) => m.audience?.maxUsers],
    ['People from elsewhere', (m) => m.audience?.people ?? []],
    ['Needed until', (m) => m.lifetime?.expires ?? 'as long as its risk tier allows'],
    ['Template', (m) => (m.template ? `${m.template.name} ${m.template.version}` : 'own code')],
    ['Owner', (m) => m.owner],
  ]);
}

/** The newest earlier registration whose approval was complete: what this one is compared with. */
export function lastApproved(revisions: RevisionView[], current: number): RevisionView | null {
  return revisions.find((r) => r.revision < current && r.approved) ?? null;
}

/** Why an earlier revision was not approved, in a few words. */
function standing(r: RevisionView): string {
  const last = [...r.reviews]
    .reverse()
    .find((v) => v.decision === 'reject' || v.decision === 'request_changes');
  if (last?.decision === 'reject') return `rejected by ${last.reviewer}`;
  if (last) return `${last.reviewer} asked for changes`;
  return 'never approved';
}

/**
 * The changes since the last approved registration, as a table a reviewer reads in a glance; when none was
 * approved, the changes since the revision before (the one a reviewer asked to change, say), said as such.
 */
export function ChangesTable({ revisions, current }: { revisions: RevisionView[]; current: number }) {
  const now = revisions.find((r) => r.revision === current);
  if (!now) return null;
  const approved = lastApproved(revisions, current);
  const base = approved ?? revisions.find((r) => r.revision < current) ?? null;
  if (!base) return <p>First registration: there is no earlier revision to compare with.</p>;
  const changes =
    base.manifest && now.manifest
      ? answerChanges(base.manifest, now.manifest)
      : riskChanges(base.inputs, now.inputs);
  const since = approved
    ? `revision ${base.revision} (tier ${base.tier}), the last one approved`
    : `revision ${base.revision} (tier ${base.tier}), which was not approved: ${standing(base)}`;
  if (changes.length === 0) return <p>Nothing changed in the answers since {since}.</p>;
  return (
    <DiffTable
      caption={`Changed since ${since}`}
      before={approved ? 'Approved' : 'Before'}
      changes={changes}
    />
  );
}

/** Answers before and after, a row each: the old struck through, the new marked inserted. */
export function DiffTable(props: { caption: string; before: string; changes: Change[] }) {
  return (
    <table className="diff">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">What</th>
          <th scope="col">{props.before}</th>
          <th scope="col">Now</th>
        </tr>
      </thead>
      <tbody>
        {props.changes.map((c) => (
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
