import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { kekOf, rewrap, seal, unseal } from '../src/modules/secrets/envelope.ts';
import {
  bankReconciliation,
  call,
  engines,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

describe('envelope encryption', () => {
  const a = kekOf(randomBytes(32));
  const b = kekOf(randomBytes(32));
  test('a value sealed under one KEK opens after its data key is re-wrapped under another', () => {
    const sealed = seal(a, 's3cret', 'app_1/TOKEN');
    assert.ok(!sealed.ciphertext.includes('s3cret'));
    const moved = { ...sealed, kekId: b.id, wrappedKey: rewrap([a], b, sealed, 'app_1/TOKEN') };
    assert.equal(unseal([b], moved, 'app_1/TOKEN'), 's3cret');
    assert.throws(() => unseal([a], moved, 'app_1/TOKEN'), /not configured/);
  });
  test('a ciphertext copied onto another secret does not open', () => {
    const sealed = seal(a, 's3cret', 'app_1/TOKEN');
    assert.throws(() => unseal([a], sealed, 'app_2/TOKEN'));
  });
});

for (const engine of engines()) {
  describe(`secrets never come back out (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    let logs = '';
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    before(async () => {
      const sink = {
        write(chunk: string) {
          logs += chunk;
        },
      };
      server = await startTestServer(engine, {
        logger: pino({ level: 'trace' }, pino.multistream([{ stream: sink, level: 'trace' }])),
      });
      t = await signInEveryone(server);
      await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: bankReconciliation() });
    });
    after(() => server.stop());

    test('the owner sets a declared secret; the value is stored encrypted and only the runtime can read it', async () => {
      const res = await call(server, 'PUT', '/api/v1/apps/bank-reconciliation/secrets/LEDGER_READ_TOKEN', {
        token: t.alice,
        body: { value: canary },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.version, 1);
      assert.ok(!res.text.includes(canary));
      const list = await call(server, 'GET', '/api/v1/apps/bank-reconciliation/secrets', { token: t.alice });
      assert.deepEqual(
        list.body.items.map((s: { name: string; set: boolean }) => [s.name, s.set]),
        [['LEDGER_READ_TOKEN', true]],
      );
      const app = await call(server, 'GET', '/api/v1/apps/bank-reconciliation', { token: t.alice });
      assert.equal((await server.internals.secrets.valuesFor(app.body.id)).LEDGER_READ_TOKEN, canary);
      const again = await call(server, 'PUT', '/api/v1/apps/bank-reconciliation/secrets/LEDGER_READ_TOKEN', {
        token: t.carol,
        body: { value: `${canary}-2` },
      });
      assert.equal(again.body.version, 2, 'an admin may set it too');
    });

    test('who may set: the owner and admins; not colleagues, reviewers, or other departments; only declared names', async () => {
      const put = (token: string, name = 'LEDGER_READ_TOKEN') =>
        call(server, 'PUT', `/api/v1/apps/bank-reconciliation/secrets/${name}`, {
          token,
          body: { value: canary },
        });
      assert.equal((await put(t.dave)).status, 403, 'same department, not the owner');
      assert.equal((await put(t.bob)).status, 403);
      assert.equal((await put(t.frank)).status, 404);
      assert.equal((await put(t.ivan)).status, 403, 'auditors change nothing');
      const undeclared = await put(t.alice, 'OTHER_TOKEN');
      assert.equal(undeclared.status, 400);
      assert.match(undeclared.body.detail, /does not declare the secret OTHER_TOKEN/);
      assert.equal(
        (
          await call(server, 'PUT', '/api/v1/apps/bank-reconciliation/secrets/lower_case', {
            token: t.alice,
            body: { value: 'x' },
          })
        ).status,
        400,
      );
    });

    test('canary: the value is in no API answer, audit entry, database column in clear, or log line', async () => {
      const answers = await Promise.all([
        call(server, 'GET', '/api/v1/apps/bank-reconciliation', { token: t.carol }),
        call(server, 'GET', '/api/v1/apps?limit=200', { token: t.carol }),
        call(server, 'GET', '/api/v1/apps/bank-reconciliation/secrets', { token: t.carol }),
        call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.carol }),
        call(server, 'GET', '/api/v1/policies/decisions', { token: t.carol }),
        call(server, 'GET', '/api/openapi.json'),
      ]);
      for (const a of answers) assert.ok(!a.text.includes(canary), `leaked in ${a.text.slice(0, 80)}`);
      const raw = server.rawDb();
      try {
        const secretRows = JSON.stringify(await raw.kysely.selectFrom('app_secrets').selectAll().execute());
        const auditRows = JSON.stringify(await raw.kysely.selectFrom('audit_events').selectAll().execute());
        assert.ok(secretRows.includes('v1.'), 'ciphertext is there');
        assert.ok(!secretRows.includes(canary) && !auditRows.includes(canary));
        assert.ok(auditRows.includes('secret.set'));
      } finally {
        await raw.destroy();
      }
      assert.ok(logs.length > 1000, 'the server logged at trace level during the test');
      assert.ok(!logs.includes(canary), 'no log line holds the value');
    });

    test('delete is audited; a deleted secret is not set any more', async () => {
      assert.equal(
        (
          await call(server, 'DELETE', '/api/v1/apps/bank-reconciliation/secrets/LEDGER_READ_TOKEN', {
            token: t.alice,
          })
        ).status,
        204,
      );
      const list = await call(server, 'GET', '/api/v1/apps/bank-reconciliation/secrets', { token: t.alice });
      assert.equal(list.body.items[0].set, false);
      assert.equal(
        (
          await call(server, 'DELETE', '/api/v1/apps/bank-reconciliation/secrets/LEDGER_READ_TOKEN', {
            token: t.alice,
          })
        ).status,
        404,
      );
    });

    test('re-wrapping is for admins and reports what it did', async () => {
      assert.equal((await call(server, 'POST', '/api/v1/secrets/rewrap', { token: t.alice })).status, 403);
      const res = await call(server, 'POST', '/api/v1/secrets/rewrap', { token: t.carol });
      assert.equal(res.status, 200);
      assert.equal(res.body.rewrapped, 0, 'everything is already under the current key');
    });
  });
}
