// Apps that call AI models do it through the egress broker and a model connector: the broker refuses a
// model the organization did not approve for the app's data, masks personal data in the prompt as the DLP
// pack says, refuses a call that carries one of the app's own secrets, and counts the tokens each answer
// used. The model is a local server speaking OpenAI's wire format (chat completions, JSON and streamed).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
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

const manifest =
  'name: assistant\nowner: alice@example.com\npurpose: Answer questions about expense claims with a model\ndataClasses: [internal, pii]\naudience: { department: finance, maxUsers: 20 }\nintegrations: { connectors: [llm] }\nsecrets: [SIGNING_KEY]\n';

// The app asks the model what it is told to, the way apps do: fetch to the connector, JSON in and out.
const assistant = nodeApp(
  'assistant',
  manifest,
  `const http = require('node:http');
const fs = require('node:fs');
http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://app');
  let text = u.searchParams.get('text') || '';
  if (u.searchParams.has('leak')) text += ' key: ' + fs.readFileSync('/run/secrets/SIGNING_KEY', 'utf8');
  const body = { model: u.searchParams.get('model'), messages: [{ role: 'user', content: text }], stream: u.searchParams.has('stream') };
  const r = await fetch('http://connector.llm/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  res.end(JSON.stringify({ status: r.status, egress: r.headers.get('x-microapp-egress'), body: await r.text() }));
}).listen(process.env.PORT);
`,
);

describe('apps call AI models through the broker, within the model and DLP policy', () => {
  let server: TestServer;
  let model: Server;
  let seen: { body: any; authorization: string | undefined }[] = [];
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;

  before(async () => {
    model = createServer((req, res) => {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => {
        const body = JSON.parse(raw);
        seen.push({ body, authorization: req.headers.authorization });
        if (body.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'Hel' } }] })}\n\n`);
          res.write(
            `data: ${JSON.stringify({ choices: [{ delta: { content: 'lo' } }], usage: { prompt_tokens: 21, completion_tokens: 2 } })}\n\n`,
          );
          res.end('data: [DONE]\n\n');
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            id: 'chatcmpl-1',
            object: 'chat.completion',
            model: body.model,
            choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
          }),
        );
      });
    });
    await new Promise<void>((r) => model.listen(0, '127.0.0.1', r));
    const port = (model.address() as AddressInfo).port;
    ({ server, t, stop } = await startBuildServer({
      MICROAPP_DEV_EGRESS_HOSTS: `llm.example.com=127.0.0.1:${port}`,
    }));
    const connector = await call(server, 'PUT', '/api/v1/connectors/llm', {
      token: t.carol,
      body: {
        baseUrl: 'http://llm.example.com',
        credential: 'sk-org-model-key-0123456789',
        methods: ['POST'],
        paths: ['/v1/chat/completions'],
        modelApi: 'openai',
        dataClasses: ['internal'],
      },
    });
    assert.equal(connector.status, 200, connector.text);
    assert.equal(connector.body.modelApi, 'openai');
    const policy = await call(server, 'POST', '/api/v1/policies', {
      token: t.carol,
      body: {
        modules: {},
        data: {
          microapp: {
            config: {
              models: { '*': ['gpt-4o-mini'], internal: ['*'] },
              dlp: { connectors: { llm: { email: 'mask' } } },
            },
          },
        },
        message: 'models: gpt-4o-mini for personal data; e-mail addresses masked on the way to the model',
      },
    });
    assert.equal(policy.status, 201, policy.text);
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({
        name: 'assistant',
        owner: people.alice,
        purpose: 'Answer questions about expense claims with a model',
        dataClasses: ['internal', 'pii'],
        audience: { department: 'finance', maxUsers: 20 },
        integrations: { connectors: ['llm'] },
        secrets: ['SIGNING_KEY'],
      }),
    });
    assert.ok([200, 201].includes(reg.status), reg.text);
    for (const [slot, who] of [
      ['reviews', t.bob],
      ['reviews', t.erin],
    ] as const)
      if ((await call(server, 'GET', '/api/v1/apps/assistant', { token: t.alice })).body.state !== 'approved')
        await call(server, 'POST', `/api/v1/apps/assistant/${slot}`, {
          token: who,
          body: { decision: 'approve' },
        });
    assert.equal(
      (await call(server, 'GET', '/api/v1/apps/assistant', { token: t.alice })).body.state,
      'approved',
    );
    const secret = await call(server, 'PUT', '/api/v1/apps/assistant/secrets/SIGNING_KEY', {
      token: t.alice,
      body: { value: 'hmac-8f3a9c2e71d44b0a' },
    });
    assert.equal(secret.status, 200, secret.text);
    const res = await call(server, 'POST', '/api/v1/apps/assistant/builds', {
      token: t.alice,
      body: { source: await sourceArchive(assistant), deploy: true },
    });
    const build = await buildFinished(server, 'assistant', res.body.id, t.alice);
    assert.equal(build.state, 'passed', `${build.error}`);
  });
  after(async () => {
    await stop();
    model.close();
  });

  const ask = async (query: Record<string, string>) => {
    const r = await viaGateway(server, 'assistant', `/?${new URLSearchParams(query)}`, {
      authorization: `Bearer ${t.alice}`,
    });
    assert.equal(r.status, 200, r.body);
    return JSON.parse(r.body) as { status: number; egress: string | null; body: string };
  };

  test('an approved model gets the prompt with personal data masked and the connector key added; tokens are counted', async () => {
    seen = [];
    const r = await ask({ model: 'gpt-4o-mini', text: 'Claim from jane.doe@example.org, is it complete?' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.egress, 'masked');
    assert.equal(seen.length, 1);
    assert.doesNotMatch(seen[0]!.body.messages[0].content, /jane\.doe/);
    assert.match(seen[0]!.body.messages[0].content, /Claim from .*@example\.org, is it complete\?/);
    assert.equal(seen[0]!.authorization, 'Bearer sk-org-model-key-0123456789');
    const streamed = await ask({ model: 'gpt-4o-mini', text: 'Say hello', stream: '1' });
    assert.equal(streamed.status, 200);
    const usage = await call(server, 'GET', '/api/v1/apps/assistant/usage', { token: t.alice });
    assert.deepEqual(usage.body.modelTokens, [{ model: 'gpt-4o-mini', calls: 2, input: 33, output: 7 }]);
  });

  test('a model not approved for the app’s personal data is refused, and nothing reaches it', async () => {
    seen = [];
    const r = await ask({ model: 'gpt-4o', text: 'Summarize the claims' });
    assert.equal(r.status, 403);
    assert.match(JSON.parse(r.body).detail, /the model gpt-4o is not approved for pii data/);
    const none = await ask({ text: 'no model named' });
    assert.equal(none.status, 403);
    assert.match(JSON.parse(none.body).detail, /names no model/);
    assert.equal(seen.length, 0);
    const events = await call(server, 'GET', '/api/v1/audit/events?app=assistant&action=egress.denied', {
      token: t.ivan,
    });
    assert.ok(events.body.items.some((e: any) => /gpt-4o is not approved/.test(e.reason)));
  });

  test('a prompt that carries the app’s own secret is refused, in any encoding', async () => {
    seen = [];
    const r = await ask({ model: 'gpt-4o-mini', text: 'Debug this', leak: '1' });
    assert.equal(r.status, 403);
    assert.match(JSON.parse(r.body).detail, /carries the app's secret SIGNING_KEY/);
    const encoded = await ask({
      model: 'gpt-4o-mini',
      text: `b64: ${Buffer.from('hmac-8f3a9c2e71d44b0a').toString('base64')}`,
    });
    assert.equal(encoded.status, 403);
    assert.equal(seen.length, 0);
  });
});
