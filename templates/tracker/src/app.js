// The tracker's web app (Fastify): a page with the list and a form, a JSON view, and a CSV export for
// the owner. Every request is signed in by the platform; the app checks the identity it forwards.
import Fastify from 'fastify';
import { identityOf } from '../lib/identity.js';
import { statuses, toCsv } from './store.js';

const securityHeaders = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'",
};

const escapeHtml = (value) =>
  String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );

function page(name, items, message = '') {
  const rows = items
    .map(
      (i) => `<tr><td>${escapeHtml(i.title)}${i.notes ? `<br><small>${escapeHtml(i.notes)}</small>` : ''}</td>
<td><form method="post" action="/items/${i.id}"><label>Status <select name="status">${statuses
        .map((s) => `<option${s === i.status ? ' selected' : ''}>${s}</option>`)
        .join('')}</select></label> <button>Save</button></form></td>
<td>${escapeHtml(i.updated_by)}<br><small>${escapeHtml(i.updated_at.slice(0, 16).replace('T', ' '))}</small></td></tr>`,
    )
    .join('\n');
  return `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(name)}</title>
<body style="font-family:system-ui;max-width:48rem;margin:2rem auto"><h1>${escapeHtml(name)}</h1>
${message ? `<p role="status">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/items"><label>New item<br><input name="title" maxlength="200" required></label><br>
<label>Notes<br><textarea name="notes" maxlength="2000"></textarea></label><br><button>Add</button></form>
<table><caption>Items, open first</caption><thead><tr><th scope="col">Item</th><th scope="col">Status</th><th scope="col">Last change</th></tr></thead>
<tbody>${rows || '<tr><td colspan="3">Nothing yet.</td></tr>'}</tbody></table></body></html>`;
}

/** The app over `store`; `owner` may export. */
export function buildApp({ store, name, owner }) {
  const app = Fastify({ bodyLimit: 64 * 1024 });
  // HTML forms post url-encoded bodies; parsed without another dependency.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body))),
  );
  app.addHook('onSend', async (_request, reply) => {
    reply.headers(securityHeaders);
  });
  app.get('/healthz', async () => ({ ok: true, sqlite: store.sqliteVersion() }));
  // No icon: answer browsers' automatic request without an error in their console.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz' || request.url === '/favicon.ico') return;
    request.user = identityOf(request.raw);
    if (!request.user)
      return reply.code(401).type('text/plain; charset=utf-8').send('Sign in through the platform to use this app.');
  });

  const html = (reply, status, body) => reply.code(status).type('text/html; charset=utf-8').send(body);
  app.get('/', async (_request, reply) => html(reply, 200, page(name, store.all())));
  app.get('/items.json', async () => store.all());

  const item = {
    type: 'object',
    required: ['title'],
    properties: {
      title: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
      notes: { type: 'string', maxLength: 2000 },
    },
  };
  app.post('/items', { schema: { body: item }, attachValidation: true }, async (request, reply) => {
    if (request.validationError)
      return html(reply, 400, page(name, store.all(), 'An item needs a title of at most 200 characters.'));
    const id = store.add({ title: request.body.title.trim(), notes: request.body.notes ?? '' }, request.user.email);
    if (request.headers.accept?.includes('application/json')) return reply.code(201).send(store.get(id));
    return reply.redirect('/', 303);
  });

  app.post(
    '/items/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } },
        body: { type: 'object', required: ['status'], properties: { status: { enum: statuses } } },
      },
      attachValidation: true,
    },
    async (request, reply) => {
      if (request.validationError)
        return html(reply, 400, page(name, store.all(), `The status is one of: ${statuses.join(', ')}.`));
      if (!store.setStatus(request.params.id, request.body.status, request.user.email))
        return html(reply, 404, page(name, store.all(), 'That item does not exist.'));
      if (request.headers.accept?.includes('application/json')) return store.get(request.params.id);
      return reply.redirect('/', 303);
    },
  );

  app.get('/export.csv', async (request, reply) => {
    if (request.user.email !== owner)
      return reply.code(403).type('text/plain; charset=utf-8').send('Only the owner of this app can export the items.');
    return reply.type('text/csv; charset=utf-8').send(toCsv(store.all()));
  });
  return app;
}
