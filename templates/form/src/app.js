// The form's logic, kept apart from HTTP so it can be tested directly.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The questions, from form.json (edit it, or use the form builder in the console). Each has an id
 * (lower-case letters, digits and underscores), a label, whether it is required and a maximum length.
 */
export const fields = checkFields(JSON.parse(readFileSync(new URL('../form.json', import.meta.url), 'utf8')).fields);

function checkFields(list) {
  if (!Array.isArray(list) || list.length === 0 || list.length > 50) throw new Error('form.json: 1 to 50 fields');
  const seen = new Set();
  for (const f of list) {
    if (!/^[a-z][a-z0-9_]{0,39}$/.test(f.id ?? '') || seen.has(f.id) || ['by', 'at'].includes(f.id))
      throw new Error(`form.json: field id "${f.id}" must be unique lower-case letters, digits and underscores`);
    if (typeof f.label !== 'string' || !f.label.trim() || f.label.length > 200)
      throw new Error(`form.json: field ${f.id} needs a label of at most 200 characters`);
    if (typeof f.required !== 'boolean' || !Number.isInteger(f.max) || f.max < 1 || f.max > 10000)
      throw new Error(`form.json: field ${f.id} needs required (true/false) and max (1 to 10000)`);
    seen.add(f.id);
  }
  return list;
}

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
