// A server whose key-encryption key is not the one its data was written with must not report ready: the
// first publish would be the first thing to fail.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createKeyStore, loadKek } from '../src/modules/signing/key-store.ts';
import { call, startTestServer, type TestServer } from './harness.ts';

describe('readiness and the KEK', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('sqlite');
  });
  after(() => server.stop());

  test('ready with no signing key yet; not ready, and saying why, when the KEK does not open the one stored', async () => {
    const first = await call(server, 'GET', '/readyz');
    assert.equal(first.status, 200, first.text);
    const db = server.rawDb();
    try {
      // The server's own signing key, sealed with its own KEK: still ready.
      const own = loadKek({ env: {}, devFile: join(server.dataDir, 'kek') });
      await createKeyStore({ db: db.kysely, kek: own }).current();
      assert.equal((await call(server, 'GET', '/readyz')).status, 200);
      // A new signing key as another platform (another KEK) wrote it into this database.
      await db.kysely
        .transaction()
        .execute((trx) => createKeyStore({ db: db.kysely, kek: randomBytes(32) }).rotate(trx));
    } finally {
      await db.destroy();
    }
    const after = await call(server, 'GET', '/readyz');
    assert.equal(after.status, 503);
    assert.match(after.body.status, /MICROAPP_KEK\) does not open the signing key in the database/);
  });

  test('a KEK file other users can read stops the start, naming the setting and the fix', () => {
    const file = join(server.dataDir, 'kek-shared');
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    assert.throws(
      () => loadKek({ env: { MICROAPP_KEK_FILE: file }, devFile: null }),
      /MICROAPP_KEK_FILE .*kek-shared can be read or written by other users \(mode 0644\): chmod 600 it/,
    );
    chmodSync(file, 0o600);
    assert.equal(loadKek({ env: { MICROAPP_KEK_FILE: file }, devFile: null }).length, 32);
  });
});
