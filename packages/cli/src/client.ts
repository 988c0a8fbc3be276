import { loadCredential } from './credentials.ts';
import { type Reply, send } from './http.ts';

/** A failure the CLI reports: what went wrong and what to do next. Exit code 1 unless said otherwise. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly problem?: Record<string, unknown>;
  constructor(message: string, options: { exitCode?: number; problem?: Record<string, unknown> } = {}) {
    super(message);
    this.exitCode = options.exitCode ?? 1;
    this.problem = options.problem;
  }
}

export type ClientOptions = { server: string; token?: string };

/** Where the CLI talks to: --server, then MICROAPP_SERVER, then http://localhost:8080, without a trailing slash. */
export function serverUrl(flag: string | undefined): string {
  const raw = flag ?? process.env.MICROAPP_SERVER ?? 'http://localhost:8080';
  try {
    const url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
    return url.href.replace(/\/+$/, '');
  } catch {
    throw new CliError(`--server must be an http(s) URL, got "${raw}"`, { exitCode: 2 });
  }
}

/** A small JSON client of the platform's API that turns problem+json into CliError. */
export function createClient(options: ClientOptions) {
  const token = () => options.token ?? process.env.MICROAPP_TOKEN ?? loadCredential(options.server)?.token;

  async function request<T>(
    method: string,
    path: string,
    body?: unknown,
    init: { contentType?: string; auth?: boolean; binary?: boolean } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const auth = init.auth ?? true;
    if (auth) {
      const t = token();
      if (!t) throw new CliError(`not signed in to ${options.server}: run \`microapp login\` first`);
      headers.authorization = `Bearer ${t}`;
    }
    let payload: string | undefined;
    if (body !== undefined) {
      headers['content-type'] = init.contentType ?? 'application/json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    let res: Reply;
    try {
      res = await send(options.server + path, { method, headers, body: payload });
    } catch (error) {
      throw new CliError(
        `cannot reach the microapp server at ${options.server} (${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}); is it running? Start one with \`microapp server --dev\` or pass --server`,
      );
    }
    const bytes = res.body;
    const ok = res.status >= 200 && res.status < 300;
    if (ok && init.binary) return bytes as T;
    const text = bytes.toString('utf8');
    const data = text ? safeJson(text) : undefined;
    if (!ok) {
      const problem = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>;
      let message = typeof problem.detail === 'string' ? problem.detail : `${res.status} ${res.statusText}`;
      const errors = problem.errors as { path: string; message: string }[] | undefined;
      if (errors && errors.length > 1)
        message += `\n${errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')}`;
      if (res.status === 401) message += '\nrun `microapp login` to sign in again';
      throw new CliError(message, { problem: { status: res.status, ...problem } });
    }
    return data as T;
  }

  return {
    request: <T>(method: string, path: string, body?: unknown) => request<T>(method, path, body),
    get: <T>(path: string, init?: { auth?: boolean }) => request<T>('GET', path, undefined, init),
    post: <T>(path: string, body?: unknown, init?: { contentType?: string; auth?: boolean }) =>
      request<T>('POST', path, body ?? {}, init),
    put: <T>(path: string, body: unknown) => request<T>('PUT', path, body),
    /** A binary download (the body as bytes); errors still come back as CliError. */
    download: (path: string) => request<Buffer>('GET', path, undefined, { binary: true }),
    delete: <T>(path: string) => request<T>('DELETE', path),
  };
}

export type Client = ReturnType<typeof createClient>;

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 500) };
  }
}

/** Builds a query string from defined values only. */
export function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
