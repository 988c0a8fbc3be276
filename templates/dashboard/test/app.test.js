import assert from 'node:assert/strict';
import { test } from 'node:test';
import { barChart, parseCsv } from '../src/app.js';

test('rows with a number are kept, others skipped', () => {
  assert.deepEqual(parseCsv('month,value\n2026-01,10\nbad,x\n2026-02,20'), [
    { label: '2026-01', value: 10 },
    { label: '2026-02', value: 20 },
  ]);
});

test('the chart has one labelled bar per row and escapes labels', () => {
  const svg = barChart(
    [
      { label: '<b>', value: 5 },
      { label: 'b', value: 10 },
    ],
    { title: 'T' },
  );
  assert.equal((svg.match(/<rect /g) ?? []).length, 2);
  assert.match(svg, /role="img" aria-label="T"/);
  assert.ok(!svg.includes('<b>'));
});
