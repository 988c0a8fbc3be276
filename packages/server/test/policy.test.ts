import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { dataClasses } from '../src/modules/catalog/manifest-schema.ts';
import { createRegoRiskEvaluator } from '../src/modules/policy/policy-decisions.ts';
import { createPolicyEngine } from '../src/modules/policy/policy-engine.ts';
import { builtinPolicyDir, readPolicyDir } from '../src/modules/policy/policy-sources.ts';
import { createRuleEvaluator } from '../src/modules/risk/risk-evaluator.ts';
import {
  bankReconciliation,
  call,
  engines,
  lunchPoll,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

const blockFilesHost = `package microapp.org.network

import rego.v1

blocked := {"files.example.net"}

deny contains sprintf("org policy: %s is not an approved destination", [host]) if {
	some host in object.get(input.manifest, ["integrations", "egress"], [])
	host in blocked
}

test_blocks_files_host if {
	count(deny) == 1 with input as {"manifest": {"integrations": {"egress": ["files.example.net"]}}}
}
`;

for (const engine of engines()) {
  describe(`policy decision points (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
    });
    after(() => server.stop());

    test('the Rego risk pack gives the same score, tier and factors as the interim rules', async () => {
      const policyEngine = createPolicyEngine({
        db: server.db.kysely,
        builtin: readPolicyDir(builtinPolicyDir),
      });
      const rego = createRegoRiskEvaluator(policyEngine);
      const interim = createRuleEvaluator();
      const host = fc.constantFrom('api.bank.example.com', 'a.example.com', 'b.example.org', 'c.example.net');
      const input = fc.record({
        dataClasses: fc.uniqueArray(fc.constantFrom(...dataClasses), { minLength: 1 }).map((a) => a.sort()),
        egress: fc.uniqueArray(host, { maxLength: 4 }).map((a) => a.sort()),
        connectors: fc
          .uniqueArray(fc.constantFrom('ledger-api', 'crm', 'hr'), { maxLength: 3 })
          .map((a) => a.sort()),
        secrets: fc.uniqueArray(fc.constantFrom('A', 'B', 'C'), { maxLength: 3 }).map((a) => a.sort()),
        audience: fc.record({
          department: fc.option(fc.constantFrom('finance', 'hr'), { nil: null }),
          maxUsers: fc.option(fc.integer({ min: 1, max: 5000 }), { nil: null }),
        }),
        lifetimeDays: fc.integer({ min: -10, max: 1000 }),
      });
      await fc.assert(
        fc.asyncProperty(input, async (i) => {
          const a = await interim.assess(i);
          const b = await rego.assess(i);
          assert.equal(b.score, a.score);
          assert.equal(b.tier, a.tier);
          assert.deepEqual(b.factors, a.factors);
        }),
        { numRuns: 200 },
      );
    });

    test('the seed policy denies a deploy to suspicious.example.com and allows the bank API', async () => {
      const m = bankReconciliation({
        name: 'seed-check',
        integrations: { egress: ['api.bank.example.com'] },
      });
      // A host the seed policy refuses is refused at registration already (what a deploy would meet).
      const refused = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: { ...m, integrations: { egress: ['api.bank.example.com', 'suspicious.example.com'] } },
      });
      assert.equal(refused.status, 403, refused.text);
      assert.match(refused.body.detail, /host suspicious\.example\.com is blacklisted/);
      assert.equal((await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: m })).status, 201);
      const bad = await call(server, 'POST', '/api/v1/apps/seed-check/admission', {
        token: t.alice,
        body: { host: 'suspicious.example.com' },
      });
      assert.equal(bad.status, 200, bad.text);
      assert.equal(bad.body.allowed, false);
      assert.ok(
        bad.body.denials.some(
          (d: { message: string }) =>
            d.message === 'deployment denied: host suspicious.example.com is blacklisted',
        ),
      );
      const good = await call(server, 'POST', '/api/v1/apps/seed-check/admission', {
        token: t.alice,
        body: { host: 'api.bank.example.com' },
      });
      assert.deepEqual(
        good.body.denials.filter(
          (d: { entrypoint: string }) => d.entrypoint === 'data.microapp.network.deny',
        ),
        [],
      );
      const unlisted = await call(server, 'POST', '/api/v1/apps/seed-check/admission', {
        token: t.alice,
        body: { host: 'evil.example.net' },
      });
      assert.ok(
        unlisted.body.denials.some((d: { message: string }) =>
          /not in the approved manifest/.test(d.message),
        ),
      );
    });

    test('a pushed org policy that blocks a domain stops the next registration with its own message', async () => {
      const before = await call(server, 'GET', '/api/v1/policies', { token: t.carol });
      assert.equal(before.body.revision, 'builtin');
      const notAdmin = await call(server, 'POST', '/api/v1/policies', {
        token: t.bob,
        body: { modules: { 'net.rego': blockFilesHost } },
      });
      assert.equal(notAdmin.status, 403);

      const pushed = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: { modules: { 'network/block.rego': blockFilesHost }, message: 'block files.example.net' },
      });
      assert.equal(pushed.status, 201, pushed.text);
      assert.equal(pushed.body.revision, 1);

      const denied = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'file-drop', integrations: { egress: ['files.example.net'] } }),
      });
      assert.equal(denied.status, 403, denied.text);
      assert.equal(denied.body.code, 'policy_denied');
      assert.match(denied.body.detail, /org policy: files\.example\.net is not an approved destination/);
      assert.equal(
        (await call(server, 'GET', '/api/v1/apps/file-drop', { token: t.dave })).status,
        404,
        'nothing was written',
      );

      const fine = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'lunch-2' }),
      });
      assert.equal(fine.status, 201);

      const audit = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
      assert.ok(
        audit.body.items.some(
          (e: { action: string; target: string }) => e.action === 'policy.pushed' && e.target === 'org-1',
        ),
      );
    });

    test('a policy whose test fails, or that does not compile, is refused at push', async () => {
      const failing = blockFilesHost.replace('count(deny) == 1', 'count(deny) == 2');
      const res = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: { modules: { 'bad.rego': failing } },
      });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, 'policy_invalid');
      assert.match(res.body.detail, /test_blocks_files_host failed/);
      const broken = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: { modules: { 'broken.rego': 'package microapp.org.x\n\ndeny contains msg if {\n' } },
      });
      assert.equal(broken.status, 422);
      assert.match(broken.body.errors[0].message, /broken\.rego:\d+:\d+: rego_parse_error/);
      const traversal = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: { modules: { '../../etc/x.rego': 'package x' } },
      });
      assert.equal(traversal.status, 400);
      assert.equal(
        (await call(server, 'GET', '/api/v1/policies', { token: t.carol })).body.org.revision,
        1,
        'still revision 1',
      );
    });

    test('every decision is logged with entrypoint, revision, input digest, result and duration', async () => {
      const log = await call(server, 'GET', '/api/v1/policies/decisions?subject=lunch-2', { token: t.ivan });
      assert.equal(log.status, 200);
      const entrypoints = new Set(log.body.items.map((d: { entrypoint: string }) => d.entrypoint));
      for (const e of [
        'data.microapp.risk.assessment',
        'data.microapp.approval.reviews',
        'data.microapp.org.network.deny',
      ])
        assert.ok(entrypoints.has(e), `${e} in ${[...entrypoints]}`);
      for (const d of log.body.items) {
        assert.equal(d.revision, 'org-1');
        assert.match(d.inputDigest, /^sha256:[0-9a-f]{64}$/);
        assert.ok(d.durationMs >= 0);
      }
      assert.equal((await call(server, 'GET', '/api/v1/policies/decisions', { token: t.alice })).status, 403);
    });

    test('a policy that blows its budget fails that request only; the server keeps serving', async () => {
      const slow = `package microapp.org.slow

import rego.v1

deny contains "never" if {
	input.manifest.name == "slow-app"
	count([1 | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); a == b]) < 0
}

huge contains "never" if {
	input.manifest.name == "huge-app"
	count(numbers.range(1, 100000000)) < 0
}

deny contains msg if {
	some msg in huge
}

test_ok if count(deny) == 0 with input as {"manifest": {"name": "x"}}
`;
      const pushed = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: { modules: { 'network/block.rego': blockFilesHost, 'slow.rego': slow } },
      });
      assert.equal(pushed.status, 201, pushed.text);
      for (const name of ['slow-app', 'huge-app']) {
        const started = Date.now();
        const res = await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll({ name }) });
        assert.equal(res.status, 422, res.text);
        assert.equal(res.body.code, 'policy_budget_exceeded');
        assert.ok(Date.now() - started < 5000);
      }
      assert.equal((await call(server, 'GET', '/healthz')).status, 200);
      assert.equal(
        (
          await call(server, 'POST', '/api/v1/apps', {
            token: t.dave,
            body: lunchPoll({ name: 'after-slow' }),
          })
        ).status,
        201,
      );
    });

    test('access decisions come from microapp.access and are logged', async () => {
      const mine = await call(server, 'GET', '/api/v1/apps/seed-check/access', { token: t.dave });
      assert.equal(mine.status, 200, mine.text);
      assert.equal(mine.body.allowed, true, 'same department');
      const frank = await call(server, 'GET', '/api/v1/apps/seed-check/access?user=frank@example.com', {
        token: t.bob,
      });
      assert.equal(frank.body.allowed, false);
      assert.match(frank.body.reason, /limited to the finance department/);
      const notAllowedToAsk = await call(
        server,
        'GET',
        '/api/v1/apps/seed-check/access?user=frank@example.com',
        { token: t.dave },
      );
      assert.equal(notAllowedToAsk.status, 403);
      const log = await call(server, 'GET', '/api/v1/policies/decisions?subject=seed-check', {
        token: t.ivan,
      });
      assert.ok(
        log.body.items.some((d: { entrypoint: string }) => d.entrypoint === 'data.microapp.access.allow'),
      );
    });

    test('the gateway’s kept access decisions: one evaluation per question and revision; a policy reading chance is asked every time', async () => {
      const accessPack = (rules: string) => ({
        modules: [
          {
            file: 'access.rego',
            source: `package microapp.access\nimport rego.v1\ndefault allow := false\n${rules}\n`,
          },
        ],
        data: {},
      });
      const engine = createPolicyEngine({
        db: server.db.kysely,
        builtin: accessPack('allow if input.user.department == "finance"'),
      });
      const finance = { user: { department: 'finance' }, app: { name: 'lunch-poll' } };
      const first = await engine.decideKept<boolean>('data.microapp.access.allow', finance);
      assert.equal(first.result, true);
      assert.equal(await engine.decideKept('data.microapp.access.allow', { ...finance }), first, 'kept');
      const marketing = await engine.decideKept('data.microapp.access.allow', {
        ...finance,
        user: { department: 'marketing' },
      });
      assert.equal(marketing.result, false, 'another input is another question');

      // A new revision (an admin pushes the org bundle again) asks every question anew.
      const pushed = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: { modules: { 'network/block.rego': blockFilesHost }, message: 'the same rules, again' },
      });
      assert.equal(pushed.status, 201, pushed.text);
      engine.invalidate();
      const after = await engine.decideKept<boolean>('data.microapp.access.allow', finance);
      assert.notEqual(after, first);
      assert.notEqual(after.revision, first.revision);
      assert.equal(after.result, true);

      // A policy that calls rand.intn (or reads the clock) gives no decision twice.
      const chance = createPolicyEngine({
        db: server.db.kysely,
        builtin: accessPack('n := rand.intn("draw", 1000000000)\nallow if n >= 0'),
      });
      const draws = new Set<unknown>();
      for (let i = 0; i < 5; i++)
        draws.add((await chance.decideKept('data.microapp.access.n', finance)).result);
      assert.ok(draws.size > 1, `five draws, ${draws.size} value(s): the decision was kept`);
    });

    test('evaluate an entrypoint on demand', async () => {
      const res = await call(server, 'POST', '/api/v1/policies/evaluate', {
        token: t.alice,
        body: {
          entrypoint: 'microapp/network/deny',
          input: { request: { method: 'deploy', host: 'unsafe.example.org' } },
        },
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.result, ['deployment denied: host unsafe.example.org is blacklisted']);
    });

    test('blocked domains: admins keep the list; a blocked name and every name under it is denied; pushes keep it', async () => {
      const m = bankReconciliation({
        name: 'share-check',
        integrations: { egress: ['api.bank.example.com'] },
      });
      assert.equal((await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: m })).status, 201);
      const check = async (host: string) =>
        (
          (
            await call(server, 'POST', '/api/v1/apps/share-check/admission', {
              token: t.alice,
              body: { host },
            })
          ).body.denials as { message: string }[]
        ).map((d) => d.message);
      assert.deepEqual(
        (await check('files.share.example.net')).filter((d) => /organization blocked/.test(d)),
        [],
      );
      const put = (token: string, body: unknown) =>
        call(server, 'PUT', '/api/v1/blocked-domains', { token, body });
      assert.equal(
        (await put(t.alice, { domains: ['share.example.net'], message: 'file sharing' })).status,
        403,
      );
      for (const bad of [
        { domains: ['share example.net'], message: 'x y z' },
        { domains: ['localhost'], message: 'one label' },
        { domains: ['share.example.net'] },
        { domains: ['share.example.net'], message: 'ok', extra: 1 },
      ]) {
        const r = await put(t.carol, bad);
        assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
      }
      assert.deepEqual(
        (await call(server, 'GET', '/api/v1/blocked-domains', { token: t.dave })).body.domains,
        [],
      );
      const set = await put(t.carol, {
        domains: ['Share.Example.NET.', 'paste.example.org'],
        message: 'no file sharing or paste sites',
      });
      assert.equal(set.status, 200, set.text);
      assert.deepEqual(set.body.domains, ['paste.example.org', 'share.example.net']);
      assert.ok(
        (await check('files.share.example.net')).includes(
          'deployment denied: the organization blocked files.share.example.net',
        ),
      );
      assert.deepEqual(
        (await check('api.bank.example.com')).filter((d) => /organization blocked/.test(d)),
        [],
      );
      const audited = (
        await call(server, 'GET', '/api/v1/audit/events?action=policy.blocked_domains_changed', {
          token: t.ivan,
        })
      ).body.items;
      assert.deepEqual(audited[0].summary.added, ['paste.example.org', 'share.example.net']);
      assert.equal(audited[0].reason, 'no file sharing or paste sites');
      // A module push that says nothing of blocked domains keeps them.
      const pushed = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: {
          modules: { 'noop.rego': 'package microapp.org.noop\n\nimport rego.v1\n\nok := true\n' },
          message: 'noop',
        },
      });
      assert.equal(pushed.status, 201, pushed.text);
      assert.deepEqual(
        (await call(server, 'GET', '/api/v1/blocked-domains', { token: t.dave })).body.domains,
        ['paste.example.org', 'share.example.net'],
      );
      assert.ok((await check('files.share.example.net')).some((d) => /organization blocked/.test(d)));
      // Emptied again for the tests that follow.
      assert.equal((await put(t.carol, { domains: [], message: 'reset after the check' })).status, 200);
    });

    test('policy speaks before the reviewers: an assessment names a blocked host with the admin’s reason, and registering it is refused and writes nothing', async () => {
      const put = (body: unknown) => call(server, 'PUT', '/api/v1/blocked-domains', { token: t.carol, body });
      const reason = 'uploads leave the company: use the document store instead';
      assert.equal((await put({ domains: ['upload.example.net'], message: reason })).status, 200);
      const m = lunchPoll({
        name: 'upload-helper',
        integrations: { egress: ['api.example.com', 'eu.upload.example.net'] },
      });
      const assessed = await call(server, 'POST', '/api/v1/assessments', { token: t.dave, body: m });
      assert.equal(assessed.status, 200, assessed.text);
      assert.equal(assessed.body.policy.allowed, false);
      const denial = assessed.body.policy.denials.find(
        (d: { host: string | null }) => d.host === 'eu.upload.example.net',
      );
      assert.ok(denial, JSON.stringify(assessed.body.policy));
      assert.equal(denial.stage, 'deploy');
      assert.match(denial.message, /the organization blocked eu\.upload\.example\.net/);
      assert.deepEqual(
        { domain: denial.blocked.domain, reason: denial.blocked.reason, by: denial.blocked.by },
        { domain: 'upload.example.net', reason, by: 'carol@example.com' },
      );
      // The host the policy allows is not blamed.
      assert.ok(!assessed.body.policy.denials.some((d: { host: string }) => d.host === 'api.example.com'));
      // The same answer at registration: refused with the reason, and nothing is written.
      const before = await call(server, 'GET', '/api/v1/audit/events?app=upload-helper', { token: t.ivan });
      const registered = await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: m });
      assert.equal(registered.status, 403, registered.text);
      assert.match(registered.body.detail, /the organization blocked eu\.upload\.example\.net/);
      assert.ok(registered.body.detail.includes(reason), registered.body.detail);
      assert.match(registered.body.detail, /Change the manifest/);
      assert.equal(
        (await call(server, 'GET', '/api/v1/apps/upload-helper', { token: t.dave })).status,
        404,
        'nothing registered',
      );
      const after = await call(server, 'GET', '/api/v1/audit/events?app=upload-helper', { token: t.ivan });
      assert.equal(after.body.items.length, before.body.items.length, 'nothing audited as registered');
      // Without the blocked host the same answers pass, before and at registration.
      const fine = { ...m, integrations: { egress: ['api.example.com'] } };
      const ok = await call(server, 'POST', '/api/v1/assessments', { token: t.dave, body: fine });
      assert.deepEqual(ok.body.policy.denials, []);
      assert.equal(ok.body.policy.allowed, true);
      assert.equal((await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: fine })).status, 201);
      // A host blocked after registration shows in the live check a reviewer's inbox asks.
      assert.equal(
        (await put({ domains: ['upload.example.net', 'api.example.com'], message: 'api gone' })).status,
        200,
      );
      const later = await call(server, 'POST', '/api/v1/assessments', { token: t.bob, body: fine });
      assert.deepEqual(
        later.body.policy.denials.map((d: { host: string; blocked: { reason: string } }) => [
          d.host,
          d.blocked.reason,
        ]),
        [['api.example.com', 'api gone']],
      );
      assert.equal((await put({ domains: [], message: 'reset after the check' })).status, 200);
    });

    test('a bundle may set data only (DLP modes, say); an empty one is refused and changes nothing', async () => {
      const revision = async () =>
        (await call(server, 'GET', '/api/v1/policies/revisions', { token: t.carol })).body.items.length;
      const before = await revision();
      const empty = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: { modules: {}, message: 'nothing' },
      });
      assert.equal(empty.status, 400, empty.text);
      assert.match(empty.body.detail, /neither modules nor data/);
      assert.equal(await revision(), before);
      const modes = await call(server, 'POST', '/api/v1/policies', {
        token: t.carol,
        body: {
          modules: {},
          data: { microapp: { config: { dlp: { modes: { email: 'mask' } } } } },
          message: 'mask e-mail addresses instead of blocking them',
        },
      });
      assert.equal(modes.status, 201, modes.text);
      assert.equal(await revision(), before + 1);
      const decided = await call(server, 'POST', '/api/v1/policies/evaluate', {
        token: t.carol,
        body: {
          entrypoint: 'microapp/dlp/mask',
          input: {
            destination: { type: 'host', name: 'api.bank.example.com', dataClasses: [] },
            findings: [{ kind: 'email', count: 1, dataClass: 'pii', permitted: false }],
          },
        },
      });
      assert.equal(decided.status, 200, decided.text);
      assert.deepEqual(decided.body.result, ['email']);
    });
  });
}
