import type { ConnectorView, Manifest } from '../contracts.ts';
import { ErrorNote, Facts } from '../ui.tsx';
import { useApi } from '../use-api.ts';
import {
  type Answers,
  chooseTemplate,
  dataChoices,
  lines,
  type Step,
  type Template,
} from './new-app-model.ts';

export function Question(props: {
  step: Step;
  answers: Answers;
  set: (p: Partial<Answers>) => void;
  templates: Template[];
  /** How long the app would run before a renewal, as the platform assessed it so far. */
  lifetimeDays: number | null;
  tier: string | null;
}) {
  const { step, answers: a, set } = props;
  const byName = (name: string) => props.templates.find((t) => t.name === name);
  switch (step) {
    case 'template':
      return (
        <fieldset>
          <legend id="question">What would you like to build?</legend>
          <p className="hint">
            Each template is vetted by the platform team: tests, a README and safe defaults included.
          </p>
          {/* Each choice is a stop of its own for Tab (a name of its own; the answer keeps one chosen), and
              Enter chooses it: people who use Tab and Enter, and not the arrow keys, can pick any. */}
          {props.templates.map((t, i) => (
            <label key={t.name} className="choice">
              <input
                type="radio"
                name={`template-${t.name}`}
                value={t.name}
                aria-posinset={i + 1}
                aria-setsize={props.templates.length + 1}
                checked={a.template === t.name}
                onChange={() => set(chooseTemplate(a, t, byName(a.template)))}
              />
              <span>
                <strong>{t.title}</strong> <span className="muted">v{t.version}</span>
                <br />
                {t.description}
              </span>
            </label>
          ))}
          <label className="choice">
            <input
              type="radio"
              name="template-own-code"
              value=""
              aria-posinset={props.templates.length + 1}
              aria-setsize={props.templates.length + 1}
              checked={a.template === ''}
              onChange={() => set(chooseTemplate(a, undefined, byName(a.template)))}
            />
            <span>
              <strong>My own code</strong>
              <br />
              You bring the app; the platform still builds, scans and signs it.
            </span>
          </label>
        </fieldset>
      );
    case 'name':
      return (
        <div className="field">
          <label id="question" htmlFor="name">
            What should the app be called?
          </label>
          <p className="hint" id="name-hint">
            It becomes the app's address: <code>{a.name || 'name'}.apps.…</code>. Lower case, digits and
            hyphens.
          </p>
          <input
            id="name"
            value={a.name}
            aria-describedby="name-hint"
            autoComplete="off"
            maxLength={63}
            onChange={(e) => set({ name: e.target.value.trim() })}
          />
        </div>
      );
    case 'purpose':
      return (
        <div className="field">
          <label id="question" htmlFor="purpose">
            What is it for?
          </label>
          <p className="hint" id="purpose-hint">
            A sentence or two a reviewer can understand: the business need and who benefits.
          </p>
          <textarea
            id="purpose"
            rows={4}
            maxLength={2000}
            aria-describedby="purpose-hint"
            value={a.purpose}
            onChange={(e) => set({ purpose: e.target.value })}
          />
        </div>
      );
    case 'audience':
      return (
        <fieldset>
          <legend id="question">Who will use it?</legend>
          <div className="field">
            <label htmlFor="department">Department whose people may open it</label>
            <input
              id="department"
              value={a.department}
              maxLength={63}
              onChange={(e) => set({ department: e.target.value.trim() })}
            />
          </div>
          <div className="field">
            <label htmlFor="maxUsers">About how many people, at most?</label>
            <input
              id="maxUsers"
              inputMode="numeric"
              value={a.maxUsers}
              onChange={(e) => set({ maxUsers: e.target.value.trim() })}
            />
          </div>
          <div className="field">
            <label htmlFor="people">
              People from elsewhere who may use it too (work e-mails, one per line)
            </label>
            <p className="hint" id="people-hint">
              For colleagues outside the department who asked for access. Leave empty if there are none.
            </p>
            <textarea
              id="people"
              rows={2}
              aria-describedby="people-hint"
              value={a.people}
              onChange={(e) => set({ people: e.target.value })}
            />
          </div>
        </fieldset>
      );
    case 'data':
      return (
        <fieldset>
          <legend id="question">What data does it touch?</legend>
          <p className="hint">
            Choose every kind it reads, stores or shows; the examples under each decide. Knowing who uses the
            app is not personal data: colleagues' names and work e-mails are internal information.
          </p>
          {dataChoices.map((d) => (
            <label key={d.id} className="choice">
              <input
                type="checkbox"
                name="dataClasses"
                value={d.id}
                checked={a.dataClasses.includes(d.id)}
                onChange={(e) =>
                  set({
                    dataClasses: e.target.checked
                      ? [...a.dataClasses, d.id]
                      : a.dataClasses.filter((x) => x !== d.id),
                  })
                }
              />
              <span>
                {d.label}
                <br />
                <span className="muted">{d.examples}</span>
              </span>
            </label>
          ))}
        </fieldset>
      );
    case 'connections':
      return (
        <fieldset>
          <legend id="question">Does it connect to anything outside the platform?</legend>
          <div className="field">
            <label htmlFor="egress">Web services it calls (host names, one per line)</label>
            <p className="hint" id="egress-hint">
              Only these will be reachable. Leave empty if it calls nothing.
            </p>
            <textarea
              id="egress"
              rows={3}
              aria-describedby="egress-hint"
              value={a.egress}
              onChange={(e) => set({ egress: e.target.value })}
            />
          </div>
          <ConnectorChoice
            chosen={lines(a.connectors)}
            onChange={(ids) => set({ connectors: ids.join('\n') })}
          />
        </fieldset>
      );
    case 'lifetime':
      return (
        <div className="field">
          <label id="question" htmlFor="expires">
            Until when is it needed?
          </label>
          <p className="hint" id="expires-hint">
            {props.lifetimeDays && props.tier && !a.expires
              ? `Leave empty and it runs up to ${props.lifetimeDays} days, the longest a ${props.tier}-risk app runs before you renew it; renewing takes one click.`
              : 'Leave empty and it runs as long as its risk tier allows before you renew it; renewing takes one click.'}
          </p>
          <input
            id="expires"
            type="date"
            aria-describedby="expires-hint"
            value={a.expires}
            onChange={(e) => set({ expires: e.target.value })}
          />
        </div>
      );
    case 'review':
      return (
        <h2 id="question" className="as-legend">
          Check your answers
        </h2>
      );
  }
}

/** The company connectors an admin defined, to tick; the app then reaches them without holding their credentials. */
function ConnectorChoice({ chosen, onChange }: { chosen: string[]; onChange: (ids: string[]) => void }) {
  const list = useApi<{ items: ConnectorView[] }>('/api/v1/connectors');
  if (list.error) return <ErrorNote error={list.error} />;
  if (!list.data) return null;
  if (!list.data.items.length)
    return <p className="hint">No company connector is defined yet; a platform admin adds them.</p>;
  return (
    <fieldset>
      <legend>Company connectors it uses</legend>
      <p className="hint">The platform adds their credentials; your app never holds them.</p>
      <div className="checks">
        {list.data.items.map((c) => (
          <label key={c.id} className="check">
            <input
              type="checkbox"
              checked={chosen.includes(c.id)}
              onChange={(e) =>
                onChange(e.target.checked ? [...chosen, c.id] : chosen.filter((x) => x !== c.id))
              }
            />{' '}
            {c.id}{' '}
            <span className="muted">({c.kind === 'postgres' ? 'database' : new URL(c.baseUrl).host})</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

export function Review({ manifest: m, lifetimeDays }: { manifest: Manifest; lifetimeDays: number | null }) {
  const rows: [string, string][] = [
    ['Name', m.name],
    ['Owner', m.owner],
    ['Purpose', m.purpose],
    ['Template', m.template ? `${m.template.name} ${m.template.version}` : 'my own code'],
    ['Department', m.audience?.department ?? 'any'],
    ['People', m.audience?.maxUsers ? `up to ${m.audience.maxUsers}` : 'not limited'],
    ['Also for', m.audience?.people?.join(', ') || 'nobody outside the department'],
    ['Data', m.dataClasses.join(', ')],
    ['Calls', m.integrations?.egress?.join(', ') || 'nothing outside'],
    ['Connectors', m.integrations?.connectors?.join(', ') || 'none'],
    [
      'Needed until',
      m.lifetime?.expires ??
        (lifetimeDays
          ? `${lifetimeDays} days from approval, then you renew it`
          : 'as long as its risk tier allows'),
    ],
  ];
  return <Facts rows={rows} />;
}
