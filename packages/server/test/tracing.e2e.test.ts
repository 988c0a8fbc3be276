import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  buildFinished,
  call,
  lunchPoll,
  nodeApp,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

type OtlpSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
};

// An app that shows the trace context it was given.
const traced = nodeApp(
  'traced',
  'name: traced\nowner: alice@example.com\npurpose: Show the trace context the gateway sends\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n',
  `require('node:http').createServer((req, res) => res.end(JSON.stringify({ traceparent: req.headers.traceparent || null }))).listen(process.env.PORT);\n`,
);

describe('OpenTelemetry traces over OTLP', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let collector: Server;
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];

  const spans = () =>
    received.flatMap((r) =>
      (
        JSON.parse(r.body) as {
          resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
        }
      ).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)),
    );
  const attribute = (s: OtlpSpan, key: string) => {
    const v = s.attributes.find((a) => a.key === key)?.value;
    return v ? Object.values(v)[0] : undefined;
  };

  before(async () => {
    // A stand-in OpenTelemetry collector: OTLP/HTTP with JSON bodies, on loopback.
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.url === '/v1/traces') received.push({ headers: req.headers, body });
        res.setHeader('content-type', 'application/json');
        res.end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    ({ server, t, stop } = await startBuildServer({
      MICROAPP_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      MICROAPP_OTLP_HEADERS: 'x-api-key=otlp-key-canary',
    }));
  });
  after(async () => {
    await stop();
    collector.close();
  });

  test('a build is a trace with a span per step; a gateway request is a server span the app continues', async () => {
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({
        name: 'traced',
        owner: people.alice,
        purpose: 'Show the trace context the gateway sends',
        audience: { department: 'finance', maxUsers: 50 },
      }),
    });
    if (reg.body.app.state !== 'approved')
      await call(server, 'POST', '/api/v1/apps/traced/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
    const caller = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const res = await call(server, 'POST', '/api/v1/apps/traced/builds', {
      token: t.alice,
      body: { source: await sourceArchive(traced), deploy: true },
      headers: { traceparent: caller },
    });
    const build = await buildFinished(server, 'traced', res.body.id, t.alice);
    assert.equal(build.state, 'passed', `${build.error}`);
    const answer = await viaGateway(server, 'traced', '/hello?email=dave@example.com', {
      authorization: `Bearer ${t.dave}`,
    });
    assert.equal(answer.status, 200, answer.body);
    await server.internals.tracing.flush();

    assert.ok(received.length > 0, 'the collector was sent traces');
    assert.equal(received[0]!.headers['x-api-key'], 'otlp-key-canary', 'with the configured headers');
    const all = spans();
    const root = all.find((s) => s.name === 'build traced')!;
    assert.ok(root, JSON.stringify(all.map((s) => s.name)));
    assert.equal(attribute(root, 'microapp.build.state'), 'passed');
    const steps = all.filter((s) => s.parentSpanId === root.spanId);
    const names = steps.map((s) => s.name);
    for (const step of ['build step source', 'build step test', 'build step publish', 'build step deploy'])
      assert.ok(names.includes(step), `${step} in ${JSON.stringify(names)}`);
    assert.ok(steps.every((s) => s.traceId === root.traceId));

    const request = all.find((s) => s.name === 'gateway traced')!;
    assert.ok(request);
    assert.equal(request.kind, 2, 'a SERVER span');
    assert.equal(attribute(request, 'http.response.status_code'), 200);
    assert.equal(attribute(request, 'url.path'), '/hello', 'no query string');
    assert.equal(
      JSON.parse(answer.body).traceparent,
      `00-${request.traceId}-${request.spanId}-01`,
      'the app receives the span as its parent (W3C traceparent)',
    );
    // Each API request is a server span named by its route, in the caller's trace when it sent one.
    const api = all.find((s) => s.name === 'POST /api/v1/apps/:name/builds')!;
    assert.ok(api, JSON.stringify(all.map((s) => s.name)));
    assert.equal(api.kind, 2, 'a SERVER span');
    assert.equal(api.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(api.parentSpanId, 'b7ad6b7169203331');
    assert.equal(attribute(api, 'http.response.status_code'), 202);
    assert.ok(all.some((s) => s.name === 'GET /api/v1/apps/:name/builds/:id'));
    assert.doesNotMatch(
      JSON.stringify(all),
      /dave@example\.com|alice@example\.com/,
      'no user identities in traces',
    );
  });
});
