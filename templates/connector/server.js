import { escapeHtml, listen, send } from './lib/http.js';
import { identityOf } from './lib/identity.js';
import { connectorGet, summarize } from './src/app.js';

listen(async (request, response) => {
  if (!identityOf(request))
    return send(response, 401, 'Sign in through the platform to use this app.', 'text/plain; charset=utf-8');
  if (request.method !== 'GET' || new URL(request.url, 'http://app').pathname !== '/')
    return send(response, 404, 'Not found', 'text/plain; charset=utf-8');
  const result = await connectorGet('ledger-api', '/entries?limit=20');
  if (result.status !== 200)
    return send(
      response,
      502,
      `The ledger answered ${result.status}: ${escapeHtml(result.text.slice(0, 200))}`,
    );
  const rows = summarize(result.json?.entries ?? result.json)
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.id)}</td><td>${escapeHtml(r.date)}</td><td>${r.amount.toFixed(2)}</td></tr>`,
    )
    .join('');
  return send(
    response,
    200,
    `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{name}}</title><h1>Latest ledger entries</h1><table><tr><th>Id</th><th>Date</th><th>Amount</th></tr>${rows}</table>`,
  );
});
