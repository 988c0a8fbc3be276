import { useEffect, useMemo, useState } from 'react';
import { ApiError, api } from '../api.ts';
import type { Assessment, ConnectorView, Manifest } from '../contracts.ts';
import { navigate } from '../router.tsx';
import { useSession } from '../session.tsx';
import { ErrorNote, Facts, RiskFactors, TierBadge } from '../ui.tsx';
import { useApi } from '../use-api.ts';

type Template = { name: string; version: string; title: string; description: string };

const dataChoices: { id: Manifest['dataClasses'][number]; label: string }[] = [
  { id: 'public', label: 'Public information anyone may see' },
  { id: 'internal', label: 'Internal information: staff only' },
  { id: 'confidential', label: 'Confidential business information' },
  { id: 'pii', label: 'Personal data about people (names, e-mails, IDs)' },
  { id: 'financial', label: 'Financial records (accounts, payments, ledgers)' },
  { id: 'health', label: 'Health information' },
  { id: 'regulated', label: 'Data under a regulation (e.g. PCI, SOX)' },
];

type Answers = {
  template: string;
  name: string;
  purpose: string;
  department: string;
  maxUsers: string;
  dataClasses: string[];
  egress: string;
  connectors: string;
  expires: string;
};

const steps = [
  'template',
  'name',
  'purpose',
  'audience',
  'data',
  'connections',
  'lifetime',
  'review',
] as const;
type Step = (typeof steps)[number];
const labels: Record<Step, string> = {
  template: 'Start from',
  name: 'Name',
  purpose: 'Purpose',
  audience: 'Who uses it',
  data: 'Data',
  connections: 'Connections',
  lifetime: 'How long',
  review: 'Check and register',
};

const lines = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);

function manifestOf(a: Answers, owner: string, templates: Template[]): Manifest {
  const t = templates.find((x) => x.name === a.template);
  const egress = lines(a.egress);
  const connectors = lines(a.connectors);
  return {
    name: a.name || 'new-app',
    owner,
    purpose: a.purpose.trim().length >= 10 ? a.purpose.trim() : 'not answered yet',
    dataClasses: (a.dataClasses.length ? a.dataClasses : ['internal']) as Manifest['dataClasses'],
    audience: {
      ...(a.department ? { department: a.department } : {}),
      ...(a.maxUsers ? { maxUsers: Number(a.maxUsers) } : {}),
    },
    ...(egress.length || connectors.length
      ? {
          integrations: {
            ...(egress.length ? { egress } : {}),
            ...(connectors.length ? { connectors } : {}),
          },
        }
      : {}),
    ...(t
      ? {
          template: { name: t.name, version: t.version },
          runtime: { kind: 'node' as const, entry: 'server.js' },
        }
      : {}),
    ...(a.expires ? { lifetime: { expires: a.expires } } : {}),
  };
}

/** What is wrong with the answer on this step, in the words a user would use; null when it is fine. */
function problemWith(step: Step, a: Answers): string | null {
  if (step === 'name') {
    if (!a.name) return 'Give the app a name.';
    if (!/^(?!.*--)[a-z0-9]([a-z0-9-]{0,52}[a-z0-9])?$/.test(a.name))
      return 'Use lower-case letters, digits and single hyphens (no spaces), starting and ending with a letter or digit; at most 54.';
  }
  if (step === 'purpose' && a.purpose.trim().length < 10)
    return 'Say in a sentence what the app is for (at least 10 characters).';
  if (step === 'audience') {
    if (a.department && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(a.department))
      return 'A department is written in lower case, like "finance".';
    if (a.maxUsers && !(Number.isInteger(Number(a.maxUsers)) && Number(a.maxUsers) >= 1))
      return 'The number of people is a whole number, 1 or more.';
  }
  if (step === 'data' && a.dataClasses.length === 0) return 'Choose at least one kind of data.';
  if (step === 'connections') {
    const bad = lines(a.egress).find(
      (h) => !/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/.test(h),
    );
    if (bad) return `"${bad}" is not a host name like api.example.com.`;
  }
  if (step === 'lifetime' && a.expires && Date.parse(`${a.expires}T00:00:00Z`) <= Date.now())
    return 'The end date must be in the future.';
  return null;
}

/**
 * Register an app one plain-language question at a time. The risk tier and its reasons come from the
 * platform (POST /api/v1/assessments) after every change, so the user sees what their answers mean.
 */
export function NewAppPage() {
  const session = useSession();
  const templates = useApi<{ items: Template[] }>('/api/v1/templates');
  const list = templates.data?.items ?? [];
  const [answers, setAnswers] = useState<Answers>({
    template: '',
    name: '',
    purpose: '',
    department: session.user.department ?? '',
    maxUsers: '',
    dataClasses: [],
    egress: '',
    connectors: '',
    expires: '',
  });
  const [index, setIndex] = useState(0);
  const [tried, setTried] = useState(false);
  const [submitError, setSubmitError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const step = steps[index]!;
  const manifest = useMemo(
    () => manifestOf(answers, session.user.email, list),
    [answers, session.user.email, list],
  );
  const assessment = useAssessment(manifest);
  const problem = problemWith(step, answers);
  const set = (patch: Partial<Answers>) => setAnswers((a) => ({ ...a, ...patch }));

  const next = () => {
    setTried(true);
    if (problem) return;
    setTried(false);
    setIndex((i) => Math.min(i + 1, steps.length - 1));
  };
  const register = async () => {
    setBusy(true);
    setSubmitError(null);
    try {
      await api('POST', '/api/v1/apps', manifest);
      navigate(`/apps/${manifest.name}?registered=1`);
    } catch (e) {
      setSubmitError(e instanceof ApiError ? e : new ApiError(0, 'network', String(e), []));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>Register a new app</h1>
      <ol className="steps" aria-label="Steps">
        {steps.map((s, i) => (
          <li key={s} aria-current={i === index ? 'step' : undefined} className={i < index ? 'done' : ''}>
            {labels[s]}
          </li>
        ))}
      </ol>
      <div className="wizard">
        <form
          className="card question"
          aria-labelledby="question"
          onSubmit={(e) => {
            e.preventDefault();
            if (step === 'review') void register();
            else next();
          }}
        >
          <Question
            step={step}
            answers={answers}
            set={set}
            templates={list}
            lifetimeDays={assessment.data?.lifetimeDays ?? null}
            tier={assessment.data?.tier ?? null}
          />
          {tried && problem ? (
            <p className="error" role="alert" id="problem">
              {problem}
            </p>
          ) : null}
          {step === 'review' ? (
            <Review manifest={manifest} lifetimeDays={assessment.data?.lifetimeDays ?? null} />
          ) : null}
          <ErrorNote error={submitError} />
          <div className="actions">
            {index > 0 ? (
              <button type="button" onClick={() => setIndex((i) => i - 1)}>
                Back
              </button>
            ) : null}
            <button type="submit" className="primary" disabled={busy}>
              {step === 'review' ? (busy ? 'Registering…' : 'Register the app') : 'Next'}
            </button>
          </div>
        </form>
        <aside className="card risk" aria-labelledby="risk-heading" aria-live="polite">
          <h2 id="risk-heading">Risk so far</h2>
          {assessment.error ? <ErrorNote error={assessment.error} /> : null}
          {assessment.data ? (
            <>
              <p>
                <TierBadge tier={assessment.data.tier} />{' '}
                <span className="muted">score {assessment.data.score}</span>
              </p>
              <p data-testid="tier-meaning">{assessment.data.meaning}</p>
              {assessment.data.factors.length ? (
                <>
                  <h3>Why</h3>
                  <RiskFactors factors={assessment.data.factors} />
                </>
              ) : (
                <p className="muted">Nothing in your answers raises the risk.</p>
              )}
            </>
          ) : (
            <p className="muted">Answer the questions to see the app's risk tier.</p>
          )}
        </aside>
      </div>
    </>
  );
}

function useAssessment(manifest: Manifest) {
  const [state, setState] = useState<{ data: Assessment | null; error: ApiError | null }>({
    data: null,
    error: null,
  });
  const body = JSON.stringify(manifest);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      api<Assessment>('POST', '/api/v1/assessments', JSON.parse(body)).then(
        (data) => live && setState({ data, error: null }),
        (error: ApiError) => live && setState((s) => ({ data: s.data, error })),
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [body]);
  return state;
}

function Question(props: {
  step: Step;
  answers: Answers;
  set: (p: Partial<Answers>) => void;
  templates: Template[];
  /** How long the app would run before a renewal, as the platform assessed it so far. */
  lifetimeDays: number | null;
  tier: string | null;
}) {
  const { step, answers: a, set } = props;
  switch (step) {
    case 'template':
      return (
        <fieldset>
          <legend id="question">What would you like to build?</legend>
          <p className="hint">
            Each template is vetted by the platform team: tests, a README and safe defaults included.
          </p>
          {props.templates.map((t) => (
            <label key={t.name} className="choice">
              <input
                type="radio"
                name="template"
                value={t.name}
                checked={a.template === t.name}
                onChange={() => set({ template: t.name })}
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
              name="template"
              value=""
              checked={a.template === ''}
              onChange={() => set({ template: '' })}
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
        </fieldset>
      );
    case 'data':
      return (
        <fieldset>
          <legend id="question">What data does it touch?</legend>
          <p className="hint">
            Choose every kind it reads, stores or shows. When unsure, choose the more sensitive one.
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
              <span>{d.label}</span>
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

function Review({ manifest: m, lifetimeDays }: { manifest: Manifest; lifetimeDays: number | null }) {
  const rows: [string, string][] = [
    ['Name', m.name],
    ['Owner', m.owner],
    ['Purpose', m.purpose],
    ['Template', m.template ? `${m.template.name} ${m.template.version}` : 'my own code'],
    ['Department', m.audience?.department ?? 'any'],
    ['People', m.audience?.maxUsers ? `up to ${m.audience.maxUsers}` : 'not limited'],
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
