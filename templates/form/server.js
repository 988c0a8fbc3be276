import { escapeHtml, listen, readBody, send } from './lib/http.js';
import { identityOf } from './lib/identity.js';
import { fields, store, toCsv, validate } from './src/app.js';

const owner = process.env.MICROAPP_OWNER ?? '{{owner}}';
const answers = store(process.env.MICROAPP_DATA_DIR ?? './data');

function page(message = '') {
  const inputs = fields
    .map(
      (f) =>
        `<label>${escapeHtml(f.label)}<br><textarea name="${f.id}" maxlength="${f.max}" ${f.required ? 'required' : ''}></textarea></label>`,
    )
    .join('<br>');
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>{{name}}</title>
<body style="font-family:system-ui;max-width:40rem;margin:2rem auto"><h1>{{name}}</h1>
${message ? `<p role="status">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/submit">${inputs}<br><button>Send</button></form></body></html>`;
}

listen(async (request, response) => {
  // No icon: answer browsers' automatic request without an error in their console.
  if (request.url === '/favicon.ico') return send(response, 204, '', 'image/x-icon');
  const user = identityOf(request);
  if (!user)
    return send(response, 401, 'Sign in through the platform to use this app.', 'text/plain; charset=utf-8');
  const url = new URL(request.url, 'http://app');
  if (request.method === 'GET' && url.pathname === '/') return send(response, 200, page());
  if (request.method === 'POST' && url.pathname === '/submit') {
    const form = Object.fromEntries(new URLSearchParams(await readBody(request)));
    const result = validate(form);
    if (!result.ok) return send(response, 400, page(result.problems.join('. ')));
    answers.add(result.record, user.email);
    return send(response, 200, page('Thank you, your answer is saved.'));
  }
  if (request.method === 'GET' && url.pathname === '/export.csv') {
    if (user.email !== owner)
      return send(
        response,
        403,
        'Only the owner of this app can export the answers.',
        'text/plain; charset=utf-8',
      );
    return send(response, 200, toCsv(answers.all()), 'text/csv; charset=utf-8');
  }
  return send(response, 404, 'Not found', 'text/plain; charset=utf-8');
});
