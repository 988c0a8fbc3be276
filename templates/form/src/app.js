// The form's logic, kept apart from HTTP so it can be tested directly.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The kinds of answer a question takes, and what each accepts. A question without a type is free text.
 * (The platform's form builder reads this list from here to know this code takes typed questions.)
 */
export const fieldTypes = {
  text: 'free text, up to the question’s length',
  date: 'a date, as YYYY-MM-DD',
  amount: 'an amount of money, like 1250.50',
  choice: 'one of the question’s choices',
  email: 'an e-mail address',
};

/**
 * The questions, from form.json (edit it, or use the form builder in the console). Each has an id
 * (lower-case letters, digits and underscores), a label, whether it is required, a maximum length, and
 * optionally a type (see fieldTypes; a choice lists its choices).
 */
export const fields = checkFields(JSON.parse(readFileSync(new URL('../form.json', import.meta.url), 'utf8')).fields);

/** Checks a list of questions as form.json holds them; throws with the question named. */
export function checkFields(list) {
  if (!Array.isArray(list) || list.length === 0 || list.length > 50) throw new Error('form.json: 1 to 50 fields');
  const seen = new Set();
  for (const f of list) {
    if (!/^[a-z][a-z0-9_]{0,39}$/.test(f.id ?? '') || seen.has(f.id) || ['by', 'at'].includes(f.id))
      throw new Error(`form.json: field id "${f.id}" must be unique lower-case letters, digits and underscores`);
    if (typeof f.label !== 'string' || !f.label.trim() || f.label.length > 200)
      throw new Error(`form.json: field ${f.id} needs a label of at most 200 characters`);
    if (typeof f.required !== 'boolean' || !Number.isInteger(f.max) || f.max < 1 || f.max > 10000)
      throw new Error(`form.json: field ${f.id} needs required (true/false) and max (1 to 10000)`);
    if (f.type !== undefined && !Object.hasOwn(fieldTypes, f.type))
      throw new Error(`form.json: field ${f.id} has type "${f.type}"; use ${Object.keys(fieldTypes).join(', ')}`);
    const choices = f.choices;
    if ((f.type === 'choice') !== (choices !== undefined))
      throw new Error(`form.json: field ${f.id}: choices go with type "choice", and a choice needs them`);
    if (
      choices !== undefined &&
      (!Array.isArray(choices) ||
        choices.length < 2 ||
        choices.length > 50 ||
        new Set(choices).size !== choices.length ||
        choices.some((c) => typeof c !== 'string' || !c.trim() || c.length > 100))
    )
      throw new Error(`form.json: field ${f.id} needs 2 to 50 different choices of at most 100 characters`);
    seen.add(f.id);
  }
  return list;
}

const isDate = (v) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3];
};

/** One answer against its question's type: the value to keep, or what is wrong with it. */
function checkValue(f, value) {
  switch (f.type ?? 'text') {
    case 'date':
      return isDate(value) ? { value } : { problem: `${f.label} must be a date (YYYY-MM-DD)` };
    case 'amount': {
      const plain = value.replace(/[\s']/g, '').replace(',', '.');
      return /^\d{1,12}(\.\d{1,2})?$/.test(plain)
        ? { value: Number(plain).toFixed(2) }
        : { problem: `${f.label} must be an amount like 1250.50 (at most two decimals, no currency sign)` };
    }
    case 'choice':
      return f.choices.includes(value)
        ? { value }
        : { problem: `${f.label} must be one of: ${f.choices.join(', ')}` };
    case 'email':
      return value.length <= 254 && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)
        ? { value: value.toLowerCase() }
        : { problem: `${f.label} must be an e-mail address` };
    default:
      return value.length > f.max ? { problem: `${f.label} is longer than ${f.max} characters` } : { value };
  }
}

/** A checker of submissions to these questions: the clean record, or the list of problems. */
export function validatorFor(questions) {
  return (form) => check(questions, form);
}

/** Checks one submission to the form's questions; returns the clean record or the list of problems. */
export const validate = validatorFor(fields);

function check(questions, form) {
  const problems = [];
  const record = {};
  for (const f of questions) {
    const value = String(form[f.id] ?? '').trim();
    record[f.id] = '';
    if (!value) {
      if (f.required) problems.push(`${f.label} is required`);
      continue;
    }
    const checked = checkValue(f, value);
    if (checked.problem) problems.push(checked.problem);
    else record[f.id] = checked.value;
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
