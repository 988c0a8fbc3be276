import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { adjustableClock } from '../src/clock.ts';
import { createUsageService } from '../src/modules/usage/usage-service.ts';
import { openUsageWal } from '../src/modules/usage/usage-wal.ts';
import { call, engines, lunchPoll, people, startTestServer, tokenFor } from './harness.ts';

const killed = fileURLToPath(new URL('./fixtures/usage-then-kill.ts', import.meta.url));

for (const engine of engines())
  describe(`usage rows survive a killed server (${engine})`, () => {
    test('rows in memory when the process is killed are written at the next start, once', async () => {
      const server = await startTestServer(engine);
      const wal = mkdtempSync(join(tmpdir(), 'microapp-usage-wal-'));
      try {
        const token = await tokenFor(server, people.dave);
        const reg = await call(server, 'POST', '/api/v1/apps', { token, body: lunchPoll() });
        assert.equal(reg.status, 201, reg.text);
        const db = server.rawDb();
        const { id: appId } = await db.kysely
          .selectFrom('apps')
          .select('id')
          .where('name', '=', 'team-lunch-poll')
          .executeTakeFirstOrThrow();
        const child = spawnSync(
          process.execPath,
          ['--import', 'tsx', killed, engine, server.sqliteFile ?? server.pgSchema!, wal, appId],
          { encoding: 'utf8', env: process.env },
        );
        assert.equal(child.signal, 'SIGKILL', child.stderr);
        const count = async () =>
          Number(
            (
              await db.kysely
                .selectFrom('app_usage')
                .select((eb) => eb.fn.countAll().as('n'))
                .where('app_id', '=', appId)
                .executeTakeFirstOrThrow()
            ).n,
          );
        assert.equal(await count(), 100, 'the first hundred were committed before the kill');
        const restart = () =>
          createUsageService({
            db: db.kysely,
            catalog: { get: () => Promise.reject(new Error('not asked here')) },
            logger: pino({ level: 'silent' }),
            clock: adjustableClock(),
            wal: openUsageWal(wal),
          });
        const next = restart();
        assert.equal(await next.replay(), 50);
        await next.close();
        assert.equal(await count(), 150, 'nothing lost');
        // Nothing is left to write twice.
        const again = restart();
        assert.equal(await again.replay(), 0);
        await again.close();
        assert.equal(await count(), 150);
        assert.deepEqual(readdirSync(wal), []);
        await db.destroy();
      } finally {
        rmSync(wal, { recursive: true, force: true });
        await server.stop();
      }
    });
  });
