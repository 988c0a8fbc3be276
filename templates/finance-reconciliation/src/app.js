// Reconciliation: pair each bank line with a ledger entry of the same amount, within a few days,
// preferring a matching reference. Personal data (IBANs, names) is masked before anything is shown or logged.

/** Parses a CSV with a header row into objects; quoted cells may hold commas and "" quotes. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  const src = text.replace(/\r\n/g, '\n');
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell || row.length) {
    row.push(cell);
    rows.push(row);
  }
  const [header, ...body] = rows.filter((r) => r.some((x) => x.trim() !== ''));
  if (!header) return [];
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h.trim(), (r[i] ?? '').trim()])));
}

/** Masks IBANs (keeps country and last 4) and names; used for every view and log line. */
export function mask(text) {
  return String(text)
    .replace(/\b([A-Z]{2})\d{2}[A-Z0-9 ]{8,30}?(\d{4})\b/g, (_m, cc, last) => `${cc}** **** ${last}`)
    .replace(/\b(name|payer|payee)=([^;,]+)/gi, (_m, k) => `${k}=***`);
}

const cents = (v) => Math.round(Number(String(v).replace(/[^0-9.-]/g, '')) * 100);
const days = (a, b) => Math.abs(Date.parse(a) - Date.parse(b)) / 86_400_000;

/** Matches bank lines to ledger entries; returns matched pairs and what is left on each side. */
export function reconcile(bank, ledger, { toleranceDays = 3 } = {}) {
  const open = ledger.map((e) => ({ ...e, cents: cents(e.amount) }));
  const matched = [];
  const unmatchedBank = [];
  for (const line of bank) {
    const amount = cents(line.amount);
    const candidates = open.filter((e) => e.cents === amount && days(e.date, line.date) <= toleranceDays);
    const best =
      candidates.find((e) => e.reference && String(line.description ?? '').includes(e.reference)) ??
      candidates[0];
    if (best) {
      matched.push({ bank: line, ledger: best });
      open.splice(open.indexOf(best), 1);
    } else unmatchedBank.push(line);
  }
  return { matched, unmatchedBank, unmatchedLedger: open };
}
