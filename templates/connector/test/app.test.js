import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { brokerFromEnv, connectorGet, summarize } from '../src/app.js';

test('calls go to connector.<name> through the broker, never directly', async () => {
  const seen = [];
  // A stand-in broker on loopback: it receives the absolute URL, as a forward proxy does.
  const broker = createServer((req, res) => {
    seen.push({ url: req.url, auth: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        entries: [{ id: 7, date: '2026-11-01', amount: '12.5', iban: 'DE89370400440532013000' }],
      }),
    );
  });
  await new Promise((r) => broker.listen(0, '127.0.0.1', r));
  try {
    const url = brokerFromEnv({ HTTP_PROXY: `http://127.0.0.1:${broker.address().port}` });
    const result = await connectorGet(url, 'ledger-api', '/entries?limit=20');
    assert.equal(result.status, 200);
    assert.deepEqual(
      seen,
      [{ url: 'http://connector.ledger-api/entries?limit=20', auth: undefined }],
      'the app sends no credentials',
    );
    assert.deepEqual(
      summarize(result.json.entries),
      [{ id: '7', date: '2026-11-01', amount: 12.5 }],
      'fields not shown are dropped',
    );
  } finally {
    broker.close();
  }
});

test('connector names and paths are checked', () => {
  assert.throws(() => connectorGet(new URL('http://127.0.0.1:1'), 'evil.com/x', '/'), /DNS labels/);
  assert.throws(() => connectorGet(new URL('http://127.0.0.1:1'), 'ledger-api', 'x'), /start with/);
});
