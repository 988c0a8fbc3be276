import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkFields, fields, fieldTypes, store, toCsv, validate, validatorFor } from '../src/app.js';

// The tests follow form.json, so they keep passing when the questions change.
const sample = {
  date: () => '2026-01-31',
  amount: () => '12.50',
  choice: (f) => f.choices[0],
  email: () => 'someone@example.com',
  text: (f) => `answer to ${f.label}`.slice(0, f.max),
};
const complete = Object.fromEntries(fields.map((f) => [f.id, sample[f.type ?? 'text'](f)]));

test('a complete answer is accepted and missing required fields are named', () => {
  assert.equal(validate(complete).ok, true);
  const bad = validate({});
  const required = fields.filter((f) => f.required);
  assert.equal(bad.ok, required.length === 0);
  if (required.length) assert.deepEqual(bad.problems, required.map((f) => `${f.label} is required`));
});

test('an answer longer than its field allows, or not of its kind, is refused', () => {
  for (const f of fields) {
    const kind = f.type ?? 'text';
    const result = validate({ ...complete, [f.id]: kind === 'text' ? 'x'.repeat(f.max + 1) : 'x'.repeat(300) });
    assert.equal(result.ok, false, f.id);
    assert.match(result.problems.join(), kind === 'text' ? /longer than/ : /must be/, f.id);
  }
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

test('typed questions take only their kind of answer, and keep it in one form', () => {
  const typed = checkFields([
    { id: 'spent_on', label: 'Date', required: true, max: 10, type: 'date' },
    { id: 'amount', label: 'Amount', required: true, max: 20, type: 'amount' },
    { id: 'kind', label: 'Kind', required: true, max: 50, type: 'choice', choices: ['Travel', 'Meals'] },
    { id: 'approver', label: 'Approver', required: false, max: 254, type: 'email' },
  ]);
  const check = validatorFor(typed);
  assert.deepEqual(check({ spent_on: '2026-02-28', amount: '1 250,5', kind: 'Meals', approver: 'Bo@Example.com' }), {
    ok: true,
    record: { spent_on: '2026-02-28', amount: '1250.50', kind: 'Meals', approver: 'bo@example.com' },
  });
  // An optional question may stay empty; a required one may not.
  assert.equal(check({ spent_on: '2026-02-28', amount: '3', kind: 'Travel' }).ok, true);
  const bad = check({ spent_on: '2026-02-30', amount: '12.345', kind: 'Gifts', approver: 'not an address' });
  assert.deepEqual(bad.problems, [
    'Date must be a date (YYYY-MM-DD)',
    'Amount must be an amount like 1250.50 (at most two decimals, no currency sign)',
    'Kind must be one of: Travel, Meals',
    'Approver must be an e-mail address',
  ]);
  assert.match(check({ spent_on: '2026-01-01', amount: '-5', kind: 'Meals' }).problems.join(), /Amount must be/);
});

test('form.json with a type it does not know, or a choice without choices, is refused at start', () => {
  const base = { id: 'q', label: 'Q', required: true, max: 10 };
  assert.throws(() => checkFields([{ ...base, type: 'colour' }]), /type "colour"/);
  assert.throws(() => checkFields([{ ...base, type: 'choice' }]), /choices go with type "choice"/);
  assert.throws(() => checkFields([{ ...base, choices: ['a', 'b'] }]), /choices go with type "choice"/);
  assert.throws(() => checkFields([{ ...base, type: 'choice', choices: ['a', 'a'] }]), /2 to 50 different/);
  assert.ok(Object.keys(fieldTypes).includes('text'));
});
