import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, engines, signInEveryone, startTestServer, type TestServer } from './harness.ts';

for (const engine of engines()) {
  describe(`the signing key (${engine})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(engine);
    });
    after(() => server.stop());

    test('there is only ever one current key: a second one is refused by the database', async () => {
      const pem = await (await fetch(`${server.url}/api/v1/keys/signing.pub`)).text();
      assert.match(pem, /BEGIN PUBLIC KEY/);
      const raw = server.rawDb();
      try {
        const row = {
          keyid: 'f'.repeat(64),
          public_pem: 'not used',
          encrypted_private: 'not used',
          status: 'current',
          created_at: new Date().toISOString(),
          retired_at: null,
        };
        // What a second replica starting at the same moment would try.
        await assert.rejects(raw.kysely.insertInto('signing_keys').values(row).execute());
        await raw.kysely
          .insertInto('signing_keys')
          .values({ ...row, status: 'retired', retired_at: row.created_at })
          .execute();
        const current = await raw.kysely
          .selectFrom('signing_keys')
          .select('public_pem')
          .where('status', '=', 'current')
          .execute();
        assert.deepEqual(current, [{ public_pem: pem }]);
      } finally {
        await raw.destroy();
      }
    });

    test('admins rotate the key with a reason: the old one is retired and still listed, the rotation audited', async () => {
      const t = await signInEveryone(server);
      const before = await (await fetch(`${server.url}/api/v1/keys/signing.pub`)).text();
      const body = { reason: 'yearly rotation, ticket SEC-1234' };
      assert.equal((await call(server, 'POST', '/api/v1/keys/rotate', { token: t.bob, body })).status, 403);
      assert.equal(
        (await call(server, 'POST', '/api/v1/keys/rotate', { token: t.carol, body: { reason: 'x' } })).status,
        400,
      );
      const rotated = await call(server, 'POST', '/api/v1/keys/rotate', { token: t.carol, body });
      assert.equal(rotated.status, 200, rotated.text);
      const after = await (await fetch(`${server.url}/api/v1/keys/signing.pub`)).text();
      assert.notEqual(after, before, 'new signatures use the new key');
      const keys = (await (await fetch(`${server.url}/api/v1/keys`)).json()) as {
        items: { keyid: string; status: string; publicKey: string; retiredAt: string | null }[];
      };
      const old = keys.items.find((k) => k.publicKey === before);
      assert.equal(old?.status, 'retired');
      assert.ok(old?.retiredAt);
      assert.equal(keys.items.filter((k) => k.status === 'current').length, 1);
      const events = await call(server, 'GET', '/api/v1/audit/events?action=signing_key.rotated', {
        token: t.ivan,
      });
      assert.equal(events.body.items.length, 1);
      assert.equal(events.body.items[0].summary.retired, old?.keyid);
    });
  });
}
