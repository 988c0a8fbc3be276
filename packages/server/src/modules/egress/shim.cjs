// Loaded with `node --require` in every app sandbox: the app has no network, so fetch() goes to the
// platform's egress broker over the unix socket at /run/egress/proxy.sock. HTTPS is originated by the
// broker (it verifies the server's certificate), so the broker can apply the policy and DLP to the request.
'use strict';
const http = require('node:http');
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
