import { api } from '../api.ts';
import { ErrorNote } from '../ui.tsx';
import { useAction } from '../use-action.ts';

/**
 * For an app the person cannot see (another department's, or no app at all: the platform does not say which):
 * a way forward instead of a dead end. The owner of an app that exists is asked, with the reason.
 */
export function AskForAccess({ name, focus }: { name: string; focus: boolean }) {
  const action = useAction<string>();
  return (
    <form
      className="card"
      aria-labelledby="ask-heading"
      onSubmit={(e) => {
        e.preventDefault();
        const reason = String(new FormData(e.currentTarget).get('reason') ?? '').trim();
        void action.run(async () => {
          const r = await api<{ message: string }>('POST', '/api/v1/access-requests', { app: name, reason });
          return r.message;
        });
      }}
    >
      <h2 id="ask-heading">Ask for access</h2>
      <div className="field">
        <label htmlFor="reason">Why do you need {name}?</label>
        <p className="hint" id="reason-hint">
          Its owner reads this and decides; a change to who may use an app is reviewed like any other.
        </p>
        <textarea
          id="reason"
          name="reason"
          rows={3}
          minLength={10}
          maxLength={500}
          required
          aria-describedby="reason-hint"
          // biome-ignore lint/a11y/noAutofocus: the person came from an app's refusal page to ask for access
          autoFocus={focus}
        />
      </div>
      <button type="submit" className="primary" disabled={action.busy}>
        Ask the owner
      </button>
      {action.result ? (
        <p className="notice" role="status">
          {action.result}
        </p>
      ) : null}
      <ErrorNote error={action.error} />
    </form>
  );
}
