import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { call, engines, lunchPoll, signInEveryone, startTestServer, type TestServer } from './harness.ts';
import { seedCatalog } from './seed-catalog.ts';

// The catalog at a size where an unindexed plan shows: thousands of apps over departments, searched through
// the trigram index and, for a text too common for it, row by row. Every path must find exactly the apps a
// plain substring test over the same fields finds, and a creator must see exactly what they may.

type Item = { name: string; department: string | null; owner: string };

for (const engine of engines()) {
  describe(`the catalog at scale (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine, { env: { MICROAPP_QUOTA_REGISTRATIONS_PER_DAY: '1000' } });
      t = await signInEveryone(server);
      const register = async (token: string, body: Record<string, unknown>) => {
        const r = await call(server, 'POST', '/api/v1/apps', { token, body });
        assert.equal(r.status, 201, r.text);
      };
      await register(t.frank, lunchPoll({ owner: 'frank@example.com' }));
      await register(
        t.alice,
        lunchPoll({
          name: 'expense-claims',
          owner: 'alice@example.com',
          purpose: 'Claim "travel" expenses, 100% online',
        }),
      );
      await register(
        t.alice,
        lunchPoll({ name: 'desk-booking', owner: 'alice@example.com', purpose: 'Book a desk' }),
      );
      const db = server.rawDb();
      try {
        await seedCatalog(db, { apps: 6500, departments: 10, owners: 50 });
      } finally {
        await db.destroy();
      }
    });
    after(() => server.stop());

    /** Every app a person sees for a query, page by page through the cursor. */
    async function all(token: string, query: string): Promise<Item[]> {
      const items: Item[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 100; page++) {
        const r: { status: number; text: string; body: { items: Item[]; nextCursor: string | null } } =
          await call(
            server,
            'GET',
            `/api/v1/apps?limit=200${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
            { token },
          );
        assert.equal(r.status, 200, r.text);
        items.push(...r.body.items);
        cursor = r.body.nextCursor;
        if (!cursor) return items;
      }
      throw new Error('more than 100 pages');
    }

    /** What a plain substring test over the same fields finds, straight from the database. */
    async function expected(
      text: string,
      visibleTo?: { department: string; email: string },
    ): Promise<string[]> {
      const db = server.rawDb();
      try {
        const rows = await sql<{ name: string; department: string | null; owner: string; manifest: string }>`
          select name, department, owner, manifest from apps`.execute(db.kysely);
        return rows.rows
          .filter((r) => {
            const purpose = (JSON.parse(r.manifest) as { purpose?: string }).purpose ?? '';
            const haystack = `${r.name} ${r.department ?? ''} ${r.owner} ${purpose}`.toLowerCase();
            const visible =
              !visibleTo || r.department === visibleTo.department || r.owner === visibleTo.email;
            return visible && haystack.includes(text.toLowerCase());
          })
          .map((r) => r.name)
          .sort();
      } finally {
        await db.destroy();
      }
    }

    const names = (items: Item[]) => items.map((i) => i.name);
    const sorted = (xs: string[]) => [...xs].sort();

    test('a rare text (through the index), a common one (row by row) and a short one find what a substring test finds', async () => {
      for (const text of [
        'Desk',
        'lunch',
        'dept-3',
        'seed-0001234',
        'expense',
        'ex',
        'zq',
        'nothing-like-this',
      ]) {
        const found = names(await all(t.ivan, `&q=${encodeURIComponent(text)}`));
        assert.deepEqual(sorted(found), await expected(text), `q=${text}`);
        assert.deepEqual(found, sorted(found), `q=${text} comes in name order`);
      }
      assert.ok(
        (await expected('lunch')).length > 2000,
        'lunch is past the bound where rows are checked one by one',
      );
      assert.ok((await expected('dept-3')).length < 2000, 'dept-3 is found through the index');
    });

    test('quotes, wildcards and FTS syntax in a search are literal text', async () => {
      for (const text of [
        '"travel"',
        '100%',
        'a_b',
        'lunch OR desk',
        'lunch*',
        'NEAR(a b)',
        '-',
        "o'",
        '\\',
      ]) {
        const r = await call(server, 'GET', `/api/v1/apps?limit=200&q=${encodeURIComponent(text)}`, {
          token: t.ivan,
        });
        assert.equal(r.status, 200, `q=${text}: ${r.text}`);
        assert.deepEqual(sorted(names(r.body.items)), (await expected(text)).slice(0, 200), `q=${text}`);
      }
    });

    test("a creator sees their department's apps and their own, each once, in order, through every page", async () => {
      const seen = names(await all(t.alice, ''));
      assert.equal(new Set(seen).size, seen.length, 'no app twice');
      assert.deepEqual(seen, sorted(seen));
      assert.deepEqual(seen, await expected('', { department: 'finance', email: 'alice@example.com' }));
      assert.ok(seen.includes('expense-claims'));
      assert.ok(!seen.includes('team-lunch-poll'), "another department's app stays hidden");
      const searched = names(await all(t.alice, '&q=lunch'));
      assert.deepEqual(
        searched,
        await expected('lunch', { department: 'finance', email: 'alice@example.com' }),
      );
      const marketing = names(await all(t.frank, '&q=lunch'));
      assert.deepEqual(
        marketing,
        await expected('lunch', { department: 'marketing', email: 'frank@example.com' }),
      );
      assert.ok(marketing.includes('team-lunch-poll'));
    });

    test("view=summary: a catalog row's fields only, and the same apps, order and pages as the full view", async () => {
      for (const [token, query] of [
        [t.ivan, '&q=lunch'],
        [t.alice, ''],
        [t.alice, '&q=desk&tier=low'],
      ] as const) {
        const full = await all(token, query);
        const summary = await all(token, `${query}&view=summary`);
        assert.deepEqual(names(summary), names(full), `${query} as the same apps`);
        const first = summary[0] as unknown as Record<string, unknown>;
        assert.deepEqual(
          Object.keys(first)
            .filter((k) => k !== 'scorecard')
            .sort(),
          [
            'dataClasses',
            'department',
            'expiresAt',
            'id',
            'lastUsedAt',
            'name',
            'owner',
            'purpose',
            'revision',
            'running',
            'stage',
            'state',
            'tier',
            'updatedAt',
          ],
        );
        const same = full[0] as unknown as { manifest: { purpose: string }; scorecard?: unknown };
        assert.equal(first.purpose, same.manifest.purpose);
        assert.deepEqual(first.scorecard, same.scorecard);
      }
      const bad = await call(server, 'GET', '/api/v1/apps?view=everything', { token: t.ivan });
      assert.equal(bad.status, 400);
    });

    test('the search follows a new owner', async () => {
      const moved = await call(server, 'POST', '/api/v1/apps/desk-booking/owner', {
        token: t.carol,
        body: { owner: 'carol@example.com' },
      });
      assert.equal(moved.status, 200, moved.text);
      assert.deepEqual(names(await all(t.ivan, '&q=carol@')), await expected('carol@'));
      assert.ok(names(await all(t.ivan, '&q=carol@')).includes('desk-booking'));
      assert.ok(!names(await all(t.ivan, '&q=alice@')).includes('desk-booking'));
    });

    test('the lifecycle job walks a catalog many pages long: every app once, each given its lifecycle', async () => {
      await server.internals.jobs.trigger('lifecycle');
      const db = server.rawDb();
      try {
        const apps = await db.kysely
          .selectFrom('apps')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        const rows = await db.kysely
          .selectFrom('app_lifecycle')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        const job = await db.kysely
          .selectFrom('jobs')
          .select(['last_result', 'last_error'])
          .where('name', '=', 'lifecycle')
          .executeTakeFirstOrThrow();
        assert.equal(job.last_error, null);
        assert.ok(Number(apps.n) > 6500);
        assert.equal(JSON.parse(job.last_result ?? '{}').apps, Number(apps.n), 'each app counted once');
        assert.equal(Number(rows.n), Number(apps.n), 'each app has its lifecycle row');
      } finally {
        await db.destroy();
      }
    });
  });
}
