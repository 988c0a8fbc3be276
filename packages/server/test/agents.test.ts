import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { cli } from '../../cli/test/cli-harness.ts';
import { answerConsent, callTool, connectAgent, MemoryOAuthProvider, openConsent } from './agent-client.ts';
import { call, engines, people, signInEveryone, startTestServer, type TestServer } from './harness.ts';

/** Registers an MCP client by hand, as an attacker would, and returns its client id. */
async function registerClient(server: TestServer, meta: Record<string, unknown>) {
  return call(server, 'POST', '/oauth/register', { body: meta });
}

for (const engine of engines()) {
  describe(`agents through MCP (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;

    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
    });
    after(async () => {
      await server.stop();
    });

    test('the endpoint says how to get a token, and the metadata is what an MCP client reads', async () => {
      const bare = await call(server, 'POST', '/mcp', {
        body: { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      });
      assert.equal(bare.status, 401);
      const challenge = bare.headers.get('www-authenticate') ?? '';
      assert.match(
        challenge,
        /^Bearer resource_metadata="http:\/\/localhost:\d+\/\.well-known\/oauth-protected-resource\/mcp"/,
      );
      const prm = await call(server, 'GET', '/.well-known/oauth-protected-resource/mcp');
      assert.equal(prm.body.resource, `${server.url}/mcp`);
      assert.deepEqual(prm.body.authorization_servers, [server.url]);
      const as = await call(server, 'GET', '/.well-known/oauth-authorization-server');
      assert.deepEqual(as.body.code_challenge_methods_supported, ['S256']);
      assert.equal(as.body.registration_endpoint, `${server.url}/oauth/register`);
      // A person's own API token is not an agent's: the MCP endpoint refuses it.
      const personal = await call(server, 'POST', '/mcp', {
        token: t.dave,
        body: { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      });
      assert.equal(personal.status, 401);
      assert.match(personal.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    });

    test('registration refuses redirect URIs an attacker could use, and bad metadata', async () => {
      for (const uri of [
        'http://evil.example/cb',
        'javascript:alert(1)',
        'https://ok.example/cb#frag',
        'http://user:pw@127.0.0.1/cb',
      ])
        assert.equal(
          (await registerClient(server, { client_name: 'x', redirect_uris: [uri] })).status,
          400,
          uri,
        );
      const noName = await registerClient(server, { redirect_uris: ['http://127.0.0.1:9/cb'] });
      assert.equal(noName.status, 400);
      assert.equal(noName.body.error, 'invalid_client_metadata');
      const html = await registerClient(server, {
        client_name: '<script>',
        redirect_uris: ['http://127.0.0.1:9/cb'],
      });
      assert.equal(html.status, 400);
    });

    test('the authorization endpoint never redirects to an unregistered URI, and requires PKCE', async () => {
      const ok = await registerClient(server, {
        client_name: 'probe',
        redirect_uris: ['http://127.0.0.1:9/cb'],
      });
      assert.equal(ok.status, 201, ok.text);
      const id = ok.body.client_id as string;
      const q = (p: Record<string, string>) => `/oauth/authorize?${new URLSearchParams(p)}`;
      const challenge = 'a'.repeat(43);
      const unknown = await call(
        server,
        'GET',
        q({
          client_id: 'agc_nope',
          redirect_uri: 'http://127.0.0.1:9/cb',
          response_type: 'code',
          code_challenge: challenge,
          code_challenge_method: 'S256',
        }),
      );
      assert.equal(unknown.status, 400);
      assert.equal(unknown.headers.get('location'), null);
      const other = await call(
        server,
        'GET',
        q({
          client_id: id,
          redirect_uri: 'http://127.0.0.1:9/elsewhere',
          response_type: 'code',
          code_challenge: challenge,
          code_challenge_method: 'S256',
        }),
      );
      assert.equal(other.status, 400);
      assert.equal(other.headers.get('location'), null);
      const plain = await call(
        server,
        'GET',
        q({
          client_id: id,
          redirect_uri: 'http://127.0.0.1:9/cb',
          response_type: 'code',
          code_challenge: challenge,
          code_challenge_method: 'plain',
          state: 's1',
        }),
      );
      assert.equal(plain.status, 302);
      const back = new URL(plain.headers.get('location')!);
      assert.equal(back.searchParams.get('error'), 'invalid_request');
      assert.equal(back.searchParams.get('state'), 's1');
      // A well-formed request from someone not signed in goes to sign-in first.
      const anonymous = await call(
        server,
        'GET',
        q({
          client_id: id,
          redirect_uri: 'http://127.0.0.1:9/cb',
          response_type: 'code',
          code_challenge: challenge,
          code_challenge_method: 'S256',
        }),
      );
      assert.equal(anonymous.status, 302);
      assert.match(anonymous.headers.get('location')!, /^\/auth\/login\?return_to=/);
    });

    test('a consent without its CSRF token changes nothing; codes are single-use and bound to their verifier', async () => {
      const provider = new MemoryOAuthProvider({ name: 'csrf-probe' });
      const reg = await registerClient(server, provider.clientMetadata);
      const challenge = 'b'.repeat(43);
      const authUrl = new URL(
        `${server.url}/oauth/authorize?${new URLSearchParams({ client_id: reg.body.client_id, redirect_uri: provider.redirectUrl, response_type: 'code', code_challenge: challenge, code_challenge_method: 'S256' })}`,
      );
      const consent = await openConsent(authUrl, people.dave);
      const forged = await answerConsent({ ...consent, csrf: 'forged' }, { decision: 'allow', days: '7' });
      assert.equal(forged.status, 403);
      const before = await call(server, 'GET', '/api/v1/agents', { token: t.dave });
      assert.equal(before.body.items.filter((d: any) => d.agent.client === 'csrf-probe').length, 0);
      const answered = await answerConsent(consent, { decision: 'allow', days: '7' });
      const code = answered.location!.searchParams.get('code')!;
      const token = (form: Record<string, string>) =>
        call(server, 'POST', '/oauth/token', {
          raw: new URLSearchParams(form).toString(),
          contentType: 'application/x-www-form-urlencoded',
        });
      const wrong = await token({
        grant_type: 'authorization_code',
        code,
        code_verifier: 'x'.repeat(43),
        client_id: reg.body.client_id,
        redirect_uri: provider.redirectUrl,
      });
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.error, 'invalid_grant');
      // The code was spent by the failed attempt: an attacker who saw it gets nothing by guessing.
      const again = await token({
        grant_type: 'authorization_code',
        code,
        code_verifier: 'x'.repeat(43),
        client_id: reg.body.client_id,
        redirect_uri: provider.redirectUrl,
      });
      assert.equal(again.body.error, 'invalid_grant');
    });

    test('an agent acts for dave through MCP, is held for pii and a new host until dave approves, and is refused what it may never do', async () => {
      const { client, provider } = await connectAgent(server, people.dave);
      const tools = (await client.listTools()).tools.map((x) => x.name).sort();
      assert.deepEqual(tools, [
        'app_logs',
        'app_status',
        'assess_manifest',
        'build_app',
        'checkpoint_status',
        'decommission_app',
        'deploy_app',
        'list_templates',
        'register_app',
        'request_escalation',
        'scaffold_app',
      ]);
      for (const tool of (await client.listTools()).tools)
        assert.ok((tool.description ?? '').length > 40, tool.name);

      const scaffold = await callTool(client, 'scaffold_app', { template: 'form', name: 'agent-expenses' });
      assert.equal(scaffold.isError, false, scaffold.text);
      const manifest = parseYaml(scaffold.data.files['microapp.yaml']);
      assert.equal(manifest.owner, people.dave);
      const assessed = await callTool(client, 'assess_manifest', { manifest });
      assert.equal(assessed.data.tier, 'low', assessed.text);
      assert.equal(assessed.data.registering.would, 'go ahead');

      const registered = await callTool(client, 'register_app', {
        manifest,
        instruction:
          'make an expense form; my card is 4111 1111 1111 1111 and the key sk-abcdefghijklmnopqrstuvwx',
      });
      assert.equal(registered.isError, false, registered.text);
      assert.equal(registered.data.state, 'approved');

      const wider = {
        ...manifest,
        dataClasses: ['internal', 'pii'],
        integrations: { egress: ['api.bank.example.com'] },
      };
      const held = await callTool(client, 'register_app', { manifest: wider });
      assert.equal(held.data.status, 'waiting_for_approval', held.text);
      assert.deepEqual(held.data.reasons, [
        'adds the data class pii',
        'adds the outside host api.bank.example.com',
        'makes a high-tier app; this delegation works on low-tier apps without asking',
      ]);
      const checkpoint = held.data.checkpoint as string;
      // Asking again does not pile up requests: it is the same one, still waiting.
      const heldAgain = await callTool(client, 'register_app', { manifest: wider });
      assert.equal(heldAgain.data.checkpoint, checkpoint);
      const app = await call(server, 'GET', '/api/v1/apps/agent-expenses', { token: t.dave });
      assert.deepEqual(app.body.manifest.dataClasses, ['internal'], 'nothing changed while it waits');

      // The request is dave's to answer: not alice's, not a reviewer's, not an admin's, not the agent's.
      for (const who of [t.alice, t.erin, t.carol]) {
        const r = await call(server, 'POST', `/api/v1/agents/requests/${checkpoint}/approve`, {
          token: who,
          body: {},
        });
        assert.equal(r.status, 404, r.text);
      }
      const inbox = await call(server, 'GET', '/api/v1/agents/requests?state=pending', { token: t.dave });
      assert.deepEqual(
        inbox.body.items.map((c: any) => c.id),
        [checkpoint],
      );
      assert.deepEqual(inbox.body.items[0].input.manifest.dataClasses, ['internal', 'pii']);
      // dave answers from his terminal.
      const env = {
        MICROAPP_SERVER: server.url,
        MICROAPP_TOKEN: t.dave,
        MICROAPP_CONFIG_DIR: `${server.dataDir}/cli`,
      };
      const listed = await cli(env, '--json', 'agents', 'requests');
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(
        JSON.parse(listed.stdout).map((r: any) => r.id),
        [checkpoint],
      );
      const approved = await cli(env, 'agents', 'approve', checkpoint, '--note', 'ok for the pilot');
      assert.equal(approved.code, 0, approved.stderr);
      assert.match(approved.stdout, /goes on at its next call/);
      const twice = await cli(env, 'agents', 'approve', checkpoint);
      assert.notEqual(twice.code, 0);
      assert.match(twice.stderr, /already approved by dave@example.com/);
      const status = await callTool(client, 'checkpoint_status', { checkpoint });
      assert.equal(status.data.state, 'approved');
      const through = await callTool(client, 'register_app', { manifest: wider });
      assert.equal(through.isError, false, through.text);
      assert.equal(through.data.outcome, 'updated');
      // The approval was good for one call: the same call again asks again.
      const once = await callTool(client, 'register_app', {
        manifest: { ...wider, integrations: { egress: ['api.bank.example.com', 'b.example.org'] } },
      });
      assert.equal(once.data.status, 'waiting_for_approval');

      const live = await callTool(client, 'deploy_app', {
        name: 'agent-expenses',
        version: '0.1.0',
        environment: 'live',
      });
      assert.equal(live.isError, true);
      assert.match(live.text, /to live is not part of this delegation/);

      // The agent's token does not reach the REST API: no approving, no secrets, no tokens.
      const agentToken = provider.saved!.access_token;
      assert.match(agentToken, /^maa_/);
      for (const [method, path, body] of [
        ['POST', '/api/v1/apps/agent-expenses/reviews', { decision: 'approve' }],
        ['GET', '/api/v1/apps/agent-expenses/secrets', undefined],
        ['PUT', '/api/v1/apps/agent-expenses/secrets/LEDGER', { value: 'x' }],
        ['POST', '/api/v1/tokens', { name: 'escape' }],
        ['POST', `/api/v1/agents/requests/${checkpoint}/approve`, {}],
      ] as const) {
        const r = await call(server, method, path, { token: agentToken, ...(body ? { body } : {}) });
        assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
        assert.match(r.body.detail, /agent's token works only at \/mcp/);
      }
      // Nor the metrics, whose route takes a scraper's token: an agent's is no API token there.
      assert.equal((await call(server, 'GET', '/metrics', { token: agentToken })).status, 401);

      // Every event the agent caused names dave and the agent; its instruction was kept redacted.
      const events = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
      const byAgent = events.body.items.filter((e: any) => e.summary?.act);
      assert.ok(byAgent.length >= 8, `${byAgent.length} agent events`);
      for (const e of byAgent) {
        // dave's, or the policy's acting on dave's agent's call (a low-tier app's automatic approval).
        assert.ok(e.actor === people.dave || e.actor.startsWith('policy:'), e.actor);
        assert.equal(e.summary.act.agent, 'test-agent');
        assert.equal(e.summary.act.model, 'claude-sonnet-4-5');
      }
      const actions = new Set(byAgent.map((e: any) => e.action));
      for (const a of ['app.registered', 'agent.called', 'agent.checkpoint.asked'])
        assert.ok(actions.has(a), a);
      const delegations = await call(server, 'GET', '/api/v1/agents', { token: t.dave });
      const mine = delegations.body.items.find((d: any) => d.agent.client === 'test-agent');
      assert.equal(mine.state, 'active');
      const calls = await call(server, 'GET', `/api/v1/agents/${mine.id}/calls`, { token: t.dave });
      const first = calls.body.items.find((c: any) => c.tool === 'register_app' && c.instruction);
      assert.match(first.instruction, /make an expense form/);
      assert.doesNotMatch(first.instruction, /4111 1111 1111 1111|sk-abcdef/);
      assert.equal(
        (await call(server, 'GET', `/api/v1/agents/${mine.id}/calls`, { token: t.alice })).status,
        404,
      );

      // Revoked: the very next call is refused.
      const revoked = await cli(env, 'agents', 'revoke', mine.id);
      assert.equal(revoked.code, 0, revoked.stderr);
      const after = await call(server, 'POST', '/mcp', {
        token: agentToken,
        headers: { accept: 'application/json, text/event-stream' },
        body: { jsonrpc: '2.0', id: 9, method: 'tools/list' },
      });
      assert.equal(after.status, 401);
      assert.match(after.headers.get('www-authenticate') ?? '', /revoked/);
    });

    test('a refresh rotates: the old refresh token is spent, and a stolen one used twice fails', async () => {
      const { provider } = await connectAgent(server, people.alice, {
        name: 'refresh-probe',
        model: 'claude-sonnet-4-5',
      });
      const first = provider.saved!;
      const form = (refresh: string) =>
        call(server, 'POST', '/oauth/token', {
          raw: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: refresh,
            client_id: provider.info!.client_id,
          }).toString(),
          contentType: 'application/x-www-form-urlencoded',
        });
      const next = await form(first.refresh_token!);
      assert.equal(next.status, 200, next.text);
      assert.notEqual(next.body.access_token, first.access_token);
      assert.equal(next.body.scope, 'apps:read apps:register apps:build apps:deploy');
      const replay = await form(first.refresh_token!);
      assert.equal(replay.status, 400);
      assert.equal(replay.body.error, 'invalid_grant');
    });

    test("an agent cannot see or change another department's app, and a person's refusal reaches it", async () => {
      const { client } = await connectAgent(server, people.frank, {
        name: 'marketing-agent',
        model: 'claude-sonnet-4-5',
      });
      const other = await callTool(client, 'app_status', { name: 'agent-expenses' });
      assert.equal(other.isError, true);
      assert.doesNotMatch(other.text, /internal|pii|dave/);
      const scaffold = await callTool(client, 'scaffold_app', { template: 'form', name: 'promo-signups' });
      const manifest = parseYaml(scaffold.data.files['microapp.yaml']);
      assert.equal((await callTool(client, 'register_app', { manifest })).data.state, 'approved');
      const wider = { ...manifest, secrets: ['CRM_TOKEN'] };
      const held = await callTool(client, 'register_app', { manifest: wider });
      assert.deepEqual(held.data.reasons, ['adds the secret CRM_TOKEN']);
      const refused = await call(server, 'POST', `/api/v1/agents/requests/${held.data.checkpoint}/refuse`, {
        token: t.frank,
        body: { note: 'use the CRM connector instead' },
      });
      assert.equal(refused.status, 200, refused.text);
      const after = await callTool(client, 'register_app', { manifest: wider });
      assert.equal(after.isError, true);
      assert.match(after.text, /frank@example.com refused this: use the CRM connector instead/);
      const app = await call(server, 'GET', '/api/v1/apps/promo-signups', { token: t.frank });
      assert.equal(app.body.manifest.secrets, undefined);
    });

    test('a delegation that allows live still asks each time; requests nobody answers expire and are recorded', async () => {
      const { client } = await connectAgent(
        server,
        people.alice,
        { name: 'live-agent', model: 'claude-sonnet-4-5' },
        { decision: 'allow', days: '7', live_low: 'on' },
      );
      const prompts = await client.listPrompts();
      assert.deepEqual(prompts.prompts.map((p) => p.name).sort(), ['change-app', 'new-app']);
      const prompt = await client.getPrompt({
        name: 'new-app',
        arguments: { idea: 'a visitor sign-in sheet' },
      });
      assert.match(JSON.stringify(prompt.messages), /a visitor sign-in sheet/);
      const schema = await client.readResource({ uri: 'microapp://schema/manifest' });
      assert.match(JSON.stringify(schema.contents), /dataClasses/);
      const scaffold = await callTool(client, 'scaffold_app', { template: 'form', name: 'alice-live' });
      const manifest = parseYaml(scaffold.data.files['microapp.yaml']);
      assert.equal((await callTool(client, 'register_app', { manifest })).data.state, 'approved');
      const policies = await client.readResource({ uri: 'microapp://apps/alice-live/policies' });
      const files = JSON.parse((policies.contents[0] as { text: string }).text).modules.map(
        (m: any) => m.file,
      );
      assert.ok(files.includes('agents/agents.rego') && files.includes('risk/risk.rego'), files.join(', '));
      const live = await callTool(client, 'deploy_app', {
        name: 'alice-live',
        version: '0.1.0',
        environment: 'live',
      });
      assert.equal(live.data.status, 'waiting_for_approval', live.text);
      assert.deepEqual(live.data.reasons, ["deploys to live, where the app's audience uses it"]);
      const advanced = await call(server, 'POST', '/api/v1/dev/clock', {
        token: t.carol,
        body: { advance: '25h' },
      });
      assert.equal(advanced.status, 200, advanced.text);
      await server.internals.jobs.runDue();
      const expired = await call(server, 'GET', `/api/v1/agents/requests/${live.data.checkpoint}`, {
        token: t.alice,
      });
      assert.equal(expired.body.state, 'expired');
      const events = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
      assert.ok(
        events.body.items.some(
          (e: any) => e.action === 'agent.checkpoint.expired' && e.target === live.data.checkpoint,
        ),
      );
      // The access token expired with the hour; the SDK refreshes it and the agent asks again.
      const again = await callTool(client, 'deploy_app', {
        name: 'alice-live',
        version: '0.1.0',
        environment: 'live',
      });
      assert.equal(again.data.status, 'waiting_for_approval', again.text);
      assert.notEqual(again.data.checkpoint, live.data.checkpoint);
    });

    test("the organization's model policy refuses an agent at connect, and per data class", async () => {
      const pushed = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: {
          modules: {},
          data: { microapp: { config: { models: { '*': ['claude-opus-*'], internal: ['*'] } } } },
          message: 'agents: any model for internal data, Claude Opus for the rest',
        },
      });
      assert.equal(pushed.status, 201, pushed.text);
      const registered = await registerClient(server, {
        client_name: 'shadow-agent',
        redirect_uris: ['http://127.0.0.1:9/cb'],
        model: 'unvetted-7b',
      });
      // Approved for internal data only: it may connect, and is refused beyond internal.
      assert.equal(registered.status, 201, registered.text);
      const { client } = await connectAgent(server, people.alice, {
        name: 'sonnet-agent',
        model: 'claude-sonnet-4-5',
      });
      const scaffold = await callTool(client, 'scaffold_app', { template: 'form', name: 'alice-intake' });
      const manifest = parseYaml(scaffold.data.files['microapp.yaml']);
      const pii = await callTool(client, 'register_app', {
        manifest: { ...manifest, dataClasses: ['internal', 'pii'] },
      });
      assert.equal(pii.isError, true);
      assert.match(
        pii.text,
        /claude-sonnet-4-5 is not approved for pii data \(data.microapp.config.models\)/,
      );
      assert.equal((await call(server, 'GET', '/api/v1/apps/alice-intake', { token: t.alice })).status, 404);

      const narrower = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: {
          modules: {},
          data: { microapp: { config: { models: { '*': ['claude-opus-*'], internal: ['claude-*'] } } } },
          message: 'agents: Claude models only',
        },
      });
      assert.equal(narrower.status, 201, narrower.text);
      const refused = await registerClient(server, {
        client_name: 'shadow-agent',
        redirect_uris: ['http://127.0.0.1:9/cb'],
        model: 'unvetted-7b',
      });
      assert.equal(refused.status, 400);
      assert.match(
        refused.body.error_description,
        /unvetted-7b is not a model this organization approved for agents/,
      );
      const undeclared = await registerClient(server, {
        client_name: 'quiet-agent',
        redirect_uris: ['http://127.0.0.1:9/cb'],
      });
      assert.equal(undeclared.status, 400);
    });
  });
}
