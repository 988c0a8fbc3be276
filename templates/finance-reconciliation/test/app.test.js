import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mask, parseCsv, reconcile } from '../src/app.js';

const ledger = parseCsv(
  'id,date,amount,reference\nL-1,2026-11-02,1200.00,INV-1\nL-2,2026-11-03,-310.50,SUP-2\nL-3,2026-11-05,89.99,INV-3',
);

test('lines match on amount within the tolerance, preferring the reference', () => {
  const bank = parseCsv(
    'date,amount,description\n2026-11-03,"1,200.00",Payment INV-1\n2026-11-20,89.99,late\n2026-11-04,-310.50,"Supplier, SUP-2"',
  );
  const r = reconcile(bank, ledger);
  assert.deepEqual(
    r.matched.map((m) => m.ledger.id),
    ['L-1', 'L-2'],
  );
  assert.deepEqual(
    r.unmatchedBank.map((l) => l.description),
    ['late'],
  );
  assert.deepEqual(
    r.unmatchedLedger.map((e) => e.id),
    ['L-3'],
  );
});

test('IBANs and names are masked in views and logs', () => {
  const text = mask('from DE89370400440532013000 name=Erika Mustermann; ok');
  assert.ok(!text.includes('370400440532'));
  assert.match(text, /DE\*\* \*\*\*\* 3000/);
  assert.match(text, /name=\*\*\*/);
});
