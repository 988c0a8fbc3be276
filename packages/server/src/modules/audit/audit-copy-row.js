// The PostgreSQL verifier's fast path: an audit event's canonical text written straight from the bytes of
// its COPY line, without making a JavaScript string of each column. Plain JavaScript, loaded by the
// verifier's worker threads (audit-verify-worker.js).

/** The columns as COPY sends them: the canonical text's keys in order, then the stored hash. */
export const copyColumns =
  'action, actor, id, occurred_at, prev_hash, reason, request_id, seq, source_ip, summary, target, target_type, hash';

/** Where each column is in a row of `copyColumns`. */
export const column = { id: 2, prevHash: 4, seq: 7, summary: 9, hash: 12 };

const keys = [
  '{"action":',
  ',"actor":',
  ',"id":',
  ',"occurredAt":',
  ',"prevHash":',
  ',"reason":',
  ',"requestId":',
  ',"seq":',
  ',"sourceIp":',
  ',"summary":',
  ',"target":',
  ',"targetType":',
].map((k) => Buffer.from(k, 'latin1'));
const nullText = Buffer.from('null', 'latin1');
const TAB = 9;
const QUOTE = 34;
const BACKSLASH = 92;

/**
 * Writes the canonical text (RFC 8785, as audit-chain.ts hashes it) of the event on the COPY line
 * `b[start, end)` into `out` and returns its length; `at` receives where each column starts and ends
 * (`at[2k]`, `at[2k + 1]`). Returns -1 for a row whose text takes more than copying bytes: a value with a
 * quote, a backslash (COPY's escapes, other than a whole-column NULL `\N`) or a control character, all of
 * which JSON escapes, or a sequence number that is not plain digits. Such a row is read again the slow way.
 *
 * Copying is exact only for values JSON writes as they are: with a quote or backslash let through, a column
 * edited to hold its own escaped text would produce the original's canonical text and pass. Bytes of 0x80
 * and above are copied: PostgreSQL's text is valid UTF-8, and JSON.stringify leaves every well-formed
 * character as it is. `out` must hold `2 * (end - start) + 256` bytes.
 */
export function canonicalOf(b, start, end, out, at) {
  let o = 0;
  let i = start;
  for (let col = 0; col < 12; col++) {
    const key = keys[col];
    for (let k = 0; k < key.length; k++) out[o++] = key[k];
    at[2 * col] = i;
    if (col === column.summary) {
      // The stored summary is canonical JSON already and goes in as it is, unless COPY escaped part of it.
      for (;;) {
        if (i >= end) return -1;
        const c = b[i];
        if (c === TAB) break;
        if (c === BACKSLASH) return -1;
        out[o++] = c;
        i++;
      }
    } else if (col === column.seq) {
      const first = i;
      for (;;) {
        if (i >= end) return -1;
        const c = b[i];
        if (c === TAB) break;
        if (c < 48 || c > 57) return -1;
        out[o++] = c;
        i++;
      }
      // Number() would drop a leading zero; PostgreSQL never writes one, so a row that has one is not read fast.
      if (i === first || (b[first] === 48 && i - first > 1)) return -1;
    } else if (b[i] === BACKSLASH && b[i + 1] === 78 && (i + 2 === end || b[i + 2] === TAB)) {
      for (let k = 0; k < 4; k++) out[o++] = nullText[k];
      i += 2;
      if (i >= end) return -1;
    } else {
      out[o++] = QUOTE;
      for (;;) {
        if (i >= end) return -1;
        const c = b[i];
        if (c === TAB) break;
        if (c < 32 || c === QUOTE || c === BACKSLASH) return -1;
        out[o++] = c;
        i++;
      }
      out[o++] = QUOTE;
    }
    at[2 * col + 1] = i;
    i++; // the tab
  }
  // The last column is the stored hash.
  at[2 * column.hash] = i;
  at[2 * column.hash + 1] = end;
  out[o++] = 125; // }
  return o;
}
