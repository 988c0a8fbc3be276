import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engines, startTestServer, type TestServer } from './harness.ts';

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
  });
}
