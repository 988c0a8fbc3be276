import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildApp } from '../src/app.js';
import { openStore } from '../src/store.js';

const owner = 'alice@example.com';
const app = () => buildApp({ store: openStore(':memory:'), name: 'tracker', owner });

test('without a signed-in user nothing but the health check answers', async (t) => {
  delete process.env.MICROAPP_DEV_USER;
  const a = app();
  t.after(() => a.close());
  assert.equal((await a.inject({ url: '/' })).statusCode, 401);
  assert.equal((await a.inject({ url: '/healthz' })).statusCode, 200);
});

test('a signed-in user adds an item from the form and changes its status; bad input is a 400', async (t) => {
  process.env.MICROAPP_DEV_USER = 'dave@example.com';
  const a = app();
  t.after(() => a.close());
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const added = await a.inject({ method: 'POST', url: '/items', headers: form, payload: 'title=Chase+invoice+4411' });
  assert.equal(added.statusCode, 303);
  const [item] = (await a.inject({ url: '/items.json' })).json();
  assert.equal(item.title, 'Chase invoice 4411');
  const moved = await a.inject({ method: 'POST', url: `/items/${item.id}`, headers: form, payload: 'status=done' });
  assert.equal(moved.statusCode, 303);
  assert.equal((await a.inject({ url: '/items.json' })).json()[0].status, 'done');
  assert.equal((await a.inject({ method: 'POST', url: '/items', headers: form, payload: 'title=' })).statusCode, 400);
  assert.equal(
    (await a.inject({ method: 'POST', url: `/items/${item.id}`, headers: form, payload: 'status=lost' })).statusCode,
    400,
  );
  const page = await a.inject({ url: '/' });
  assert.match(page.headers['content-security-policy'], /default-src 'self'/);
  assert.doesNotMatch((await a.inject({
    method: 'POST', url: '/items', headers: form, payload: 'title=%3Cscript%3Ealert(1)%3C%2Fscript%3E',
  })).body, /<script>/);
  assert.match((await a.inject({ url: '/' })).body, /&lt;script&gt;/);
});

test('only the owner exports', async (t) => {
  const a = app();
  t.after(() => a.close());
  process.env.MICROAPP_DEV_USER = 'dave@example.com';
  assert.equal((await a.inject({ url: '/export.csv' })).statusCode, 403);
  process.env.MICROAPP_DEV_USER = owner;
  const csv = await a.inject({ url: '/export.csv' });
  assert.equal(csv.statusCode, 200);
  assert.match(csv.headers['content-type'], /text\/csv/);
});
