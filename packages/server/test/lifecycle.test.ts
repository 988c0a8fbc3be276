import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adjustableClock, dayMs } from '../src/clock.ts';
import { createAuditService } from '../src/modules/audit/audit-service.ts';
import { createFolderBlobStore } from '../src/modules/blobs/blob-store.ts';
import { createDevClock } from '../src/modules/jobs/dev-clock.ts';
import {
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  startTestServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

type Tokens = Awaited<ReturnType<typeof signInEveryone>>;

/** Registers a low-tier app owned by alice and returns its id. */
async function register(server: TestServer, t: Tokens, name: string, extra: Record<string, unknown> = {}) {
  const res = await call(server, 'POST', '/api/v1/apps', {
    token: t.alice,
    body: lunchPoll({ name, owner: people.alice, ...extra }),
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.app.state, 'approved', 'a low-tier app is approved by policy');
  return res.body.app.id as string;
}

async function lifecycleOf(server: TestServer, token: string, name: string) {
  const res = await call(server, 'GET', `/api/v1/apps/${name}/lifecycle`, { token });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

/** Moves the platform clock and runs whatever became due, as the scheduler would. */
async function advance(server: TestServer, days: number) {
  server.internals.clock.advance(days * dayMs);
  await server.internals.jobs.runDue();
}

async function lifecycleEvents(server: TestServer, token: string, name: string) {
  const res = await call(server, 'GET', `/api/v1/audit/events?app=${name}&action=lifecycle.&limit=200`, {
    token,
  });
  assert.equal(res.status, 200, res.text);
  return (res.body.items as { action: string }[])
    .map((e) => e.action)
    .filter((a) => a.startsWith('lifecycle.'))
    .sort();
}

for (const engine of engines()) {
  describe(`lifecycle on ${engine}`, () => {
    let server: TestServer;
    let t: Tokens;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
    });
    after(() => server.stop());

    test('an unused app is warned, stopped, escalated to the manager, decommissioned, and restored with its data', async () => {
      const name = 'idle-tracker';
      const appId = await register(server, t, name, { secrets: ['POLL_TOKEN'] });
      const put = await call(server, 'PUT', `/api/v1/apps/${name}/secrets/POLL_TOKEN`, {
        token: t.alice,
        body: { value: 'canary-poll-token-1' },
      });
      assert.equal(put.status, 200, put.text);
      const dataDir = join(server.dataDir, 'runtime', 'data', name);
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(join(dataDir, 'votes.json'), '{"pizza":3}');
      // What an app leaves in its data: links of its own (absolute ones mean a path inside its sandbox),
      // and a setuid copy of a binary, which must not come back setuid.
      mkdirSync(join(dataDir, 'v2'));
      writeFileSync(join(dataDir, 'v2', 'state.json'), '{}');
      symlinkSync('/data/v2', join(dataDir, 'current'));
      symlinkSync('../../../../etc', join(dataDir, 'up'));
      writeFileSync(join(dataDir, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
      chmodSync(join(dataDir, 'tool'), 0o4755);

      await advance(server, 59);
      assert.equal((await lifecycleOf(server, t.alice, name)).stage, 'active', 'not yet 60 days');

      await advance(server, 2);
      const warned = await lifecycleOf(server, t.alice, name);
      assert.equal(warned.stage, 'warned');
      assert.equal(warned.nextStep.action, 'stop');
      const inbox = await call(server, 'GET', '/api/v1/notifications', { token: t.alice });
      const warning = inbox.body.items.find((n: { kind: string }) => n.kind === 'inactivity_warning');
      assert.ok(warning, JSON.stringify(inbox.body));
      assert.match(warning.body, /will be stopped on \d{4}-\d{2}-\d{2}/);
      assert.match(warning.action, /^http:\/\/[^/]+\/apps\/idle-tracker#renew$/);

      // The gateway still serves a warned app; once stopped it says who owns it and how to get it back.
      await advance(server, 14);
      assert.equal((await lifecycleOf(server, t.alice, name)).stage, 'stopped');
      const page = await viaGateway(server, name, '/', {
        authorization: `Bearer ${t.dave}`,
        accept: 'text/html',
      });
      assert.equal(page.status, 503, page.body);
      assert.match(page.body, /alice@example\.com/);
      assert.match(page.body, /can bring it back with Renew on its page in the console/);
      const deploy = await call(server, 'POST', `/api/v1/apps/${name}/deployments`, {
        token: t.alice,
        body: { version: '1.0.0' },
      });
      assert.equal(deploy.status, 409, 'a stopped app is renewed, not redeployed around the schedule');
      // The catalog says so beside its approval (which still reads approved), and filters on it.
      const listed = async (query: string) =>
        (await call(server, 'GET', `/api/v1/apps?view=summary&limit=200${query}`, { token: t.ivan })).body
          .items as {
          name: string;
          stage: string;
          state: string;
          running: boolean;
          lastUsedAt: string | null;
          expiresAt: string;
        }[];
      const row = (await listed('&stage=stopped')).find((a) => a.name === name);
      assert.deepEqual(
        row && [row.stage, row.state, row.running, row.lastUsedAt],
        ['stopped', 'approved', false, null],
        JSON.stringify(row),
      );
      assert.ok(!(await listed('&stage=active')).some((a) => a.name === name));
      assert.ok(
        (await listed('&idleDays=60')).some((a) => a.name === name),
        'not used for 75 days',
      );
      assert.ok(!(await listed('&idleDays=90')).some((a) => a.name === name));
      assert.ok(!(await listed('&running=yes')).some((a) => a.name === name));
      assert.ok((await listed('&running=no')).some((a) => a.name === name));
      const days = (Date.parse(row!.expiresAt) - Date.parse(server.internals.clock.nowIso())) / 86_400_000;
      const within = (await listed(`&expiringDays=${Math.ceil(days)}`)).some((a) => a.name === name);
      const before = (await listed(`&expiringDays=${Math.max(0, Math.floor(days) - 1)}`)).some(
        (a) => a.name === name,
      );
      assert.deepEqual([within, before], [true, false], `expires in ${days} days`);
      assert.equal(
        (await call(server, 'GET', '/api/v1/apps?stage=paused', { token: t.ivan })).status,
        400,
        'an unknown stage is refused',
      );

      await advance(server, 16);
      assert.equal((await lifecycleOf(server, t.alice, name)).stage, 'escalated');
      const manager = await call(server, 'GET', '/api/v1/notifications', { token: t.dave });
      assert.ok(
        manager.body.items.some(
          (n: { kind: string; app: string }) => n.kind === 'escalation' && n.app === name,
        ),
        'alice’s manager (dave, from the IdP’s manager claim) is told',
      );

      await advance(server, 30);
      const gone = await lifecycleOf(server, t.alice, name);
      assert.equal(gone.stage, 'decommissioned');
      assert.deepEqual(gone.archive.secretsToSetAgain, ['POLL_TOKEN']);
      assert.equal(existsSync(dataDir), false, 'the live data directory is gone; only the archive holds it');
      assert.deepEqual(await server.internals.secrets.valuesFor(appId), {}, 'secrets stop working');
      const archived = await viaGateway(server, name, '/', { authorization: `Bearer ${t.dave}` });
      assert.equal(archived.status, 410, archived.body);
      assert.match(archived.body, /bring it back with Restore on its page in the console/);
      const raw = server.rawDb();
      const file = await raw.kysely
        .selectFrom('app_archives')
        .select(['path', 'digest'])
        .where('app_id', '=', appId)
        .executeTakeFirstOrThrow();
      await raw.destroy();
      assert.equal(file.path, file.digest, 'the archive is in the blob store, by digest');
      const sealed = await createFolderBlobStore(server.dataDir).get('archive', file.digest);
      assert.equal(sealed.includes(Buffer.from('pizza')), false, 'the archive is encrypted');

      // Running the job again changes nothing: each step happens once.
      await server.internals.jobs.trigger('lifecycle');
      const restored = await call(server, 'POST', `/api/v1/apps/${name}/restore`, { token: t.alice });
      assert.equal(restored.status, 200, restored.text);
      assert.equal(restored.body.lifecycle.stage, 'active');
      assert.deepEqual(restored.body.secretsToSetAgain, ['POLL_TOKEN']);
      assert.equal(readFileSync(join(dataDir, 'votes.json'), 'utf8'), '{"pizza":3}');
      assert.equal(readlinkSync(join(dataDir, 'current')), '/data/v2', 'links come back as links');
      assert.equal(readlinkSync(join(dataDir, 'up')), '../../../../etc');
      assert.equal(readFileSync(join(dataDir, 'v2', 'state.json'), 'utf8'), '{}');
      assert.equal(statSync(join(dataDir, 'tool')).mode & 0o7777, 0o755, 'no setuid bit survives a restore');
      assert.deepEqual(
        readdirSync(join(dataDir, '..')).filter((f) => f.includes('.restore-') || f.includes('.replaced-')),
        [],
        'nothing of the restore is left beside it',
      );
      assert.deepEqual(await lifecycleEvents(server, t.carol, name), [
        'lifecycle.decommissioned',
        'lifecycle.escalated',
        'lifecycle.expiry_notice',
        'lifecycle.restored',
        'lifecycle.stopped',
        'lifecycle.warned',
      ]);
      const verify = await call(server, 'GET', '/api/v1/audit/verify', { token: t.ivan });
      assert.equal(verify.body.ok, true);
    });

    test('use is what counts: an app used daily by one person is never flagged, one edited daily but never opened is', async () => {
      const usedId = await register(server, t, 'used-daily');
      await register(server, t, 'edited-daily');
      for (let day = 0; day < 70; day++) {
        server.internals.usage.record({
          appId: usedId,
          app: 'used-daily',
          version: '1.0.0',
          user: people.dave,
          method: 'GET',
          status: 200,
          latencyMs: 3,
          bytesIn: 0,
          bytesOut: 10,
          at: server.internals.clock.now(),
        });
        await server.internals.usage.flush();
        const edit = await call(server, 'POST', '/api/v1/apps', {
          token: t.alice,
          body: lunchPoll({
            name: 'edited-daily',
            owner: people.alice,
            purpose: `Lunch votes, edition ${day}`,
          }),
        });
        assert.equal(edit.status, 200, edit.text);
        await advance(server, 1);
      }
      assert.equal((await lifecycleOf(server, t.alice, 'used-daily')).stage, 'active');
      const edited = await lifecycleOf(server, t.alice, 'edited-daily');
      assert.equal(edited.stage, 'warned');
      assert.equal(edited.reason, 'inactive');
    });

    test('a renewal answers a warning or a stop; a high-tier renewal waits for a reviewer who is not the owner', async () => {
      await register(server, t, 'renew-me');
      await advance(server, 61);
      const short = await call(server, 'POST', '/api/v1/apps/renew-me/renewal', {
        token: t.alice,
        body: { purpose: 'short' },
      });
      assert.equal(short.status, 400);
      assert.equal(
        (await lifecycleOf(server, t.alice, 'renew-me')).stage,
        'warned',
        'bad input changes nothing',
      );
      const frank = await call(server, 'POST', '/api/v1/apps/renew-me/renewal', {
        token: t.frank,
        body: { purpose: 'I want to keep it running' },
      });
      assert.equal(frank.status, 404, 'another department cannot see it, let alone renew it');
      const ok = await call(server, 'POST', '/api/v1/apps/renew-me/renewal', {
        token: t.alice,
        body: { purpose: 'Still used for the Friday lunch vote' },
      });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.status, 'renewed');
      assert.equal(ok.body.lifecycle.stage, 'active');
      assert.ok(
        Date.parse(ok.body.lifecycle.expiresAt) > server.internals.clock.now().getTime() + 80 * dayMs,
      );

      const high = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: {
          name: 'payroll-check',
          owner: people.alice,
          purpose: 'Check payroll exports against HR records',
          dataClasses: ['confidential', 'pii', 'financial'],
          audience: { department: 'finance' },
          integrations: { egress: ['api.bank.example.com'] },
        },
      });
      assert.equal(high.status, 201, high.text);
      assert.equal(high.body.app.tier, 'high');
      // Reviewers hear about it in their daily digest, once a day however often the job runs; erin opted out.
      const optOut = await call(server, 'PUT', '/api/v1/notifications/preferences', {
        token: t.erin,
        body: { digest: false },
      });
      assert.deepEqual(optOut.body, { email: true, digest: false });
      assert.equal(
        (await call(server, 'PUT', '/api/v1/notifications/preferences', { token: t.erin, body: {} })).status,
        400,
      );
      await server.internals.jobs.trigger('review-digest');
      await server.internals.jobs.trigger('review-digest');
      const digests = (
        await call(server, 'GET', '/api/v1/notifications', { token: t.bob })
      ).body.items.filter(
        (n: { kind: string; body: string }) => n.kind === 'review_digest' && n.body.includes('payroll-check'),
      );
      assert.equal(digests.length, 1);
      assert.equal(digests[0].action, `${server.url}/reviews`);
      const erins = (await call(server, 'GET', '/api/v1/notifications', { token: t.erin })).body.items;
      assert.ok(
        !erins.some((n: { kind: string }) => n.kind === 'review_digest'),
        'erin turned the digest off',
      );
      const creatorDigest = (await call(server, 'GET', '/api/v1/notifications', { token: t.alice })).body
        .items;
      assert.ok(!creatorDigest.some((n: { kind: string }) => n.kind === 'review_digest'), 'only reviewers');
      for (const who of [t.bob, t.erin])
        await call(server, 'POST', '/api/v1/apps/payroll-check/reviews', {
          token: who,
          body: { decision: 'approve' },
        });
      const asked = await call(server, 'POST', '/api/v1/apps/payroll-check/renewal', {
        token: t.alice,
        body: { purpose: 'Payroll checks continue this year' },
      });
      assert.equal(asked.status, 200, asked.text);
      assert.equal(asked.body.status, 'pending_review');
      assert.equal(asked.body.lifecycle.renewalRequested.by, people.alice);
      const self = await call(server, 'POST', '/api/v1/apps/payroll-check/renewal/approve', {
        token: t.alice,
      });
      assert.equal(self.status, 403);
      const approved = await call(server, 'POST', '/api/v1/apps/payroll-check/renewal/approve', {
        token: t.bob,
      });
      assert.equal(approved.status, 200, approved.text);
      assert.equal(approved.body.lifecycle.renewalRequested, null);
    });

    test('only admins exempt an app, with a reason; an exempt app is never warned', async () => {
      await register(server, t, 'month-end-only');
      const denied = await call(server, 'PUT', '/api/v1/apps/month-end-only/exemption', {
        token: t.alice,
        body: { reason: 'used once a quarter for the audit' },
      });
      assert.equal(denied.status, 403);
      const ok = await call(server, 'PUT', '/api/v1/apps/month-end-only/exemption', {
        token: t.carol,
        body: { reason: 'used once a quarter for the audit' },
      });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.exemption.by, people.carol);
      // Admins and auditors see every exemption in one list; others do not.
      const listed = await call(server, 'GET', '/api/v1/lifecycle/exemptions', { token: t.ivan });
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(
        listed.body.items.map((e: { app: string; reason: string; by: string }) => [e.app, e.reason, e.by]),
        [['month-end-only', 'used once a quarter for the audit', people.carol]],
      );
      assert.equal(
        (await call(server, 'GET', '/api/v1/lifecycle/exemptions', { token: t.alice })).status,
        403,
      );
      await advance(server, 70);
      assert.equal((await lifecycleOf(server, t.alice, 'month-end-only')).stage, 'active');
      assert.ok(
        (await lifecycleEvents(server, t.carol, 'month-end-only')).includes('lifecycle.exempted'),
        'the exemption is audited',
      );
    });

    test('decommission on demand: owner or admin only; a reviewer or another department cannot', async () => {
      await register(server, t, 'retire-me');
      const body = { reason: 'replaced by the finance portal' };
      assert.equal(
        (await call(server, 'POST', '/api/v1/apps/retire-me/decommission', { token: t.bob, body })).status,
        403,
      );
      assert.equal(
        (await call(server, 'POST', '/api/v1/apps/retire-me/decommission', { token: t.frank, body })).status,
        404,
      );
      assert.equal(
        (await call(server, 'POST', '/api/v1/apps/retire-me/restore', { token: t.alice })).status,
        409,
      );
      const done = await call(server, 'POST', '/api/v1/apps/retire-me/decommission', {
        token: t.alice,
        body,
      });
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.stage, 'decommissioned');
      const again = await call(server, 'POST', '/api/v1/apps/retire-me/decommission', {
        token: t.alice,
        body,
      });
      assert.equal(again.status, 409);
    });

    test('metrics show job runs, apps by stage, API latency by route and the notification queue', async () => {
      const res = await call(server, 'GET', '/metrics', { token: t.ivan });
      assert.equal(res.status, 200);
      assert.match(res.text, /microapp_job_runs_total\{job="lifecycle",outcome="ok"\} [1-9]\d*/);
      assert.match(res.text, /microapp_apps_by_lifecycle_stage\{stage="decommissioned"\} [1-9]/);
      assert.match(
        res.text,
        /microapp_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/apps\/:name\/lifecycle",code="200"\} [1-9]/,
      );
      assert.match(res.text, /microapp_notification_queue_depth 0/);
      assert.doesNotMatch(
        res.text,
        /route="\/api\/v1\/apps\/idle-tracker/,
        'routes are templates, not paths',
      );
    });

    test('the catalog shows each app’s governance scorecard, and pages through a scorecard filter', async () => {
      const res = await call(server, 'GET', '/api/v1/apps/used-daily', { token: t.alice });
      const card = res.body.scorecard;
      assert.equal(card.total, 6);
      const byId = Object.fromEntries(card.checks.map((c: { id: string; ok: boolean }) => [c.id, c.ok]));
      assert.deepEqual(byId, {
        sbom: false,
        no_open_high_findings: false,
        // alice signed in at the start; the platform clock has since moved on by months.
        owner_active: false,
        pipeline_passed: false,
        expiry_ahead: byId.expiry_ahead,
        access_policy: false,
      });
      // Every app here fails a check (none has a published version): one page at a time, all of them.
      const names: string[] = [];
      let cursor: string | null = '';
      while (cursor !== null) {
        const page: { body: { items: { name: string }[]; nextCursor: string | null } } = await call(
          server,
          'GET',
          `/api/v1/apps?scorecard=failing&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
          { token: t.carol },
        );
        names.push(...page.body.items.map((a) => a.name));
        cursor = page.body.nextCursor;
      }
      const all = await call(server, 'GET', '/api/v1/apps?limit=200', { token: t.carol });
      assert.deepEqual(
        names,
        all.body.items.map((a: { name: string }) => a.name),
      );
      assert.equal(
        (await call(server, 'GET', '/api/v1/apps?scorecard=maybe', { token: t.carol })).status,
        400,
      );
    });

    test('notifications are private to their recipient', async () => {
      const mine = await call(server, 'GET', '/api/v1/notifications', { token: t.alice });
      assert.ok(mine.body.items.length > 0);
      const id = mine.body.items[0].id;
      assert.equal(
        (await call(server, 'POST', `/api/v1/notifications/${id}/read`, { token: t.frank })).status,
        404,
      );
      assert.equal(
        (await call(server, 'POST', `/api/v1/notifications/${id}/read`, { token: t.alice })).status,
        200,
      );
      const unread = await call(server, 'GET', '/api/v1/notifications?unread=true', { token: t.alice });
      assert.ok(!unread.body.items.some((n: { id: string }) => n.id === id));
      const franks = await call(server, 'GET', '/api/v1/notifications', { token: t.frank });
      assert.ok(!franks.body.items.some((n: { id: string }) => n.id === id));
    });

    test('the dev clock: admins only, real durations only; a server without --dev refuses and audits the refusal', async () => {
      assert.equal(
        (await call(server, 'POST', '/api/v1/dev/clock', { token: t.alice, body: { advance: '1d' } })).status,
        403,
      );
      for (const advance of ['yesterday', '-1d', '0d', '99999d'])
        assert.equal(
          (await call(server, 'POST', '/api/v1/dev/clock', { token: t.carol, body: { advance } })).status,
          400,
          advance,
        );
      const before = server.internals.clock.now().getTime();
      const ok = await call(server, 'POST', '/api/v1/dev/clock', {
        token: t.carol,
        body: { advance: '1d12h' },
      });
      assert.equal(ok.status, 200, ok.text);
      assert.ok(Date.parse(ok.body.now) - before >= 1.5 * dayMs);

      const audit = createAuditService({ db: server.db.kysely, dialect: server.db.dialect });
      const clock = adjustableClock();
      const prod = createDevClock({
        db: server.db.kysely,
        audit,
        clock,
        dev: false,
        jobs: server.internals.jobs,
      });
      await assert.rejects(
        prod.advance('61d', { actor: people.carol }),
        /only be moved on a server started with --dev/,
      );
      assert.equal(clock.offsetMs(), 0);
      const events = await call(server, 'GET', '/api/v1/audit/events?action=dev.clock_refused', {
        token: t.ivan,
      });
      assert.equal(events.body.items.length, 1, events.text);
    });
  });
}
