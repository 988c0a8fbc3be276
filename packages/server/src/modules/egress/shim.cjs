// Loaded with `node --require` in every app sandbox: the app has no network, so fetch() and the http and
// https modules go to the platform's egress broker over the unix socket at /run/egress/proxy.sock. HTTPS is
// originated by the broker (it verifies the server's certificate), so the broker can apply the policy and
// DLP to the request.
'use strict';
const http = require('node:http');
const https = require('node:https');
const { Readable } = require('node:stream');

const socketPath = '/run/egress/proxy.sock';

async function bodyOf(init) {
  const body = init?.body;
  if (body === undefined || body === null) return null;
  if (typeof body === 'string' || body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  return Buffer.from(await new Response(body).arrayBuffer());
}

globalThis.fetch = async function brokeredFetch(input, init = {}) {
  const request = input instanceof Request ? input : null;
  const url = new URL(request ? request.url : String(input));
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TypeError(`fetch: ${url.protocol} is not supported`);
  const headers = new Headers(request ? request.headers : undefined);
  for (const [k, v] of new Headers(init.headers || {})) headers.set(k, v);
  headers.set('host', url.host);
  headers.set('x-microapp-egress-scheme', url.protocol.slice(0, -1));
  const body = request && !init.body ? Buffer.from(await request.arrayBuffer()) : await bodyOf(init);
  if (body) headers.set('content-length', String(body.length));
  const method = (init.method || request?.method || 'GET').toUpperCase();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, method, path: url.pathname + url.search, headers: Object.fromEntries(headers) },
      (res) => {
        const responseHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers))
          if (v !== undefined) responseHeaders.set(k, Array.isArray(v) ? v.join(', ') : v);
        const empty = method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
        resolve(
          new Response(empty ? null : Readable.toWeb(res), {
            status: res.statusCode,
            statusText: res.statusMessage,
            headers: responseHeaders,
          }),
        );
      },
    );
    req.on('error', (e) =>
      reject(new TypeError(`fetch failed: the egress broker did not answer (${e.message})`)),
    );
    if (init.signal)
      init.signal.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
    req.end(body || undefined);
  });
};

// http.request / http.get / https.request / https.get: the same request, sent to the broker's socket with the
// host it was meant for. Requests the app sends to a unix socket of its own stay as they are.
const plainRequest = http.request;
function brokered(scheme) {
  return function request(input, options, callback) {
    if (typeof options === 'function') {
      callback = options;
      options = undefined;
    }
    let opts;
    if (typeof input === 'string' || input instanceof URL) {
      const url = new URL(String(input));
      opts = {
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        ...(options || {}),
      };
    } else opts = { ...(input || {}) };
    if (opts.socketPath) return plainRequest(opts, callback);
    const host = String(opts.hostname || opts.host || 'localhost').replace(/^\[|\]$/g, '');
    const port = opts.port ? `:${opts.port}` : '';
    const headers = { ...(opts.headers || {}) };
    for (const k of Object.keys(headers)) if (k.toLowerCase() === 'host') delete headers[k];
    headers.host = (host.includes(':') ? `[${host}]` : host) + port;
    headers['x-microapp-egress-scheme'] = scheme;
    const out = {
      method: opts.method || 'GET',
      path: opts.path || '/',
      headers,
      socketPath,
      ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    return plainRequest(out, callback);
  };
}
function brokeredGet(request) {
  return function get(input, options, callback) {
    const req = request(input, options, callback);
    req.end();
    return req;
  };
}
for (const [module, scheme] of [
  [http, 'http'],
  [https, 'https'],
]) {
  module.request = brokered(scheme);
  module.get = brokeredGet(module.request);
}
// ES modules that import { request } from 'node:http' see the same functions.
require('node:module').syncBuiltinESMExports();
