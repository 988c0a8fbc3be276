import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { canonicalJson } from '../src/canonical-json.ts';
import { type Db, openDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import { hashEvent, hashWithCanonicalSummary } from '../src/modules/audit/audit-chain.ts';
import type { Checkpoint } from '../src/modules/audit/audit-checkpoints.ts';
import { createAuditService } from '../src/modules/audit/audit-service.ts';
import { verifyChain } from '../src/modules/audit/audit-verify.ts';
import { engines } from './harness.ts';

// The parallel verifier (worker threads, one range each) against the one that walks the chain in process:
// on the same chains, intact and attacked at a range's edge and inside one, both must give the same verdict.

const events = 40;

test("an event's hash written out in canonical order is the canonicalized event's, on awkward values", () => {
  const awkward = [
    '',
    'ü€😀',
    'a"b\\c',
    'line\nbreak\ttab\u0001\u001f\u007f',
    '\u2028\u2029',
    '</script>',
    'ǅ',
  ];
  for (const [i, text] of awkward.entries()) {
    const summary = { [text]: text, nested: { z: [1, 2.5, -0, 1e21, null, true], a: text }, n: i };
    const event = {
      seq: 9007199254740991 - i,
      id: `evt_${text}`,
      occurredAt: '2026-12-04T00:00:00.000Z',
      actor: text,
      action: 'app.registered',
      targetType: 'app',
      target: text,
      reason: i % 2 ? null : text,
      requestId: i % 3 ? null : text,
      sourceIp: null,
      prevHash: '0'.repeat(64),
    };
    assert.equal(
      hashWithCanonicalSummary(event, canonicalJson(summary)),
      hashEvent({ ...event, summary }),
      JSON.stringify(text),
    );
  }
});

for (const engine of engines()) {
  describe(`the audit chain checked in parallel (${engine})`, () => {
    let db: Db;
    let dir: string;
    let schema: string | null = null;

    const attack = async (statement: string) => {
      if (engine === 'sqlite') {
        await sql`drop trigger audit_events_no_update`.execute(db.kysely);
        await sql`drop trigger audit_events_no_delete`.execute(db.kysely);
        await sql.raw(statement).execute(db.kysely);
        await sql`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
          BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END`.execute(db.kysely);
        await sql`CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
          BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END`.execute(db.kysely);
      } else {
        await sql`alter table audit_events disable trigger audit_events_no_change`.execute(db.kysely);
        await sql.raw(statement).execute(db.kysely);
        await sql`alter table audit_events enable trigger audit_events_no_change`.execute(db.kysely);
      }
    };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'microapp-audit-verify-'));
      if (engine === 'postgres') {
        schema = `t_${Math.random().toString(36).slice(2, 12)}`;
        const c = new pg.Client({ connectionString: process.env.MICROAPP_TEST_POSTGRES_URL });
        await c.connect();
        await c.query(`create schema ${schema}`);
        await c.end();
        db = openDatabase({
          kind: 'postgres',
          url: process.env.MICROAPP_TEST_POSTGRES_URL!,
          schema,
          poolSize: 2,
        });
      } else db = openDatabase({ kind: 'sqlite', file: join(dir, 'audit.sqlite') });
      await migrateToLatest(db);
    });
    after(async () => {
      await db.destroy();
      if (schema) {
        const c = new pg.Client({ connectionString: process.env.MICROAPP_TEST_POSTGRES_URL });
        await c.connect();
        await c.query(`drop schema ${schema} cascade`);
        await c.end();
      }
      rmSync(dir, { recursive: true, force: true });
    });

    // A fresh chain for every test: ids differ, content alike. Every fifth summary is stored as an older
    // release stored it (JSON.stringify, keys in the order they were written), which the verifier must
    // still accept by canonicalizing it.
    beforeEach(async () => {
      await attack('delete from audit_events');
      const audit = createAuditService({ db: db.kysely, dialect: db.dialect });
      for (let i = 0; i < events; i++)
        await db.kysely.transaction().execute((trx) =>
          audit.record(
            trx,
            { actor: `person-${i % 3}@example.com`, requestId: `req_${i}`, sourceIp: '10.0.0.1' },
            {
              action: 'app.registered',
              targetType: 'app',
              target: `app-${i}`,
              // Every other summary has a quote that JSON escapes: on PostgreSQL its rows are read the slow way.
              summary: {
                tier: 'low',
                revision: i,
                ...(i % 2 ? { "naïve 'quotes'": 'x"y' } : {}),
                nested: { b: 1, a: [2, 'ü'] },
              },
            },
          ),
        );
      // Recorded events are queued with their change; the sequencer chains them.
      await audit.sequence();
      audit.stop();
      await attack(
        `update audit_events set summary = '{"tier":"low","revision":' || (seq - 1) || ',"nested":{"b":1,"a":[2,"ü"]},"naïve ''quotes''":"x\\"y"}' where seq % 5 = 0 and seq % 2 = 0`,
      );
      await attack(
        `update audit_events set summary = '{"tier":"low","revision":' || (seq - 1) || ',"nested":{"b":1,"a":[2,"ü"]}}' where seq % 5 = 0 and seq % 2 = 1`,
      );
    });

    const head = async () =>
      Number(
        (await sql<{ n: number }>`select max(seq) as n from audit_events`.execute(db.kysely)).rows[0]?.n ?? 0,
      );
    const inProcess = (checkpoints: Checkpoint[] = []) =>
      createAuditService({ db: db.kysely, dialect: db.dialect }).verify(checkpoints);
    const parallel = async (checkpoints: Checkpoint[] = [], workers = 3) =>
      verifyChain(db.options, await head(), checkpoints, { workers });
    const checkpointAt = async (seq: number): Promise<Checkpoint> => ({
      type: 'microapp.audit.checkpoint/v1',
      seq,
      head: (await sql<{ hash: string }>`select hash from audit_events where seq = ${seq}`.execute(db.kysely))
        .rows[0]!.hash,
      at: '2026-12-04T00:00:00.000Z',
      keyid: '0'.repeat(64),
      signature: '',
    });

    test('an intact chain: the same head and count from one worker, three and the walk in process', async () => {
      const walk = await inProcess();
      assert.equal(walk.ok, true, JSON.stringify(walk));
      assert.equal(walk.checked, events);
      assert.deepEqual(await parallel([], 1), walk);
      assert.deepEqual(await parallel([], 3), walk);
      assert.deepEqual(
        await parallel([await checkpointAt(events)], 3),
        await inProcess([await checkpointAt(events)]),
      );
    });

    test('values that need escaping on the way out of the database verify, and an edit among them shows', async () => {
      // What COPY escapes (tabs, newlines, backslashes, a literal \\N that is not NULL) and what JSON does.
      const awkward = [
        'tab\there',
        'two\nlines\r\n',
        'back\\slash',
        '\\N',
        '\\\\N',
        'ü€😀\u2028',
        '\u0001\u007f',
      ];
      const audit = createAuditService({ db: db.kysely, dialect: db.dialect });
      for (const [i, text] of awkward.entries())
        await db.kysely.transaction().execute((trx) =>
          audit.record(
            trx,
            { actor: text, ...(i % 2 ? {} : { requestId: text }) },
            {
              action: 'app.registered',
              targetType: 'app',
              target: text,
              reason: text,
              summary: { [text]: text },
            },
          ),
        );
      await audit.sequence();
      audit.stop();
      const walk = await inProcess();
      assert.equal(walk.ok, true, JSON.stringify(walk));
      assert.equal(walk.checked, events + awkward.length);
      assert.deepEqual(await parallel([], 1), walk);
      assert.deepEqual(await parallel([], 3), walk);
      // A NULL put where the literal text \\N was is an edit, not the same value.
      await attack(`update audit_events set reason = null where seq = ${events + 4}`);
      const edited = await parallel([], 1);
      assert.equal(edited.ok, false);
      assert.deepEqual(edited, await inProcess());
    });

    // Three workers over 40 events: ranges 1-14, 15-28, 29-40.
    const attacks: [string, string, RegExp][] = [
      ['an edited row inside a range', `update audit_events set actor = 'mallory' where seq = 20`, /edited/],
      ['an edited row first in its range', `update audit_events set target = 'x' where seq = 15`, /edited/],
      [
        'an edited row whose values need no escaping',
        `update audit_events set target = 'y' where seq = 21`,
        /edited/,
      ],
      [
        'a row first in its range deleted',
        'delete from audit_events where seq = 15',
        /sequence gap: expected 15, found 16/,
      ],
      [
        'a row last in its range deleted',
        'delete from audit_events where seq = 28',
        /sequence gap: expected 28, found 29/,
      ],
      [
        'a whole range deleted',
        'delete from audit_events where seq between 15 and 28',
        /sequence gap: expected 15, found 29/,
      ],
      [
        'a row replaced with its hash recomputed (the next row no longer links)',
        `update audit_events set prev_hash = '${'1'.repeat(64)}' where seq = 15`,
        /prev_hash does not match|edited/,
      ],
    ];
    for (const [what, statement, reason] of attacks)
      test(`${what}: both name the same event`, async () => {
        await attack(statement);
        const walk = await inProcess();
        assert.equal(walk.ok, false);
        assert.match((walk as { broken: { reason: string } }).broken.reason, reason);
        const split = await parallel();
        assert.equal(split.ok, false);
        assert.equal((split as typeof walk).broken.seq, (walk as typeof split & { ok: false }).broken.seq);
        assert.equal(
          (split as typeof walk).broken.reason,
          (walk as typeof split & { ok: false }).broken.reason,
        );
        assert.equal(split.checked, walk.checked);
      });

    test('a chain recomputed after an edit no longer has the signed head; a truncated one is shorter than it', async () => {
      const signed = await checkpointAt(30);
      await attack(`update audit_events set hash = '${'2'.repeat(64)}' where seq = 30`);
      const rewritten = await parallel([signed]);
      assert.equal(rewritten.ok, false);
      assert.match(JSON.stringify(rewritten), /edited|checkpoint/);
      await attack('delete from audit_events where seq > 25');
      const truncated = await parallel([signed]);
      assert.deepEqual(truncated, await inProcess([signed]));
      assert.match(JSON.stringify(truncated), /the chain ends after 25 events/);
    });
  });
}
