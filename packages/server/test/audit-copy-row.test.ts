import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from '../src/canonical-json.ts';
import { canonicalOf, column, copyColumns } from '../src/modules/audit/audit-copy-row.js';

// The PostgreSQL verifier's fast path writes an event's canonical text from its COPY line's bytes. It must
// give exactly canonicalJson's text when it answers, and refuse (-1) every row whose text takes more than
// copying, so that such a row is read the slow way.

type Event = {
  action: string;
  actor: string;
  id: string;
  occurredAt: string;
  prevHash: string;
  reason: string | null;
  requestId: string | null;
  seq: number;
  sourceIp: string | null;
  summary: Record<string, unknown>;
  target: string;
  targetType: string;
};

const event: Event = {
  action: 'app.registered',
  actor: 'alice@example.com',
  id: 'evt_0123456789abcdefghij',
  occurredAt: '2026-12-06T00:00:00.000Z',
  prevHash: 'a'.repeat(64),
  reason: null,
  requestId: 'req_1',
  seq: 42,
  sourceIp: null,
  summary: { app: 'bank-reconciliation', n: 3, nested: { z: [1, null, true], a: 'ü' } },
  target: 'bank-reconciliation',
  targetType: 'app',
};

/** The COPY text line PostgreSQL writes for the event (`copyColumns`' order), values written as given. */
function copyLine(e: Event, raw: Partial<Record<keyof Event, string>> = {}) {
  const names = copyColumns.split(', ');
  const keyOf: Record<string, keyof Event> = {
    occurred_at: 'occurredAt',
    prev_hash: 'prevHash',
    request_id: 'requestId',
    source_ip: 'sourceIp',
    target_type: 'targetType',
  };
  return names
    .map((n) => {
      if (n === 'hash') return 'f'.repeat(64);
      const key = keyOf[n] ?? (n as keyof Event);
      if (raw[key] !== undefined) return raw[key];
      const v = e[key];
      if (v === null) return '\\N';
      return key === 'summary' ? canonicalJson(v) : String(v);
    })
    .join('\t');
}

function fast(line: string) {
  const bytes = Buffer.from(`${line}\n`, 'utf8');
  const out = Buffer.alloc(2 * bytes.length + 256);
  const at = new Int32Array(26);
  const n = canonicalOf(bytes, 0, bytes.length - 1, out, at);
  const text = (c: number) => bytes.toString('utf8', at[2 * c], at[2 * c + 1]);
  return n < 0
    ? null
    : {
        canonical: out.toString('utf8', 0, n),
        seq: text(column.seq),
        id: text(column.id),
        prevHash: text(column.prevHash),
        hash: text(column.hash),
      };
}

test('values written as they are give canonicalJson text, nulls and all kinds of characters included', () => {
  const cases: Event[] = [
    event,
    { ...event, reason: 'ü€😀 \u2028\u2029 </script> ǅ', requestId: null, sourceIp: '10.0.0.1' },
    { ...event, actor: '', target: "O'Brien & co {braces} [brackets]", seq: 9007199254740991 },
    { ...event, seq: 0, summary: { '': 'an empty key', é: [], 'a:b,c{}': 'punctuation in keys and values' } },
  ];
  for (const e of cases) {
    const got = fast(copyLine(e));
    assert.ok(got, JSON.stringify(e));
    assert.equal(got.canonical, canonicalJson(e));
    assert.equal(got.seq, String(e.seq));
    assert.equal(got.id, e.id);
    assert.equal(got.prevHash, e.prevHash);
    assert.equal(got.hash, 'f'.repeat(64));
  }
});

test('rows whose text takes escaping, or that are not what COPY writes, are left to the slow path', () => {
  const refused: [string, Partial<Record<keyof Event, string>>][] = [
    ['a quote in a value', { actor: 'say "hi"' }],
    ['a backslash COPY escaped', { reason: 'back\\\\slash' }],
    ['a tab COPY escaped', { target: 'tab\\there' }],
    ['a literal \\N that is not NULL (COPY writes \\\\N)', { reason: '\\\\N' }],
    ['a value starting with \\N that is not NULL', { reason: '\\Nope' }],
    ['the last value starting with \\N', { targetType: '\\Nx' }],
    ['a control character COPY leaves as it is', { actor: 'bell\u0007' }],
    ['an escape in the summary', { summary: '{"a":"line\\\\nbreak"}' }],
    ['a sequence number with a leading zero', { seq: '042' }],
    ['a sequence number that is not digits', { seq: '-1' }],
    ['an empty sequence number', { seq: '' }],
  ];
  for (const [what, raw] of refused) assert.equal(fast(copyLine(event, raw)), null, what);
  // A line with a column missing ends early.
  assert.equal(fast(copyLine(event).split('\t').slice(0, 8).join('\t')), null, 'a short line');
});

test('a value edited to the text of its own escaping never passes for the original', () => {
  // The original reason holds a quote; its canonical text writes it \". Stored as those characters instead,
  // the copied text would be the original's: the fast path must refuse it, not write it as it is.
  const original = { ...event, reason: 'say "hi"' };
  const escaped = JSON.stringify(original.reason).slice(1, -1); // say \"hi\"
  const got = fast(copyLine(original, { reason: escaped.replaceAll('\\', '\\\\') }));
  assert.equal(got, null);
});
