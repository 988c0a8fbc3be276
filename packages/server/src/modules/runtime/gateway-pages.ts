import { type AppError, errorCatalog } from '../../errors.ts';

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A plain page for a refusal, with the request id a help desk asks for. A person the app is not for (or who
 * may not see it) gets the way forward: asking its owner, from the console, which answers the same whether
 * the app exists or not.
 */
export function errorPage(error: AppError, requestId: string, askUrl: string | null): string {
  const ask =
    askUrl && (error.code === 'not_found' || error.code === 'forbidden')
      ? `<p>If you need it, <a href="${escapeHtml(askUrl)}">ask its owner for access</a>, saying why.</p>`
      : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(errorCatalog[error.code].title)}</title></head>
<body><h1>${escapeHtml(errorCatalog[error.code].title)}</h1><p>${escapeHtml(error.message)}</p>
${ask}<p><small>If you think this is wrong, send this reference to your platform team: ${escapeHtml(requestId)}</small></p>
</body></html>
`;
}
