/** A policy decision from the decision log, as `GET /api/v1/policies/decisions` answers it. */
export type Decision = {
  id: string;
  at: string;
  entrypoint: string;
  revision: string;
  result: unknown;
  subject: string | null;
};

/** The newest decision of each policy rule about the app: deny rules read as passed or as their denials. */
export function PolicyResults({ decisions }: { decisions: Decision[] }) {
  const newest = new Map<string, Decision>();
  for (const d of decisions) if (!newest.has(d.entrypoint)) newest.set(d.entrypoint, d);
  return (
    <table className="policy">
      <caption className="sr-only">Policy results</caption>
      <thead>
        <tr>
          <th scope="col">Rule</th>
          <th scope="col">Result</th>
        </tr>
      </thead>
      <tbody>
        {[...newest.values()].map((d) => {
          const rule = d.entrypoint.replace(/^data\./, '');
          const denials = rule.endsWith('.deny') && Array.isArray(d.result) ? (d.result as unknown[]) : null;
          return (
            <tr key={d.entrypoint}>
              <th scope="row">
                <code>{rule}</code>
                <br />
                <span className="muted">{d.revision}</span>
              </th>
              <td>
                {denials ? (
                  denials.length === 0 ? (
                    <span className="ok">Passed: nothing denied</span>
                  ) : (
                    <ul>
                      {denials.map((x) => (
                        <li key={JSON.stringify(x)} className="bad">
                          {typeof x === 'string' ? x : JSON.stringify(x)}
                        </li>
                      ))}
                    </ul>
                  )
                ) : (
                  <>
                    {inWords(d.result)}
                    <details>
                      <summary>As the policy answered</summary>
                      <code>{summarise(d.result)}</code>
                    </details>
                  </>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** A decision's result in words, for the shapes the platform's rules answer with. */
function inWords(result: unknown): string {
  if (result === true) return 'Yes';
  if (result === false) return 'No';
  if (result === null || result === undefined) return 'No answer (the rule did not apply)';
  if (Array.isArray(result)) {
    if (result.length === 0) return 'Nothing';
    if (result.every((x) => x && typeof x === 'object' && 'specialty' in x))
      return `Needs ${result
        .map((x) =>
          (x as { specialty: string | null }).specialty
            ? `a ${(x as { specialty: string }).specialty} reviewer`
            : 'a reviewer',
        )
        .join(' and ')}`;
    if (result.every((x) => typeof x === 'string')) return result.join('; ');
    return `${result.length} items`;
  }
  if (typeof result === 'object') {
    const r = result as { tier?: string; score?: number; allow?: boolean; reason?: string };
    if (r.tier && typeof r.score === 'number') return `${r.tier} risk, score ${r.score} of 100`;
    if (typeof r.allow === 'boolean')
      return `${r.allow ? 'Allowed' : 'Refused'}${r.reason ? `: ${r.reason}` : ''}`;
    return 'See the answer below';
  }
  return String(result);
}

function summarise(result: unknown): string {
  const s = JSON.stringify(result);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}
