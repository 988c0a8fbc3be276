import { readFileSync } from 'node:fs';
import { escapeHtml, listen, readBody, send } from './lib/http.js';
import { identityOf } from './lib/identity.js';
import { mask, parseCsv, reconcile } from './src/app.js';

const ledger = parseCsv(readFileSync(new URL('./sample/ledger.csv', import.meta.url), 'utf8'));

const form = `<form method="post" action="/reconcile"><label>Bank statement (CSV with date, amount, description)<br>
<textarea name="csv" rows="10" cols="80" required></textarea></label><br><button>Reconcile</button></form>`;

listen(async (request, response) => {
  const user = identityOf(request);
  if (!user)
    return send(response, 401, 'Sign in through the platform to use this app.', 'text/plain; charset=utf-8');
  const url = new URL(request.url, 'http://app');
  if (request.method === 'GET' && url.pathname === '/')
    return send(
      response,
      200,
      `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{name}}</title><h1>Reconcile</h1>${form}`,
    );
  if (request.method === 'POST' && url.pathname === '/reconcile') {
    const csv = new URLSearchParams(await readBody(request, 2 * 1024 * 1024)).get('csv') ?? '';
    const result = reconcile(parseCsv(csv), ledger);
    console.log(
      mask(
        `reconciled by ${user.email}: ${result.matched.length} matched, ${result.unmatchedBank.length} open`,
      ),
    );
    const rows = (list) =>
      list
        .map(
          (l) =>
            `<tr><td>${escapeHtml(l.date)}</td><td>${escapeHtml(l.amount)}</td><td>${escapeHtml(mask(l.description ?? l.reference ?? ''))}</td></tr>`,
        )
        .join('');
    return send(
      response,
      200,
      `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{name}}</title><h1>${result.matched.length} matched</h1>
<h2>Bank lines without a ledger entry</h2><table>${rows(result.unmatchedBank)}</table>
<h2>Ledger entries without a bank line</h2><table>${rows(result.unmatchedLedger)}</table>`,
    );
  }
  return send(response, 404, 'Not found', 'text/plain; charset=utf-8');
});
