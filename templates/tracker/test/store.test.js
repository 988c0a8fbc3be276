import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openStore, toCsv } from '../src/store.js';

test('items are added, change status with who and when, and list open ones first', () => {
  const store = openStore(':memory:');
  const first = store.add({ title: 'Chase the missing invoice' }, 'alice@example.com');
  const second = store.add({ title: 'Book the auditor' }, 'alice@example.com');
  assert.equal(store.setStatus(first, 'done', 'dave@example.com'), true);
  assert.deepEqual(
    store.all().map((i) => [i.id, i.status]),
    [
      [second, 'open'],
      [first, 'done'],
    ],
  );
  assert.equal(store.get(first).updated_by, 'dave@example.com');
  assert.throws(() => store.setStatus(first, 'lost', 'dave@example.com'), /unknown status/);
  assert.equal(store.setStatus(999, 'done', 'dave@example.com'), false);
});

test('the export quotes what needs it and defuses spreadsheet formulas', () => {
  const csv = toCsv([{ id: 1, title: '=HYPERLINK("x")', notes: 'a, b', status: 'open' }]);
  assert.match(csv, /^id,title,notes,status/);
  assert.match(csv, /1,"'=HYPERLINK\(""x""\)","a, b",open/);
});
