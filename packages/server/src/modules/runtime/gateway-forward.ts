import type { IncomingHttpHeaders } from 'node:http';
import { SpanKind } from '@opentelemetry/api';
import type { Clock } from '../../clock.ts';
import type { Tracing } from '../../tracing.ts';
import type { Principal } from '../identity/principal.ts';
import type { UsageService } from '../usage/usage-service.ts';
import { expireForeignCookies, frameHeaders } from './browser-isolation.ts';
import type { Caller } from './gateway-admission.ts';

/** What the gateway does to headers on their way to and from an app, and how it measures each request. */

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The headers an app receives: the caller's, without credentials, platform headers and (for plain
 * requests) hop-by-hop ones; with the signed identity and the request id.
 */
export function forwardedHeaders(caller: Caller, identity: string, upgrade: boolean) {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(caller.headers)) {
    if (
      v === undefined ||
      (!upgrade && hopByHop.has(k)) ||
      k === 'cookie' ||
      k === 'authorization' ||
      k.startsWith('x-microapp-')
    )
      continue;
    headers[k] = v;
  }
  headers['x-microapp-identity'] = identity;
  headers['x-request-id'] = caller.id;
  headers['x-forwarded-for'] = caller.ip;
  return headers;
}

/**
 * The headers the caller receives from an app: its own, without hop-by-hop ones and cookies; with the
 * platform's framing and sniffing rules, and expiry for cookies the app's host must not keep.
 */
export function answerHeaders(
  app: IncomingHttpHeaders,
  embedBy: string[] | undefined,
  caller: IncomingHttpHeaders,
  ownCookies: string[],
) {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(app))
    if (v !== undefined && !hopByHop.has(k) && k !== 'set-cookie') out[k] = v;
  out['x-content-type-options'] = 'nosniff';
  out['referrer-policy'] = 'no-referrer';
  // The app's own CSP stays and ours is added (both apply); its own X-Frame-Options, if any, stays.
  for (const [k, v] of Object.entries(frameHeaders(embedBy))) {
    const own = out[k];
    if (own === undefined) out[k] = v;
    else if (k === 'content-security-policy') out[k] = [...(Array.isArray(own) ? own : [own]), v];
  }
  const expire = expireForeignCookies(caller.cookie, ownCookies, caller.host ?? '');
  if (expire.length) out['set-cookie'] = expire;
  return out;
}

/**
 * Measures one forwarded request or connection; `record()` writes it as usage. `status` stays 0 until
 * the app answers: 502 when it cannot, 499 when the caller went away first.
 */
export function createMeter(deps: {
  usage: Pick<UsageService, 'record'>;
  clock: Clock;
  tracing?: Pick<Tracing, 'start'>;
}) {
  return (caller: Caller, principal: Principal, app: { id: string; name: string }, version: string) => {
    const started = performance.now();
    const span = deps.tracing?.start(
      `gateway ${app.name}`,
      {
        'microapp.app': app.name,
        'microapp.version': version,
        'http.request.method': caller.method,
        'url.path': caller.url.split('?')[0] ?? '/',
      },
      SpanKind.SERVER,
    );
    const metered = {
      status: 0,
      bytesIn: 0,
      bytesOut: 0,
      traceparent: span?.traceparent ?? null,
      record: () => {
        const status = metered.status || 499;
        span?.set({
          'http.response.status_code': status,
          'http.request.body.size': metered.bytesIn,
          'http.response.body.size': metered.bytesOut,
        });
        span?.end(status >= 500 ? `the app answered ${status}` : null);
        return deps.usage.record({
          appId: app.id,
          app: app.name,
          version,
          user: principal.email,
          method: caller.method,
          status,
          latencyMs: performance.now() - started,
          bytesIn: metered.bytesIn,
          bytesOut: metered.bytesOut,
          at: deps.clock.now(),
        });
      },
    };
    return metered;
  };
}
