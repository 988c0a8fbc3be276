import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, api } from '../api.ts';
import { answerChanges, DiffTable } from '../changes.tsx';
import type { AppView, Assessment, Manifest } from '../contracts.ts';
import { PolicyVerdict } from '../policy-verdict.tsx';
import { navigate, useLocation } from '../router.tsx';
import { useSession } from '../session.tsx';
import { ErrorNote, Loading, RiskFactors, TierBadge } from '../ui.tsx';
import { useApi } from '../use-api.ts';
import { reviewersWord } from './approval-standing.tsx';
import {
  type Answers,
  answersOf,
  editedManifest,
  labels,
  manifestOf,
  problemWith,
  steps,
  type Template,
} from './new-app-model.ts';
import { Question, Review } from './new-app-questions.tsx';

/**
 * Register an app one plain-language question at a time. The risk tier and its reasons come from the
 * platform (POST /api/v1/assessments) after every change, so the user sees what their answers mean.
 */
export function NewAppPage() {
  const { search } = useLocation();
  const edit = search.get('edit');
  const app = useApi<AppView>(edit ? `/api/v1/apps/${encodeURIComponent(edit)}` : null);
  if (!edit) return <Wizard original={null} />;
  if (!app.data) return app.error ? <ErrorNote error={app.error} /> : <Loading what={edit} />;
  return <Wizard original={app.data} key={`${app.data.name}:${app.data.revision}`} />;
}

/** The wizard; with `original`, it changes that app's answers (prefilled) instead of registering a new one. */
function Wizard({ original }: { original: AppView | null }) {
  const session = useSession();
  const templates = useApi<{ items: Template[] }>('/api/v1/templates');
  const list = templates.data?.items ?? [];
  const first = original ? steps.indexOf('purpose') : 0;
  const [answers, setAnswers] = useState<Answers>(() =>
    original
      ? answersOf(original.manifest)
      : {
          template: '',
          name: '',
          purpose: '',
          department: session.user.department ?? '',
          maxUsers: '',
          people: '',
          dataClasses: [],
          egress: '',
          connectors: '',
          expires: '',
        },
  );
  const [index, setIndex] = useState(first);
  const [tried, setTried] = useState(false);
  const [submitError, setSubmitError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const step = steps[index]!;
  const manifest = useMemo(
    () =>
      original
        ? editedManifest(original.manifest, answers, list)
        : manifestOf(answers, session.user.email, list),
    [answers, session.user.email, list, original],
  );
  const assessment = useAssessment(manifest);
  const problem = problemWith(step, answers);
  const set = (patch: Partial<Answers>) => setAnswers((a) => ({ ...a, ...patch }));

  // After Next or Back, focus moves to the new question (its field, when it has one), not to the page.
  const shown = useRef(index);
  useEffect(() => {
    if (shown.current === index) return;
    shown.current = index;
    const question = document.getElementById('question');
    if (!question) return;
    const field =
      question instanceof HTMLLabelElement && question.htmlFor
        ? document.getElementById(question.htmlFor)
        : null;
    if (!field) question.setAttribute('tabindex', '-1');
    (field ?? question).focus();
  }, [index]);

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
      navigate(`/apps/${manifest.name}?${original ? 'changed' : 'registered'}=1`);
    } catch (e) {
      setSubmitError(e instanceof ApiError ? e : new ApiError(0, 'network', String(e), []));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>{original ? `Change ${original.name}` : 'Register a new app'}</h1>
      {original ? <ChangeRequested app={original} /> : null}
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
          onKeyDown={(e) => {
            // Enter on a choice chooses it (a checkbox toggles) instead of sending the step half answered.
            const input = e.target as HTMLInputElement;
            if (e.key !== 'Enter' || input.tagName !== 'INPUT') return;
            if (input.type === 'checkbox' || (input.type === 'radio' && !input.checked)) {
              e.preventDefault();
              input.click();
            }
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
          {step === 'review' && original ? <WhatChanges before={original.manifest} after={manifest} /> : null}
          {/* Where the answer the policy refuses is given, and before registering: said here, not after reviews. */}
          {(step === 'connections' || step === 'review') &&
          assessment.data &&
          !assessment.data.policy.allowed ? (
            <PolicyVerdict policy={assessment.data.policy} advice={policyAdvice} />
          ) : null}
          <ErrorNote error={submitError} />
          <div className="actions">
            {index > first ? (
              <button type="button" onClick={() => setIndex((i) => i - 1)}>
                Back
              </button>
            ) : null}
            <button type="submit" className="primary" disabled={busy}>
              {step === 'review'
                ? original
                  ? busy
                    ? 'Sending…'
                    : 'Send the changes'
                  : busy
                    ? 'Registering…'
                    : 'Register the app'
                : 'Next'}
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
                <span className="muted">score {assessment.data.score} of 100</span>
              </p>
              <p data-testid="tier-meaning">{assessment.data.meaning}</p>
              <h3>Policy</h3>
              {(step === 'connections' || step === 'review') && !assessment.data.policy.allowed ? (
                <p className="bad">
                  The organization's policy refuses this: the reasons are beside the question.
                </p>
              ) : (
                <PolicyVerdict policy={assessment.data.policy} advice={policyAdvice} />
              )}
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

/** What a reviewer asked for, as the call to action of the change: their words, not a bullet among others. */
function ChangeRequested({ app }: { app: AppView }) {
  const asked = reviewersWord(app);
  if (app.state === 'changes_requested' && asked)
    return (
      <div className="notice" role="note" data-testid="change-requested">
        <p>
          <strong>{asked.reviewer} asked for changes:</strong> “{asked.comment}”
        </p>
        <p>Change the answers below and send them: the reviewers are asked again.</p>
      </div>
    );
  return (
    <p className="muted">
      Your answers as registered (revision {app.revision}). A change to its data, connections or audience is
      reviewed again; other changes keep the approval.
    </p>
  );
}

/** The answers this change sends, beside the registered ones. */
function WhatChanges({ before, after }: { before: Manifest; after: Manifest }) {
  const changes = answerChanges(before, after);
  if (changes.length === 0) return <p role="status">Nothing is changed yet: go back to change an answer.</p>;
  return <DiffTable caption="What changes" before="Registered" changes={changes} />;
}

const policyAdvice =
  'Registering would be refused: change the answer it names (on the Connections step), or ask a platform admin about the rule.';

const namePattern = /^(?!.*--)[a-z0-9]([a-z0-9-]{0,52}[a-z0-9])?$/;

function useAssessment(manifest: Manifest) {
  const [state, setState] = useState<{ data: Assessment | null; error: ApiError | null }>({
    data: null,
    error: null,
  });
  // The risk does not depend on the name: a name half typed ("finance-") is previewed as a placeholder rather
  // than sent to be refused, and the name step says what is wrong with it.
  const body = JSON.stringify(namePattern.test(manifest.name) ? manifest : { ...manifest, name: 'new-app' });
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
