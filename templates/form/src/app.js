// The form's logic, kept apart from HTTP so it can be tested directly.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The questions. Edit these to change the form. */
export const fields = [
  { id: 'name', label: 'Your name', required: true, max: 100 },
  { id: 'team', label: 'Team', required: true, max: 100 },
  { id: 'answer', label: 'Your answer', required: true, max: 2000 },
];

/** Checks one submission; returns the clean record or the list of problems. */
export function validate(form) {
  const problems = [];
  const record = {};
  for (const f of fields) {
    const value = String(form[f.id] ?? '').trim();
    if (f.required && !value) problems.push(`${f.label} is required`);
    if (value.length > f.max) problems.push(`${f.label} is longer than ${f.max} characters`);
    record[f.id] = value;
  }
  return problems.length ? { ok: false, problems } : { ok: true, record };
}

/** Where answers are kept: the app's private data directory, which survives restarts and upgrades. */
export function store(dataDir) {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'submissions.jsonl');
  return {
    add(record, by) {
      appendFileSync(file, `${JSON.stringify({ ...record, by, at: new Date().toISOString() })}\n`);
    },
    all() {
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    },
  };
}

/** CSV with every cell quoted, and cells that a spreadsheet would run as a formula neutralized. */
export function toCsv(rows) {
  const columns = [...fields.map((f) => f.id), 'by', 'at'];
  const cell = (v) => {
    let s = String(v ?? '');
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return `"${s.replace(/"/g, '""')}"`;
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\r\n');
}
