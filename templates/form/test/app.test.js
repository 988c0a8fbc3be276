import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fields, store, toCsv, validate } from '../src/app.js';

// The tests follow form.json, so they keep passing when the questions change.
const complete = Object.fromEntries(fields.map((f) => [f.id, `answer to ${f.label}`.slice(0, f.max)]));

test('a complete answer is accepted and missing required fields are named', () => {
  assert.equal(validate(complete).ok, true);
  const bad = validate({});
  const required = fields.filter((f) => f.required);
  assert.equal(bad.ok, required.length === 0);
  if (required.length) assert.deepEqual(bad.problems, required.map((f) => `${f.label} is required`));
});

test('an answer longer than its field allows is refused', () => {
  const f = fields[0];
  const result = validate({ ...complete, [f.id]: 'x'.repeat(f.max + 1) });
  assert.equal(result.ok, false);
  assert.match(result.problems.join(), /longer than/);
});

test('answers survive in the data directory and export as CSV', () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-'));
  try {
    const s = store(dir);
    s.add({ ...complete, [fields[0].id]: 'say "hi"' }, 'ann@example.com');
    const csv = toCsv(store(dir).all());
    const header = [...fields.map((f) => f.id), 'by', 'at'].join(',');
    assert.ok(csv.startsWith(`${header}\r\n"say ""hi"""`), csv);
    assert.match(csv, /"ann@example.com"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('spreadsheet formulas in answers are neutralized in the export', () => {
  assert.match(toCsv([{ [fields[0].id]: '=HYPERLINK("http://evil")' }]), /"'=HYPERLINK/);
});
