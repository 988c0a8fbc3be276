import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  buildFinished,
  call,
  lunchPoll,
  people,
  type signInEveryone,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

/** A form POST through the gateway, as a browser on the site's host sends it. */
function submit(server: TestServer, site: string, token: string, form: Record<string, string>) {
  const url = new URL(server.url);
  const body = new URLSearchParams(form).toString();
  return new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: url.port,
        path: '/submit',
        method: 'POST',
        headers: {
          host: `${site}.apps.localhost:${url.port}`,
          authorization: `Bearer ${token}`,
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('preview and live environments', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;

  before(async () => {
    ({ server, t, stop } = await startBuildServer());
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({
        name: 'survey',
        owner: people.alice,
        audience: { department: 'finance', maxUsers: 30 },
        runtime: { kind: 'node', entry: 'server.js' },
        template: { name: 'form', version: '1.1.0' },
      }),
    });
    assert.equal(reg.body.app.state, 'approved', reg.text);
    for (const expected of ['0.1.0', '0.1.1']) {
      const b = await call(server, 'POST', '/api/v1/apps/survey/builds', { token: t.alice, body: {} });
      const built = await buildFinished(server, 'survey', b.body.id, t.alice);
      assert.equal(built.version, expected, built.error ?? '');
    }
  });
  after(async () => {
    await stop();
  });

  test('a preview is for the owner and reviewers; the audience waits for live', async () => {
    const d = await call(server, 'POST', '/api/v1/apps/survey/deployments', {
      token: t.alice,
      body: { version: '0.1.0', env: 'preview' },
    });
    assert.equal(d.status, 201, d.text);
    assert.equal(d.body.env, 'preview');
    assert.deepEqual(
      d.body.limits,
      { memoryMb: 256, cpu: 0.5, pids: 128 },
      'the limits, and nothing of the host',
    );
    for (const token of [t.alice, t.bob])
      assert.equal(
        (await viaGateway(server, 'survey--preview', '/', { authorization: `Bearer ${token}` })).status,
        200,
      );
    const dave = await viaGateway(server, 'survey--preview', '/', { authorization: `Bearer ${t.dave}` });
    assert.equal(dave.status, 403);
    assert.match(dave.body, /the preview of survey is for its owner and reviewers/);
    const live = await viaGateway(server, 'survey', '/', { authorization: `Bearer ${t.dave}` });
    assert.equal(live.status, 503, 'nothing runs in live yet');
    assert.match(live.body, /survey is not running; its owner starts it from the app's page in the console/);
  });

  test('promotion takes only a version tried in preview; live keeps its own data', async () => {
    assert.equal(
      await submit(server, 'survey--preview', t.alice, {
        name: 'Preview Pat',
        team: 'QA',
        answer: 'test entry',
      }),
      200,
    );
    const untried = await call(server, 'POST', '/api/v1/apps/survey/promotions', {
      token: t.alice,
      body: { version: '0.1.1' },
    });
    assert.equal(untried.status, 409);
    assert.match(
      untried.body.detail,
      /has not run in preview; try it there first: `microapp deploy survey@0\.1\.1 --env preview`/,
    );
    assert.equal(
      (
        await call(server, 'POST', '/api/v1/apps/survey/promotions', {
          token: t.bob,
          body: { version: '0.1.0' },
        })
      ).status,
      403,
      'a reviewer tries previews but does not promote',
    );
    const promoted = await call(server, 'POST', '/api/v1/apps/survey/promotions', {
      token: t.alice,
      body: { version: '0.1.0' },
    });
    assert.equal(promoted.status, 201, promoted.text);
    assert.equal(promoted.body.env, 'live');
    assert.equal(
      (await viaGateway(server, 'survey', '/', { authorization: `Bearer ${t.dave}` })).status,
      200,
    );
    const liveAnswers = await viaGateway(server, 'survey', '/export.csv', {
      authorization: `Bearer ${t.alice}`,
    });
    assert.doesNotMatch(liveAnswers.body, /Preview Pat/, 'live does not see what was entered in preview');
    const previewAnswers = await viaGateway(server, 'survey--preview', '/export.csv', {
      authorization: `Bearer ${t.alice}`,
    });
    assert.match(previewAnswers.body, /Preview Pat/);
    const events = await call(server, 'GET', '/api/v1/audit/events?app=survey&action=deployment.', {
      token: t.ivan,
    });
    const promotedEvent = events.body.items.find(
      (e: { action: string }) => e.action === 'deployment.promoted',
    );
    assert.equal(promotedEvent?.summary.env, 'live');
    assert.equal(promotedEvent?.summary.version, '0.1.0');
  });

  test('each environment rolls back on its own', async () => {
    await call(server, 'POST', '/api/v1/apps/survey/deployments', {
      token: t.alice,
      body: { version: '0.1.1', env: 'preview' },
    });
    const back = await call(server, 'POST', '/api/v1/apps/survey/rollback', {
      token: t.alice,
      body: { env: 'preview' },
    });
    assert.equal(back.status, 200, back.text);
    assert.equal(back.body.version, '0.1.0');
    assert.equal(back.body.env, 'preview');
    const none = await call(server, 'POST', '/api/v1/apps/survey/rollback', { token: t.alice, body: {} });
    assert.equal(none.status, 409, 'live has run only 0.1.0');
    const history = await call(server, 'GET', '/api/v1/apps/survey/deployments', { token: t.bob });
    assert.deepEqual(
      history.body.items.map((d: { version: string; env: string; state: string; startedBy: string }) =>
        [d.version, d.env, d.state, d.startedBy].join(' '),
      ),
      [
        '0.1.0 preview running alice@example.com',
        '0.1.1 preview stopped alice@example.com',
        '0.1.0 live running alice@example.com',
        '0.1.0 preview stopped alice@example.com',
      ],
    );
    assert.equal(
      (await call(server, 'GET', '/api/v1/apps/survey/deployments', { token: t.frank })).status,
      404,
    );
    // Each environment's logs are its own.
    for (const env of ['live', 'preview']) {
      const logs = await call(server, 'GET', `/api/v1/apps/survey/logs?env=${env}`, { token: t.alice });
      assert.equal(logs.status, 200, logs.text);
      assert.deepEqual([logs.body.env, logs.body.running, logs.body.version], [env, true, '0.1.0']);
      assert.ok(
        logs.body.items.some((l: { line: string }) => /listening on/.test(l.line)),
        JSON.stringify(logs.body.items),
      );
    }
    const bob = await call(server, 'GET', '/api/v1/apps/survey/logs', { token: t.bob });
    assert.equal(bob.status, 403, 'reviewers do not read logs');
  });

  test('an app name cannot take the preview suffix', async () => {
    const res = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({ name: 'survey--preview', owner: people.alice }),
    });
    assert.equal(res.status, 400);
  });
});
