import { SpanKind } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TraceSpan, Tracing } from '../tracing.ts';

/**
 * A `SERVER` span per platform API request (`/api/…`), named by its route template (`POST
 * /api/v1/apps/:name/deployments`) and continuing the caller's trace when it sends a `traceparent`. Spans
 * carry the method, the route, the path without its query, the status and the request id: never who asked.
 */
export function registerRequestSpans(app: FastifyInstance, tracing: Pick<Tracing, 'enabled' | 'start'>) {
  if (!tracing.enabled) return;
  const spans = new WeakMap<FastifyRequest, TraceSpan>();
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/api/')) return;
    const route = request.routeOptions.url ?? 'unmatched route';
    const header = request.headers.traceparent;
    spans.set(
      request,
      tracing.start(
        `${request.method} ${route}`,
        {
          'http.request.method': request.method,
          'http.route': route,
          'url.path': request.url.split('?')[0] ?? '',
          'microapp.request_id': request.id,
        },
        SpanKind.SERVER,
        typeof header === 'string' ? header : undefined,
      ),
    );
  });
  app.addHook('onResponse', async (request, reply) => {
    const span = spans.get(request);
    if (!span) return;
    span.set({ 'http.response.status_code': reply.statusCode });
    span.end(reply.statusCode >= 500 ? `HTTP ${reply.statusCode}` : null);
  });
}
