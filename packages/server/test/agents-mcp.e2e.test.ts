import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { parse as parseYaml } from 'yaml';
import { cli } from '../../cli/test/cli-harness.ts';
import { callTool, connectAgent } from './agent-client.ts';
import {
  call,
  people,
  type signInEveryone,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

describe('an agent takes an app from a template to a running preview through MCP', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let client: Client;

  before(async () => {
    ({ server, t, stop } = await startBuildServer());
    ({ client } = await connectAgent(server, people.dave));
  });
  after(async () => {
    await client?.close();
    await stop();
  });

  test('scaffold, register, build with progress, deploy to preview, and the app answers dave', async () => {
    const scaffold = await callTool(client, 'scaffold_app', { template: 'form', name: 'agent-survey' });
    const manifest = parseYaml(scaffold.data.files['microapp.yaml']);
    const registered = await callTool(client, 'register_app', {
      manifest,
      instruction: 'a lunch survey for the team',
    });
    assert.equal(registered.data.state, 'approved', registered.text);

    const progress: string[] = [];
    const built = await callTool(
      client,
      'build_app',
      { name: 'agent-survey', files: scaffold.data.files },
      {
        onprogress: (p) => progress.push(p.message ?? ''),
        timeout: 15 * 60_000,
        resetTimeoutOnProgress: true,
      },
    );
    assert.equal(built.isError, false, built.text);
    assert.equal(built.data.state, 'passed', built.text);
    assert.ok(progress.length >= 3, `progress notifications: ${progress.join(' | ')}`);
    const version = built.data.version as string;

    const deployed = await callTool(client, 'deploy_app', {
      name: 'agent-survey',
      version,
      environment: 'preview',
    });
    assert.equal(deployed.isError, false, deployed.text);
    assert.match(deployed.data.url, /agent-survey--preview\.apps\.localhost/);
    let page = { status: 0, body: '' };
    for (let i = 0; i < 50 && page.status !== 200; i++) {
      page = await viaGateway(server, 'agent-survey--preview', '/', { authorization: `Bearer ${t.dave}` });
      if (page.status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(page.status, 200, page.body.slice(0, 300));

    // Every event of the agent's work names dave and the agent, the publish by its build included.
    const events = await call(server, 'GET', '/api/v1/audit/events?app=agent-survey&limit=1000', {
      token: t.ivan,
    });
    for (const action of ['app.registered', 'build.requested', 'artifact.published', 'deployment.started']) {
      const e = events.body.items.find((x: any) => x.action === action);
      assert.ok(e, action);
      assert.equal(e.summary.act?.agent, 'test-agent', `${action}: ${JSON.stringify(e.summary)}`);
    }
    const status = await callTool(client, 'app_status', { name: 'agent-survey' });
    assert.deepEqual(
      status.data.running.map((r: any) => r.environment),
      ['preview'],
    );
    const live = await callTool(client, 'deploy_app', { name: 'agent-survey', version, environment: 'live' });
    assert.equal(live.isError, true);

    // The version built in the agent's session carries a signed record of that session, named by its
    // provenance and its SBOM, and anyone can verify it offline with the public key.
    const dir = mkdtempSync(join(tmpdir(), 'microapp-agent-verify-'));
    try {
      const env = {
        MICROAPP_SERVER: server.url,
        MICROAPP_TOKEN: t.dave,
        MICROAPP_CONFIG_DIR: join(dir, 'config'),
      };
      const pulled = join(dir, 'pulled');
      const pull = await cli(env, '--json', 'artifacts', 'pull', `agent-survey@${version}`, '--out', pulled);
      assert.equal(pull.code, 0, pull.stderr);
      const artifact = JSON.parse(pull.stdout).file as string;
      writeFileSync(
        join(dir, 'signing.pub'),
        await (await fetch(`${server.url}/api/v1/keys/signing.pub`)).text(),
      );
      const provenance = JSON.parse(readFileSync(join(pulled, 'provenance.json'), 'utf8'));
      const named = provenance.predicate.buildDefinition.internalParameters.agentSession;
      assert.equal(named.agent, 'test-agent');
      assert.equal(named.person, people.dave);
      const sbom = JSON.parse(readFileSync(join(pulled, 'sbom.cdx.json'), 'utf8'));
      assert.deepEqual(
        sbom.metadata.properties.find((p: any) => p.name === 'microapp:agent-session')?.value,
        named.predicateDigest,
      );
      const published = await call(
        server,
        'GET',
        '/api/v1/audit/events?app=agent-survey&action=artifact.published',
        {
          token: t.ivan,
        },
      );
      assert.equal(published.body.items[0].summary.agentSession, named.predicateDigest);
      const listed = await call(server, 'GET', '/api/v1/apps/agent-survey/versions', { token: t.dave });
      assert.equal(listed.body.items[0].agentSession.agent, 'test-agent');
      assert.equal(listed.body.items[0].agentSession.predicateDigest, named.predicateDigest);
      const verify = await cli(
        env,
        'verify',
        artifact,
        '--key',
        join(dir, 'signing.pub'),
        '--bundles',
        pulled,
      );
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(
        verify.stdout,
        /ok {3}agentSession attestation: built by agent test-agent \(claude-sonnet-4-5\) for dave@example.com: \d+ tool calls \([a-z_, ]*build_app[a-z_, ]*\), 0 checkpoints approved/,
      );
      const statement = JSON.parse(
        Buffer.from(
          JSON.parse(readFileSync(join(pulled, 'agentSession.sigstore.json'), 'utf8')).dsseEnvelope.payload,
          'base64',
        ).toString(),
      );
      const tools = statement.predicate.calls.map((c: any) => c.tool);
      for (const tool of ['scaffold_app', 'register_app', 'build_app']) assert.ok(tools.includes(tool), tool);
      // A session record swapped for another is caught: the provenance names the one that was signed.
      const other = JSON.parse(readFileSync(join(pulled, 'provenance.sigstore.json'), 'utf8'));
      writeFileSync(join(pulled, 'agentSession.sigstore.json'), JSON.stringify(other));
      const swapped = await cli(
        env,
        'verify',
        artifact,
        '--key',
        join(dir, 'signing.pub'),
        '--bundles',
        pulled,
      );
      assert.notEqual(swapped.code, 0);
      assert.match(swapped.stdout, /FAIL agentSession attestation/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
