import { escapeHtml, listen, readBody, send } from './lib/http.js';
import { identityOf } from './lib/identity.js';
import { fields, store, toCsv, validate } from './src/app.js';

const owner = process.env.MICROAPP_OWNER ?? '{{owner}}';
const answers = store(process.env.MICROAPP_DATA_DIR ?? './data');

const style = `body{font-family:system-ui;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.4}
label{font-weight:600}input,select,textarea{font:inherit;width:100%;box-sizing:border-box;margin:.25rem 0 1rem;padding:.4rem}
button{font:inherit;padding:.5rem 1.2rem}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ccc;padding:.3rem;text-align:left;vertical-align:top}.wide{max-width:none;overflow-x:auto}`;

function shell(title, body, wide = false) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>
<style>${style}</style></head><body${wide ? ' class="wide"' : ''}>${body}</body></html>`;
}

/** One question as its type asks: a date picker, a number with cents, a list, an e-mail or free text. */
function input(f, value = '') {
  const common = `id="f-${f.id}" name="${f.id}"${f.required ? ' required' : ''}`;
  const v = escapeHtml(value);
  switch (f.type ?? 'text') {
    case 'date':
      return `<input type="date" ${common} value="${v}">`;
    case 'amount':
      return `<input type="text" inputmode="decimal" pattern="[0-9 ']{1,16}([.,][0-9]{1,2})?" title="An amount like 1250.50" ${common} value="${v}">`;
    case 'email':
      return `<input type="email" maxlength="254" autocomplete="email" ${common} value="${v}">`;
    case 'choice':
      return `<select ${common}><option value="">Choose…</option>${f.choices
        .map((c) => `<option${c === value ? ' selected' : ''}>${escapeHtml(c)}</option>`)
        .join('')}</select>`;
    default:
      return `<textarea maxlength="${f.max}" ${common}>${v}</textarea>`;
  }
}

function page(user, { message = '', values = {} } = {}) {
  const inputs = fields
    .map((f) => `<label for="f-${f.id}">${escapeHtml(f.label)}</label><br>${input(f, values[f.id])}`)
    .join('<br>');
  const forOwner =
    user.email === owner
      ? `<p><a href="/answers">See the answers (${answers.all().length})</a> · <a href="/export.csv">Download them (CSV)</a></p>`
      : '';
  return shell(
    '{{name}}',
    `<h1>{{name}}</h1>${forOwner}
${message ? `<p role="status">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/submit">${inputs}<br><button>Send</button></form>`,
  );
}

/** The owner's view of the answers: newest first, the same columns as the export. */
function answersPage() {
  const rows = answers.all().reverse();
  const head = [...fields.map((f) => escapeHtml(f.label)), 'Answered by', 'When'];
  const body = rows
    .slice(0, 1000)
    .map(
      (r) =>
        `<tr>${[...fields.map((f) => r[f.id]), r.by, r.at].map((c) => `<td>${escapeHtml(c ?? '')}</td>`).join('')}</tr>`,
    )
    .join('');
  return shell(
    'Answers · {{name}}',
    `<h1>Answers to {{name}}</h1>
<p>${rows.length} answer${rows.length === 1 ? '' : 's'}${rows.length > 1000 ? ', the newest 1,000 shown' : ''}. <a href="/export.csv">Download them all (CSV)</a> · <a href="/">Back to the form</a></p>
${rows.length ? `<table><thead><tr>${head.map((h) => `<th scope="col">${h}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table>` : '<p>No answers yet.</p>'}`,
    true,
  );
}

const onlyOwner = (response, what) =>
  send(response, 403, `Only the owner of this app can ${what}.`, 'text/plain; charset=utf-8');

listen(async (request, response) => {
  // No icon: answer browsers' automatic request without an error in their console.
  if (request.url === '/favicon.ico') return send(response, 204, '', 'image/x-icon');
  const user = identityOf(request);
  if (!user)
    return send(response, 401, 'Sign in through the platform to use this app.', 'text/plain; charset=utf-8');
  const url = new URL(request.url, 'http://app');
  if (request.method === 'GET' && url.pathname === '/') return send(response, 200, page(user));
  if (request.method === 'POST' && url.pathname === '/submit') {
    const form = Object.fromEntries(new URLSearchParams(await readBody(request)));
    const result = validate(form);
    if (!result.ok)
      return send(response, 400, page(user, { message: result.problems.join('. '), values: form }));
    answers.add(result.record, user.email);
    return send(response, 200, page(user, { message: 'Thank you, your answer is saved.' }));
  }
  if (request.method === 'GET' && url.pathname === '/answers') {
    if (user.email !== owner) return onlyOwner(response, 'see the answers');
    return send(response, 200, answersPage());
  }
  if (request.method === 'GET' && url.pathname === '/export.csv') {
    if (user.email !== owner) return onlyOwner(response, 'export the answers');
    return send(response, 200, toCsv(answers.all()), 'text/csv; charset=utf-8');
  }
  return send(response, 404, 'Not found', 'text/plain; charset=utf-8');
});
