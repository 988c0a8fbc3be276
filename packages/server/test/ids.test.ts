// Ids of rows written in great numbers sort by time, so each insert lands at the end of the id's index.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId, newTimedId } from '../src/ids.ts';

test('timed ids have the shape of every id, sort in the order they were made across milliseconds, and do not repeat', async () => {
  const made: string[] = [];
  const until = Date.now() + 30;
  while (Date.now() < until) made.push(newTimedId('usage'));
  for (const id of made) assert.match(id, /^use_[0-9a-z]{20}$/);
  assert.equal(new Set(made).size, made.length);
  const millisecond = (id: string) => Number.parseInt(id.slice(4, 13), 36);
  assert.ok(millisecond(made.at(-1)!) - millisecond(made[0]!) >= 29, 'the first 9 characters are the time');
  // Made in a later millisecond, an id sorts after every earlier one.
  for (let i = 1; i < made.length; i++)
    if (millisecond(made[i]!) !== millisecond(made[i - 1]!))
      assert.ok(made[i]! > made[i - 1]!, `${made[i]} made after ${made[i - 1]}`);
  const first = newTimedId('event');
  await new Promise((r) => setTimeout(r, 2));
  assert.ok(newTimedId('event') > first);
  assert.match(newId('usage'), /^use_[0-9a-z]{20}$/);
});
