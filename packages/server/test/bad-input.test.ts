import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { bankReconciliation, call, engines, startTestServer, type TestServer, tokenFor } from './harness.ts';

async function counts(server: TestServer) {
  const raw = server.rawDb();
  try {
    const n = async (table: 'apps' | 'audit_events' | 'risk_assessments' | 'app_data_classes') =>
      Number(
        (
          await raw.kysely
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    return {
      apps: await n('apps'),
      audit: await n('audit_events'),
      assessments: await n('risk_assessments'),
      classes: await n('app_data_classes'),
    };
  } finally {
    await raw.destroy();
  }
}

const yamlManifest = `name: yaml-app
owner: alice@example.com
purpose: Registered from a YAML body
dataClasses: [internal]
`;

for (const engine of engines()) {
  describe(`bad input is refused with problem+json and changes nothing (${engine})`, () => {
    let server: TestServer;
    let alice: string;
    before(async () => {
      server = await startTestServer(engine);
      alice = await tokenFor(server, 'alice@example.com');
    });
    after(() => server.stop());

    const cases: [string, { raw?: string; body?: unknown; contentType?: string }, number, RegExp][] = [
      ['malformed JSON', { raw: '{"name": "x",' }, 400, /not valid/],
      [
        'malformed YAML',
        { raw: 'name: [unclosed\nowner: a', contentType: 'application/yaml' },
        400,
        /YAML.*line/,
      ],
      [
        'duplicate YAML keys',
        { raw: `${yamlManifest}name: again\n`, contentType: 'application/yaml' },
        400,
        /YAML/,
      ],
      ['an array instead of an object', { body: [1, 2] }, 400, /must be object/],
      ['an unknown field', { body: bankReconciliation({ color: 'blue' }) }, 400, /unknown field "color"/],
      [
        'a nested unknown field',
        { body: bankReconciliation({ runtime: { kind: 'node', shell: '/bin/sh' } }) },
        400,
        /unknown field "shell"/,
      ],
      [
        'a wrong type',
        { body: bankReconciliation({ audience: { maxUsers: '40' } }) },
        400,
        /\/audience\/maxUsers/,
      ],
      [
        'a name that is not a DNS label',
        { body: bankReconciliation({ name: 'Bank_Reconciliation' }) },
        400,
        /DNS label/,
      ],
      ['a name with a path', { body: bankReconciliation({ name: '../etc' }) }, 400, /DNS label/],
      [
        'an unknown data class',
        { body: bankReconciliation({ dataClasses: ['secret-sauce'] }) },
        400,
        /must be one of: public, internal/,
      ],
      ['no data classes', { body: bankReconciliation({ dataClasses: [] }) }, 400, /dataClasses/],
      [
        'a missing owner',
        { body: { ...bankReconciliation(), owner: undefined } },
        400,
        /missing required field "owner"/,
      ],
      [
        'an entry that climbs out of the app',
        { body: bankReconciliation({ runtime: { kind: 'node', entry: 'a/../../etc/passwd' } }) },
        400,
        /entry/,
      ],
      [
        'a bad egress host',
        { body: bankReconciliation({ integrations: { egress: ['http://x.example.com/'] } }) },
        400,
        /egress/,
      ],
      [
        'a bad expiry date',
        { body: bankReconciliation({ lifetime: { expires: '31/03/2027' } }) },
        400,
        /expires/,
      ],
      [
        'an unsupported media type',
        { raw: 'name=x', contentType: 'application/x-www-form-urlencoded' },
        415,
        /application\/json/,
      ],
      [
        'an oversized body',
        { body: bankReconciliation({ purpose: 'x'.repeat(1024 * 1024 + 10) }) },
        413,
        /1 MiB/,
      ],
      ['an empty body', { raw: '' }, 400, /empty|not valid/],
    ];

    for (const [what, input, status, detail] of cases) {
      test(what, async () => {
        const before = await counts(server);
        const res = await call(server, 'POST', '/api/v1/apps', { token: alice, ...input });
        assert.equal(res.status, status, res.text.slice(0, 300));
        assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
        assert.equal(res.body.status, status);
        assert.match(res.body.type, /^urn:microapp:problem:/);
        assert.match(`${res.body.detail} ${JSON.stringify(res.body.errors ?? [])}`, detail);
        assert.deepEqual(await counts(server), before, 'nothing was written');
      });
    }

    test('a valid YAML body registers', async () => {
      const res = await call(server, 'POST', '/api/v1/apps', {
        token: alice,
        raw: yamlManifest,
        contentType: 'application/yaml',
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.app.name, 'yaml-app');
    });

    test('unknown query parameters and bad path names are 400, unknown routes 404', async () => {
      assert.equal((await call(server, 'GET', '/api/v1/apps?sort=evil', { token: alice })).status, 400);
      assert.equal((await call(server, 'GET', '/api/v1/apps?tier=extreme', { token: alice })).status, 400);
      assert.equal((await call(server, 'GET', '/api/v1/apps/NOT_A_NAME', { token: alice })).status, 400);
      const missing = await call(server, 'GET', '/api/v1/nothing-here', { token: alice });
      assert.equal(missing.status, 404);
      assert.equal(missing.body.code, 'not_found');
    });

    test('fuzz: no input makes registration fail with 5xx or write part of a change', async () => {
      const valid = bankReconciliation({ name: 'fuzz-base' });
      const mutated = fc
        .record({
          key: fc.constantFrom(...Object.keys(valid), 'extra', '__proto__', 'constructor'),
          value: fc.oneof(fc.anything(), fc.string(), fc.integer(), fc.constant(null), fc.array(fc.string())),
        })
        .map(({ key, value }) => JSON.stringify({ ...valid, [key]: value }));
      const noise = fc.oneof(
        fc.json(),
        fc.string(),
        fc.jsonValue().map((v) => JSON.stringify(v)),
        mutated,
      );
      await fc.assert(
        fc.asyncProperty(noise, async (raw) => {
          const before = await counts(server);
          const res = await call(server, 'POST', '/api/v1/apps', { token: alice, raw });
          assert.ok(res.status < 500, `${res.status} for ${raw.slice(0, 200)}: ${res.text.slice(0, 200)}`);
          const now = await counts(server);
          if (res.status >= 400) assert.deepEqual(now, before, `partial write for ${raw.slice(0, 200)}`);
          else assert.ok([200, 201].includes(res.status));
        }),
        { numRuns: engine === 'sqlite' ? 150 : 60 },
      );
    });
  });
}
