import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, api } from '../api.ts';
import type { Assessment, Manifest } from '../contracts.ts';
import { PolicyVerdict } from '../policy-verdict.tsx';
import { navigate } from '../router.tsx';
import { useSession } from '../session.tsx';
import { ErrorNote, RiskFactors, TierBadge } from '../ui.tsx';
import { useApi } from '../use-api.ts';
import { type Answers, labels, manifestOf, problemWith, steps, type Template } from './new-app-model.ts';
import { Question, Review } from './new-app-questions.tsx';

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
          {/* Where the answer the policy refuses is given, and before registering: said here, not after reviews. */}
          {(step === 'connections' || step === 'review') &&
          assessment.data &&
          !assessment.data.policy.allowed ? (
            <PolicyVerdict policy={assessment.data.policy} advice={policyAdvice} />
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
