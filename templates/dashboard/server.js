import { readFileSync } from 'node:fs';
import { listen, send } from './lib/http.js';
import { identityOf } from './lib/identity.js';
import { barChart, parseCsv } from './src/app.js';

const rows = parseCsv(readFileSync(new URL('./sample/figures.csv', import.meta.url), 'utf8'));

listen(async (request, response) => {
  if (!identityOf(request))
    return send(response, 401, 'Sign in through the platform to use this app.', 'text/plain; charset=utf-8');
  if (new URL(request.url, 'http://app').pathname !== '/')
    return send(response, 404, 'Not found', 'text/plain; charset=utf-8');
  return send(
    response,
    200,
    `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{name}}</title><h1>{{name}}</h1>${barChart(rows, { title: 'Monthly figures' })}`,
  );
});
