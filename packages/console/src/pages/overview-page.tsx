import type { Overview } from '../contracts.ts';
import { Link } from '../router.tsx';
import { ErrorNote, Loading, Section, When } from '../ui.tsx';
import { useApi } from '../use-api.ts';
import { Bar } from './activity-section.tsx';

const stateWords: Record<string, string> = {
  approved: 'Approved',
  pending_review: 'Waiting for review',
  changes_requested: 'Changes requested',
  rejected: 'Rejected',
};
const stageWords: Record<string, string> = {
  active: 'Active',
  warned: 'Warned (expiring or idle)',
  stopped: 'Stopped',
  escalated: 'Escalated to a manager',
  decommissioned: 'Decommissioned',
};

/** Counts as rows with bars; each row links to the catalog filtered to it, where the catalog can filter. */
function CountTable(props: {
  caption: string;
  counts: Record<string, number>;
  words?: Record<string, string>;
  filter?: string;
}) {
  const rows = Object.entries(props.counts).sort((a, b) => b[1] - a[1]);
  const peak = Math.max(1, ...rows.map(([, n]) => n));
  return (
    <table className="bars">
      <caption>{props.caption}</caption>
      <tbody>
        {rows.map(([key, n]) => (
          <tr key={key}>
            <th scope="row">
              {props.filter ? (
                <Link href={`/?${props.filter}=${encodeURIComponent(key)}`}>{props.words?.[key] ?? key}</Link>
              ) : (
                (props.words?.[key] ?? key)
              )}
            </th>
            <Bar value={n} peak={peak} label={String(n)} />
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A short list of apps, each linked to its page, or a sentence when there is none. */
function AppList<T extends { app: string }>(props: {
  items: T[];
  none: string;
  columns: [string, (item: T) => React.ReactNode][];
  caption: string;
}) {
  if (props.items.length === 0) return <p className="muted">{props.none}</p>;
  return (
    <table>
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">App</th>
          {props.columns.map(([head]) => (
            <th scope="col" key={head}>
              {head}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.items.map((item, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: an app may appear twice (two failed builds); the server orders the rows
          <tr key={`${item.app}-${i}`}>
            <td>
              <Link href={`/apps/${item.app}`}>{item.app}</Link>
            </td>
            {props.columns.map(([head, cell]) => (
              <td key={head}>{cell(item)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The platform at a glance, for admins and auditors: apps by tier, state and lifecycle stage, what runs,
 * registrations by week, reviews waiting and for how long, apps expiring or idle, failing builds, and the
 * most used apps. Rows lead to the catalog filtered to them, or to the app.
 */
export function OverviewPage() {
  const o = useApi<Overview>('/api/v1/overview');
  if (o.error) return <ErrorNote error={o.error} />;
  if (!o.data) return <Loading what="the overview" />;
  const d = o.data;
  const weeks = Math.max(1, ...d.registrations.map((w) => w.count));
  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <p>
        {d.apps.total} apps, <Link href="/?running=yes">{d.apps.running} running live</Link>;{' '}
        {d.reviewsWaiting.count} waiting for review, {d.expiringSoon.count} expiring within 30 days,{' '}
        {d.idle.count} idle, {d.buildsFailing.count} failed builds this week.{' '}
        <span className="muted">
          As of <When at={d.at} />.
        </span>
      </p>
      <Section title="Apps">
        <div className="side-by-side">
          <CountTable caption="By risk tier" counts={d.apps.byTier} filter="tier" />
          <CountTable caption="By approval" counts={d.apps.byState} words={stateWords} filter="state" />
          <CountTable
            caption="By lifecycle stage"
            counts={d.apps.byStage}
            words={stageWords}
            filter="stage"
          />
        </div>
      </Section>
      <Section title="Registrations, week by week">
        <table className="bars">
          <caption>New apps registered each week (the last 12 weeks, weeks from Monday)</caption>
          <tbody>
            {d.registrations.map((w) => (
              <tr key={w.week}>
                <th scope="row">{w.week}</th>
                <Bar value={w.count} peak={weeks} label={String(w.count)} />
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Reviews waiting">
        <AppList
          caption="The longest waiting first"
          items={d.reviewsWaiting.oldest}
          none="No app waits for a review."
          columns={[
            ['Tier', (r) => r.tier],
            ['Waiting', (r) => (r.days === 0 ? 'since today' : `${r.days} days`)],
          ]}
        />
        {d.reviewsWaiting.count > d.reviewsWaiting.oldest.length ? (
          <p>
            <Link href="/?state=pending_review">All {d.reviewsWaiting.count} apps waiting for review</Link>
          </p>
        ) : null}
      </Section>
      <Section title="Expiring within 30 days">
        <AppList
          caption="The soonest first; their owners are told before each step"
          items={d.expiringSoon.apps}
          none="No app expires within 30 days."
          columns={[
            ['Expires', (a) => <When at={a.expiresAt} />],
            ['In', (a) => `${a.days} days`],
          ]}
        />
        {d.expiringSoon.count ? (
          <p>
            <Link href="/?expiringDays=30">In the catalog: every app expiring within 30 days</Link>
          </p>
        ) : null}
      </Section>
      <Section title="Idle">
        <AppList
          caption="Apps nobody used for too long, warned or stopped"
          items={d.idle.apps}
          none="No app is idle."
          columns={[
            ['Stage', (a) => stageWords[a.stage] ?? a.stage],
            ['Since', (a) => <When at={a.since} />],
          ]}
        />
      </Section>
      <Section title="Builds that failed this week">
        <AppList
          caption="Newest first"
          items={d.buildsFailing.builds}
          none="No build failed in the last 7 days."
          columns={[
            ['When', (b) => <When at={b.at} />],
            ['Why', (b) => b.error ?? 'the pipeline failed'],
          ]}
        />
      </Section>
      <Section title="Most used this month">
        <AppList
          caption="Requests through the gateway in the last 30 days"
          items={d.topApps}
          none="No app was used in the last 30 days."
          columns={[
            ['Requests', (a) => a.requests],
            ['People', (a) => a.people],
          ]}
        />
      </Section>
    </>
  );
}
