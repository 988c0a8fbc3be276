/** What the broker found in a request body, by kind, with masked samples (never the values themselves). */
export type DlpFinding = {
  kind: 'card_number' | 'iban' | 'national_id' | 'email';
  count: number;
  samples: string[];
};

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function ibanValid(iban: string): boolean {
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of moved) {
    const value = /[A-Z]/.test(ch) ? String(ch.charCodeAt(0) - 55) : ch;
    for (const digit of value) rest = (rest * 10 + Number(digit)) % 97;
  }
  return rest === 1;
}

const mask = (value: string) => `${value.slice(0, 2)}…${value.slice(-2)}`;

/**
 * Looks for personal and payment data in text: card numbers (13 to 19 digits, spaces or dashes allowed,
 * Luhn-valid), IBANs (ISO 13616, mod-97 valid), US social security numbers (area, group and serial
 * ranges checked) and e-mail addresses.
 */
export function inspect(text: string): DlpFinding[] {
  const found = new Map<DlpFinding['kind'], string[]>();
  const add = (kind: DlpFinding['kind'], value: string) =>
    found.set(kind, [...(found.get(kind) ?? []), value]);
  for (const m of text.matchAll(/(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])/g)) {
    const digits = m[0].replace(/[ -]/g, '');
    if (digits.length >= 13 && digits.length <= 19 && luhn(digits) && !/^(\d)\1+$/.test(digits))
      add('card_number', digits);
  }
  for (const m of text
    .toUpperCase()
    .matchAll(/\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b/g)) {
    const iban = m[0].replace(/ /g, '');
    if (iban.length >= 15 && iban.length <= 34 && ibanValid(iban)) add('iban', iban);
  }
  for (const m of text.matchAll(/\b(\d{3})-(\d{2})-(\d{4})\b/g)) {
    const [area, group, serial] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0) add('national_id', m[0]);
  }
  for (const m of text.matchAll(/\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}\b/g))
    add('email', m[0]);
  return [...found].map(([kind, values]) => ({
    kind,
    count: values.length,
    samples: values.slice(0, 3).map(mask),
  }));
}

/** Which data class an app must be approved for before each kind may leave it. */
export const dlpClassFor: Record<DlpFinding['kind'], string> = {
  card_number: 'regulated',
  iban: 'financial',
  national_id: 'pii',
  email: 'pii',
};
