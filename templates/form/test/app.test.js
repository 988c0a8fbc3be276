import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { store, toCsv, validate } from '../src/app.js';

test('a complete answer is accepted and missing fields are named', () => {
  assert.equal(validate({ name: 'Ann', team: 'Tax', answer: 'Yes' }).ok, true);
  const bad = validate({ name: 'Ann' });
  assert.equal(bad.ok, false);
  assert.deepEqual(bad.problems, ['Team is required', 'Your answer is required']);
});

test('answers survive in the data directory and export as CSV', () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-'));
  try {
    const s = store(dir);
    s.add({ name: 'Ann', team: 'Tax', answer: 'say "hi"' }, 'ann@example.com');
    const csv = toCsv(store(dir).all());
    assert.match(csv, /^name,team,answer,by,at\r\n"Ann","Tax","say ""hi""","ann@example.com"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('spreadsheet formulas in answers are neutralized in the export', () => {
  assert.match(toCsv([{ name: '=HYPERLINK("http://evil")', team: 't', answer: 'a' }]), /"'=HYPERLINK/);
});
