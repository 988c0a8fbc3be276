import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CliError } from './client.ts';

/** The PKCE pair and state the CLI keeps while the browser signs in. */
export function newCliLogin() {
  const verifier = randomBytes(32).toString('base64url');
  return {
    verifier,
    challenge: createHash('sha256').update(verifier).digest('base64url'),
    state: randomBytes(16).toString('base64url'),
  };
}

function loginUrl(server: string, redirect: string, login: ReturnType<typeof newCliLogin>) {
  const q = new URLSearchParams({
    cli_redirect: redirect,
    cli_challenge: login.challenge,
    cli_state: login.state,
  });
  return `${server}/auth/login?${q}`;
}

function codeFrom(url: URL, state: string): string {
  if (url.searchParams.get('state') !== state)
    throw new CliError('the sign-in answered with a different state; run `microapp login` again');
  const code = url.searchParams.get('code');
  if (!code) throw new CliError('the sign-in did not return a code; run `microapp login` again');
  return code;
}

/** Cookies per host, as a minimal browser keeps them (enough for the sign-in redirects). */
export type CookieJar = Map<string, Map<string, string>>;

/**
 * Walks a sign-in through the development IdP as a browser would: follows redirects, keeps cookies,
 * and picks `email` on the IdP's user list. Stops at the first redirect for which `done` is true.
 */
export async function devSignIn(
  start: string,
  email: string,
  done: (url: URL) => boolean,
  jar: CookieJar = new Map(),
): Promise<{ url: URL; jar: CookieJar }> {
  const cookieHeader = (url: URL) =>
    [...(jar.get(url.host) ?? new Map())].map(([k, v]) => `${k}=${v}`).join('; ');
  let url = new URL(start);
  let init: RequestInit = { method: 'GET' };
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers ?? {}), cookie: cookieHeader(url) },
    });
    const cookies = jar.get(url.host) ?? new Map<string, string>();
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const value = pair!.slice(i + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) cookies.delete(pair!.slice(0, i).trim());
      else cookies.set(pair!.slice(0, i).trim(), value);
    }
    jar.set(url.host, cookies);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, url);
      if (done(next)) return { url: next, jar };
      url = next;
      init = { method: 'GET' };
      continue;
    }
    const text = await res.text();
    const interaction = /^\/interaction\/([\w-]+)$/.exec(url.pathname);
    if (res.status === 200 && interaction) {
      if (!text.includes(`value="${email}"`))
        throw new CliError(`${email} is not a user of the development identity provider`);
      url = new URL(`/interaction/${interaction[1]}/login`, url);
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email }).toString(),
      };
      continue;
    }
    let detail = text.slice(0, 300);
    try {
      detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
    } catch {}
    throw new CliError(`sign-in failed at ${url.origin}${url.pathname} (${res.status}): ${detail}`);
  }
  throw new CliError('sign-in went through too many redirects');
}

/**
 * Signs in as a seeded user of a `--dev` server's built-in IdP without a browser: the same
 * authorization-code + PKCE flow, with the CLI following redirects and picking the user.
 */
export async function devUserLogin(server: string, email: string, login = newCliLogin()): Promise<string> {
  const redirect = 'http://127.0.0.1:9/callback';
  const { url } = await devSignIn(loginUrl(server, redirect, login), email, (u) =>
    u.href.startsWith(redirect),
  );
  return codeFrom(url, login.state);
}

/** Browser sign-in: a loopback listener receives the one-time code after the user signs in. */
export async function browserLogin(
  server: string,
  options: { open: boolean; timeoutMs?: number; announce: (url: string) => void },
  login = newCliLogin(),
): Promise<string> {
  const listener = createServer();
  await new Promise<void>((done) => listener.listen(0, '127.0.0.1', done));
  const { port } = listener.address() as AddressInfo;
  const redirect = `http://127.0.0.1:${port}/callback`;
  const url = loginUrl(server, redirect, login);
  try {
    const code = new Promise<string>((resolve, reject) => {
      listener.on('request', (req, res) => {
        const got = new URL(req.url ?? '/', redirect);
        if (got.pathname !== '/callback') {
          res.writeHead(404).end();
          return;
        }
        try {
          const c = codeFrom(got, login.state);
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(
            '<!doctype html><title>microapp</title><p>Signed in. You can close this tab and return to the terminal.</p>',
          );
          resolve(c);
        } catch (error) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end((error as Error).message);
          reject(error);
        }
      });
      setTimeout(
        () => reject(new CliError('no sign-in within 5 minutes; run `microapp login` again')),
        options.timeoutMs ?? 300_000,
      ).unref();
    });
    options.announce(url);
    if (options.open) {
      const opener =
        process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
      spawn(opener, [url], { stdio: 'ignore', detached: true })
        .on('error', () => {})
        .unref();
    }
    return await code;
  } finally {
    listener.closeAllConnections();
    listener.close();
  }
}
