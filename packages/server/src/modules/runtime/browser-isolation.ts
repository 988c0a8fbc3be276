import type { IncomingHttpHeaders } from 'node:http';

/**
 * Keeping apps apart in the browser. Every app lives under one parent domain (`*.apps.example.com`), so
 * to a browser they are one *site*: SameSite cookies do not separate them, and a page of one app can
 * set cookies for the parent domain. What the gateway does about it lives here:
 * - app sessions and sign-in state in `__Host-` cookies, which a sibling cannot set or overwrite;
 * - unsafe requests (POST, PUT, …) carried by the session cookie are refused when another origin sent
 *   them, sibling apps included, unless the app's manifest names that origin (`web.acceptFrom`);
 * - app pages may be framed only by the app itself, or by the origins in `web.embedBy`;
 * - cookies the gateway did not set are expired once they grow large (a cookie bomb from a sibling), and
 *   a request too large to read gets a page that clears them instead of a bare 431.
 */

/** The gateway's own cookies on an app host. `__Host-` needs a secure origin: plain http (dev) keeps plain names. */
export function appCookieNames(secure: boolean) {
  const prefix = secure ? '__Host-' : '';
  return { session: `${prefix}microapp_app_session`, state: `${prefix}microapp_app_state` };
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The host (and port) of an Origin header, or null when it is not a URL. */
export function hostOfOrigin(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

/**
 * Why a browser request that changes something must not reach the app, or null when it may: another
 * origin sent it (a sibling app, another site, an opaque origin such as a sandboxed frame) and the app
 * does not accept that origin. `Sec-Fetch-Site` decides when the browser sends it; `Origin` otherwise. An
 * app's own form sends `Origin: null` (the gateway serves app pages with `Referrer-Policy: no-referrer`,
 * under which browsers hide the origin) with `Sec-Fetch-Site: same-origin`. Requests with an API token
 * are not a browser's: a page cannot add that header to a request to another origin without its consent.
 */
export function crossOriginWrite(
  method: string,
  headers: IncomingHttpHeaders,
  acceptFrom: readonly string[] = [],
): string | null {
  if (safeMethods.has(method) || headers.authorization) return null;
  const origin = headers.origin;
  const named = origin && origin !== 'null' && acceptFrom.includes(origin.toLowerCase());
  const site = headers['sec-fetch-site'];
  if (site) {
    if (site === 'same-origin' || site === 'none' || named) return null;
    return `a page on ${origin && origin !== 'null' ? origin : `another ${site === 'same-site' ? 'app' : 'site'}`} may not send this app changes with your session`;
  }
  if (!origin) return null;
  if (origin !== 'null' && (hostOfOrigin(origin) === headers.host || named)) return null;
  return `a page on ${origin === 'null' ? 'an unnamed origin' : origin} may not send this app changes with your session`;
}

/** Headers that let only the app itself (and the origins its manifest names) show its pages in a frame. */
export function frameHeaders(embedBy: readonly string[] = []): Record<string, string> {
  return embedBy.length
    ? { 'content-security-policy': `frame-ancestors 'self' ${embedBy.join(' ')}` }
    : { 'content-security-policy': "frame-ancestors 'self'", 'x-frame-options': 'SAMEORIGIN' };
}

/** Past this many bytes of cookies the gateway did not set, they are expired: a sibling's cookie bomb. */
export const foreignCookieBytes = 4096;

/**
 * `Set-Cookie` values that expire the cookies a request carries but the gateway never set, on the app host
 * and on every parent domain a sibling could have set them for, once they add up to more than
 * `foreignCookieBytes`; none otherwise (an app's own small cookies are its business).
 */
export function expireForeignCookies(
  cookieHeader: string | undefined,
  ours: string[],
  host: string,
): string[] {
  if (!cookieHeader || cookieHeader.length <= foreignCookieBytes) return [];
  const names = new Set<string>();
  let bytes = 0;
  for (const pair of cookieHeader.split(';')) {
    const name = pair.split('=')[0]!.trim();
    if (!name || ours.includes(name) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) continue;
    names.add(name);
    bytes += pair.length;
  }
  if (bytes <= foreignCookieBytes) return [];
  const hostname = host.replace(/:\d+$/, '');
  const labels = hostname.split('.');
  const domains = labels.slice(1, -1).map((_, i) => labels.slice(i + 1).join('.'));
  const out: string[] = [];
  for (const name of [...names].slice(0, 200)) {
    out.push(`${name}=; Path=/; Max-Age=0`);
    for (const domain of domains) out.push(`${name}=; Path=/; Domain=${domain}; Max-Age=0`);
  }
  return out;
}

/**
 * The raw response for a request whose headers are too large to read (Node's 431), on any host: a small
 * page whose script expires every cookie it can see for this host and its parent domains, then reloads.
 * Cookies a sibling app set from its pages are visible to scripts (the gateway strips every `Set-Cookie`
 * an app sends, so a sibling can only set them from JavaScript); the platform's own are HttpOnly and stay.
 */
export function cookieBombResponse(): string {
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many cookies</title></head>
<body><h1>Too many cookies</h1>
<p>Your browser sent more cookies than this site reads, probably set by another app. They are being cleared; the page reloads by itself.</p>
<script>
for (const c of document.cookie.split(';')) {
  const name = c.split('=')[0].trim();
  if (!name) continue;
  const labels = location.hostname.split('.');
  for (let i = 0; i < labels.length; i++) {
    document.cookie = name + '=; Max-Age=0; Path=/; Domain=' + labels.slice(i).join('.');
  }
  document.cookie = name + '=; Max-Age=0; Path=/';
}
setTimeout(() => location.reload(), 500);
</script></body></html>
`;
  return `HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}
