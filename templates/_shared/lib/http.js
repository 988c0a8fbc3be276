// Small HTTP helpers on node:http, so the app needs no dependencies.
import { createServer } from 'node:http';

const securityHeaders = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'",
};

export function send(response, status, body, type = 'text/html; charset=utf-8') {
  response.writeHead(status, { 'content-type': type, ...securityHeaders });
  response.end(body);
}

export function escapeHtml(value) {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

/** Reads a request body of at most `limit` bytes. */
export async function readBody(request, limit = 64 * 1024) {
  let size = 0;
  const chunks = [];
  for await (const chunk of request) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Starts the app on PORT: a port number, or a unix socket path (what the platform's sandbox gives).
 * `handler(request, response)` may be async; errors become a 500 without details.
 */
export function listen(handler) {
  const server = createServer(async (request, response) => {
    try {
      await handler(request, response);
    } catch (error) {
      send(
        response,
        error.status ?? 500,
        error.status ? error.message : 'Something went wrong.',
        'text/plain; charset=utf-8',
      );
    }
  });
  const port = process.env.PORT ?? '3000';
  server.listen(/^\d+$/.test(port) ? Number(port) : port, () => console.log(`listening on ${port}`));
  return server;
}
