import { useCallback, useEffect, useState } from 'react';
import { ApiError, api } from './api.ts';

/**
 * Load a GET path; `reload` fetches it again after a change. A null path loads nothing. With `post`, the
 * path is a question asked with that body that changes nothing (an assessment, say), asked again when the
 * body changes.
 */
export function useApi<T>(
  path: string | null,
  post?: unknown,
): {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
} {
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: path !== null,
  });
  const [tick, setTick] = useState(0);
  const body = post === undefined ? undefined : JSON.stringify(post);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new tick is how `reload` asks for the path again
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    (body === undefined ? api<T>('GET', path) : api<T>('POST', path, JSON.parse(body))).then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: unknown) =>
        live &&
        setState({
          data: null,
          error: error instanceof ApiError ? error : new ApiError(0, 'network', String(error), []),
          loading: false,
        }),
    );
    return () => {
      live = false;
    };
  }, [path, body, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}
