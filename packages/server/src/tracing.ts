import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

export type TracingOptions = {
  /** The collector's OTLP/HTTP base URL (`http://collector:4318`); null turns tracing off. */
  endpoint: string | null;
  /** Headers for the collector (an API key, say); never logged. */
  headers: Record<string, string>;
  serviceVersion: string;
};

/** One operation in a trace, or nothing when tracing is off: callers never check which. */
export type TraceSpan = {
  /** The W3C `traceparent` of this span, for the app the request goes to; null when off. */
  traceparent: string | null;
  set(attributes: Attributes): void;
  child(name: string, attributes: Attributes, startTime?: number): TraceSpan;
  end(error?: string | null, endTime?: number): void;
};

const off: TraceSpan = {
  traceparent: null,
  set() {},
  child: () => off,
  end() {},
};

function wrap(tracer: Tracer, span: Span): TraceSpan {
  const c = span.spanContext();
  return {
    traceparent: `00-${c.traceId}-${c.spanId}-0${c.traceFlags & 1}`,
    set: (attributes) => span.setAttributes(attributes),
    child(name, attributes, startTime) {
      return wrap(
        tracer,
        tracer.startSpan(
          name,
          { attributes, ...(startTime !== undefined ? { startTime } : {}) },
          trace.setSpan(ROOT_CONTEXT, span),
        ),
      );
    },
    end(error, endTime) {
      if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
      span.end(endTime);
    },
  };
}

/** The context a caller's `traceparent` header names (version 00), or none: a malformed one is ignored. */
function parentOf(traceparent: string | undefined) {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent ?? '');
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: Number.parseInt(m[3]!, 16) & 1,
    isRemote: true,
  });
}

/**
 * OpenTelemetry traces of gateway requests and builds, exported over OTLP/HTTP (JSON) in batches when a
 * collector is configured (`MICROAPP_OTLP_ENDPOINT`). The provider is this server's own, not the process's
 * global one, so several servers in one process (the tests) keep their traces apart. Spans carry what an
 * operator needs (app, version, status, sizes, build steps), never user identities or query strings.
 */
export function createTracing(options: TracingOptions): Tracing {
  if (!options.endpoint)
    return { enabled: false, start: () => off, flush: async () => {}, shutdown: async () => {} };
  const base = options.endpoint.endsWith('/') ? options.endpoint : `${options.endpoint}/`;
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'microapp',
      'service.version': options.serviceVersion,
    }),
    spanProcessors: [
      new BatchSpanProcessor(
        new OTLPTraceExporter({ url: new URL('v1/traces', base).href, headers: options.headers }),
        {
          scheduledDelayMillis: 2000,
        },
      ),
    ],
  });
  const tracer = provider.getTracer('microapp', options.serviceVersion);
  return {
    enabled: true,
    /**
     * A root span: a gateway request (`SERVER`) or a build (`INTERNAL`); with a caller's W3C `traceparent`,
     * a span in the caller's trace.
     */
    start(
      name: string,
      attributes: Attributes,
      kind: SpanKind = SpanKind.INTERNAL,
      traceparent?: string,
    ): TraceSpan {
      return wrap(tracer, tracer.startSpan(name, { kind, attributes }, parentOf(traceparent)));
    },
    /** Sends what is buffered now (tests, and before a shutdown). */
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

export type Tracing = {
  enabled: boolean;
  start(name: string, attributes: Attributes, kind?: SpanKind, traceparent?: string): TraceSpan;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
};
