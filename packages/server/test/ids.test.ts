// Ids of rows written in great numbers sort by time, so each insert lands at the end of the id's index.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId, newTimedId } from '../src/ids.ts';

test('timed ids have the shape of every id, carry the millisecond they were made in, sort by it, and do not repeat', async () => {
  const millisecond = (id: string) => Number.parseInt(id.slice(4, 13), 36);
  const made: string[] = [];
  const until = Date.now() + 30;
  while (Date.now() < until) {
    const before = Date.now();
    const id = newTimedId('usage');
    const after = Date.now();
    assert.match(id, /^use_[0-9a-z]{20}$/);
    assert.ok(millisecond(id) >= before && millisecond(id) <= after, `${id} was made at ${before}–${after}`);
    made.push(id);
  }
  assert.equal(new Set(made).size, made.length);
  // Made in a later millisecond, an id sorts after every earlier one.
  for (let i = 1; i < made.length; i++)
    if (millisecond(made[i]!) !== millisecond(made[i - 1]!))
      assert.ok(made[i]! > made[i - 1]!, `${made[i]} made after ${made[i - 1]}`);
  const first = newTimedId('event');
  await new Promise((r) => setTimeout(r, 2));
  assert.ok(newTimedId('event') > first);
  assert.match(newId('usage'), /^use_[0-9a-z]{20}$/);
});
