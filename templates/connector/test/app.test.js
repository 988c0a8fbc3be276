import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectorGet, summarize } from '../src/app.js';

test('calls go to connector.<name> (the broker takes every fetch on the platform), with no credential', async () => {
  const seen = [];
  const fetchImpl = async (url, init) => {
    seen.push({ url, auth: new Headers(init.headers).get('authorization') });
    return new Response(
      JSON.stringify({ entries: [{ id: 7, date: '2026-11-01', amount: '12.5', iban: 'DE89370400440532013000' }] }),
      { headers: { 'content-type': 'application/json' } },
    );
  };
  const result = await connectorGet('ledger-api', '/entries?limit=20', { fetchImpl });
  assert.equal(result.status, 200);
  assert.deepEqual(seen, [{ url: 'http://connector.ledger-api/entries?limit=20', auth: null }], 'the app sends no credentials');
  assert.deepEqual(summarize(result.json.entries), [{ id: '7', date: '2026-11-01', amount: 12.5 }], 'fields not shown are dropped');
});

test('off the platform the failure says where the connector is reached from', async () => {
  const fetchImpl = async () => {
    throw new TypeError('fetch failed');
  };
  await assert.rejects(connectorGet('ledger-api', '/entries', { fetchImpl }), /reached through the platform's egress broker/);
});

test('connector names and paths are checked', async () => {
  await assert.rejects(connectorGet('evil.com/x', '/'), /DNS labels/);
  await assert.rejects(connectorGet('ledger-api', 'x'), /start with/);
});
