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
                  <code>{summarise(d.result)}</code>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function summarise(result: unknown): string {
  const s = JSON.stringify(result);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}
