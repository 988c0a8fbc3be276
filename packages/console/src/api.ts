/** A refusal from the API, with the RFC 9457 problem's detail: what went wrong and what to do next. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly errors: { path?: string; message: string }[];
  constructor(status: number, code: string, detail: string, errors: { path?: string; message: string }[]) {
    super(detail);
    this.status = status;
    this.code = code;
    this.errors = errors;
  }
}

let csrfToken: string | null = null;

/** The session's CSRF token, sent with every cookie-authenticated write. */
export function setCsrfToken(token: string | null) {
  csrfToken = token;
}

/** Call the platform's API as the signed-in browser. Every decision is the API's; this only carries it. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  return send<T>(method, path, body === undefined ? undefined : JSON.stringify(body), 'application/json');
}

/** Send a file as the request body (an advisory snapshot's zip, say), with its media type. */
export async function upload<T>(path: string, file: Blob, contentType: string): Promise<T> {
  return send<T>('POST', path, file, contentType);
}

async function send<T>(
  method: string,
  path: string,
  body: string | Blob | undefined,
  contentType: string,
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = contentType;
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body } : {}),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const problem = (data ?? {}) as { code?: string; detail?: string; title?: string; errors?: [] };
    throw new ApiError(
      res.status,
      problem.code ?? 'error',
      problem.detail ?? problem.title ?? `the server answered ${res.status}`,
      problem.errors ?? [],
    );
  }
  return data as T;
}

/** A query string from the set values only. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
