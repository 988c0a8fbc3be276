import type { UsageSummary } from '../contracts.ts';
import { ErrorNote, Facts, Section } from '../ui.tsx';
import { useApi } from '../use-api.ts';

type LogView = {
  env: string;
  running: boolean;
  version: string | null;
  items: { seq: number; at: string; stream: string; version: string; line: string }[];
};

export function LogsSection({ name }: { name: string }) {
  const live = useApi<LogView>(`/api/v1/apps/${name}/logs?env=live&limit=300`);
  const preview = useApi<LogView>(`/api/v1/apps/${name}/logs?env=preview&limit=300`);
  return (
    <Section title="Logs" id="logs">
      <p>What the app printed, newest last, with its secrets blanked out before they were stored.</p>
      <button
        type="button"
        onClick={() => {
          live.reload();
          preview.reload();
        }}
      >
        Refresh
      </button>
      {[live, preview].map((l) => (
        <ErrorNote key={`error-${l === live ? 'live' : 'preview'}`} error={l.error} />
      ))}
      {[live.data, preview.data].map((l) =>
        l && (l.running || l.items.length) ? (
          <div key={l.env}>
            <h3>
              {l.env === 'live' ? 'Live' : 'Preview'} {l.running ? `(${l.version})` : '(not running)'}
            </h3>
            {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling block must take focus so keyboard users can scroll it */}
            <pre className="manifest" tabIndex={0} data-testid={`logs-${l.env}`}>
              {l.items.length
                ? l.items.map((i) => `${i.at.slice(0, 19).replace('T', ' ')} ${i.line}`).join('\n')
                : 'Nothing printed yet.'}
            </pre>
          </div>
        ) : null,
      )}
    </Section>
  );
}

/** Bytes as people read them: 512 B, 3.4 KB, 12 MB. */
function bytes(n: number) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** A number with a bar scaled to the column's largest value; the bar is decoration, the number is the data. */
export function Bar({ value, peak, label }: { value: number; peak: number; label: string }) {
  return (
    <td>
      <span className="bar" style={{ width: `${(value / Math.max(1, peak)) * 100}%` }} aria-hidden="true" />
      {label}
    </td>
  );
}

export function UsageSection({ name }: { name: string }) {
  const u = useApi<UsageSummary>(`/api/v1/apps/${name}/usage?days=30`);
  if (!u.data) return u.error ? <ErrorNote error={u.error} /> : null;
  const d = u.data;
  const peak = (pick: (x: UsageSummary['byDay'][number]) => number) => Math.max(1, ...d.byDay.map(pick));
  const peaks = {
    requests: peak((x) => x.requests),
    users: peak((x) => x.users),
    errors: peak((x) => x.serverErrors),
    latency: peak((x) => x.averageLatencyMs ?? 0),
    egress: peak((x) => x.egressBytes),
  };
  return (
    <Section title="Use in the last 30 days">
      <Facts
        className="stats"
        rows={[
          ['Requests', d.requests],
          ['People', d.users],
          ['Server errors', d.serverErrors],
          ['Average latency', d.averageLatencyMs === null ? 'n/a' : `${Math.round(d.averageLatencyMs)} ms`],
          ['Sent and received outside', bytes(d.egressBytes)],
        ]}
      />
      {d.byDay.length ? (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a block that scrolls sideways on a phone must take focus so keyboard users can scroll it
        <section className="table-scroll" tabIndex={0} aria-label="Use day by day">
          <table className="bars">
            <caption>
              Day by day: requests, people, server errors, average latency and data through the egress broker
            </caption>
            <thead>
              <tr>
                <th scope="col">Day</th>
                <th scope="col">Requests</th>
                <th scope="col">People</th>
                <th scope="col">Server errors</th>
                <th scope="col">Average latency</th>
                <th scope="col">Outside traffic</th>
              </tr>
            </thead>
            <tbody>
              {d.byDay.map((x) => (
                <tr key={x.day}>
                  <th scope="row">{x.day}</th>
                  <Bar value={x.requests} peak={peaks.requests} label={String(x.requests)} />
                  <Bar value={x.users} peak={peaks.users} label={String(x.users)} />
                  <Bar value={x.serverErrors} peak={peaks.errors} label={String(x.serverErrors)} />
                  <Bar
                    value={x.averageLatencyMs ?? 0}
                    peak={peaks.latency}
                    label={x.averageLatencyMs === null ? 'n/a' : `${Math.round(x.averageLatencyMs)} ms`}
                  />
                  <Bar value={x.egressBytes} peak={peaks.egress} label={bytes(x.egressBytes)} />
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : (
        <p className="muted">Nobody has used it in this period.</p>
      )}
    </Section>
  );
}
