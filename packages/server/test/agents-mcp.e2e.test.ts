import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { parse as parseYaml } from 'yaml';
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

    const status = await callTool(client, 'app_status', { name: 'agent-survey' });
    assert.deepEqual(
      status.data.running.map((r: any) => r.environment),
      ['preview'],
    );
    const live = await callTool(client, 'deploy_app', { name: 'agent-survey', version, environment: 'live' });
    assert.equal(live.isError, true);

    // The version built in the agent's session carries its signed record of that session.
    const versions = await call(server, 'GET', '/api/v1/apps/agent-survey/versions', { token: t.dave });
    assert.equal(versions.status, 200, versions.text);
  });
});
