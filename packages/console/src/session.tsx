import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';
import { ApiError, api, setCsrfToken } from './api.ts';
import type { Session } from './contracts.ts';

const SessionContext = createContext<Session | null>(null);

/** The signed-in user. The roles shape what the console shows; the API decides what is allowed. */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}

export const hasRole = (s: Session, ...roles: string[]) => roles.some((r) => s.user.roles.includes(r));

/** Loads the browser's session; without one, shows the sign-in page. */
export function SessionGate({ children }: { children: ReactNode }) {
  const [state, setState] = useState<{ session: Session | null; error: Error | null; done: boolean }>({
    session: null,
    error: null,
    done: false,
  });
  useEffect(() => {
    // Asked so that a signed-out visit is an answer, not a 401 in the browser's console.
    api<({ signedIn: true } & Session) | { signedIn: false }>('GET', '/api/v1/auth/browser-session').then(
      (answer) => {
        if (!answer.signedIn) return setState({ session: null, error: null, done: true });
        const { signedIn: _, ...session } = answer;
        setCsrfToken(session.csrfToken);
        setState({ session, error: null, done: true });
      },
      (error: unknown) =>
        setState({
          session: null,
          error: error instanceof ApiError && error.status === 401 ? null : (error as Error),
          done: true,
        }),
    );
  }, []);
  if (!state.done)
    return (
      <main id="main" className="signin">
        <p aria-live="polite">Checking your session…</p>
      </main>
    );
  if (!state.session) return <SignIn error={state.error} />;
  return <SessionContext.Provider value={state.session}>{children}</SessionContext.Provider>;
}

function SignIn({ error }: { error: Error | null }) {
  const back = window.location.pathname + window.location.search;
  return (
    <main id="main" className="signin">
      <h1>microapp</h1>
      <p>Register, review, run and retire your organisation's micro apps.</p>
      {error ? (
        <p role="alert" className="error">
          The platform did not answer: {error.message}. Try again in a moment.
        </p>
      ) : null}
      <a className="button primary" href={`/auth/login?return_to=${encodeURIComponent(back)}`}>
        Sign in with your company account
      </a>
    </main>
  );
}
