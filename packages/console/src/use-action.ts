import { useState } from 'react';
import { ApiError } from './api.ts';

/**
 * One user action against the API: `run` clears the last outcome, marks the action busy, and keeps what
 * it returned (a result or a sentence for the user) or the refusal, which the page shows as it is.
 */
export function useAction<T>(): {
  run: (what: () => Promise<T>) => Promise<void>;
  result: T | null;
  error: ApiError | null;
  busy: boolean;
} {
  const [state, setState] = useState<{ result: T | null; error: ApiError | null; busy: boolean }>({
    result: null,
    error: null,
    busy: false,
  });
  const run = async (what: () => Promise<T>) => {
    setState({ result: null, error: null, busy: true });
    try {
      const result = await what();
      setState({ result, error: null, busy: false });
    } catch (e) {
      setState({
        result: null,
        error: e instanceof ApiError ? e : new ApiError(0, 'network', String(e), []),
        busy: false,
      });
    }
  };
  return { run, ...state };
}
