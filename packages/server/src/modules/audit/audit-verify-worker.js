// A worker thread that checks one range of the audit chain (audit-verify.ts starts one per core): it
// opens its own connection, reads the events in order as arrays, and for each checks the sequence number,
// the link to the event before it (within the range) and the hash, and the head of any signed checkpoint
// at that sequence number. Plain JavaScript, so a worker starts without a TypeScript loader.
import { hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import canonicalize from 'canonicalize';
import { canonicalOf, column, copyColumns } from './audit-copy-row.js';

/** @type {{ database: { kind: 'sqlite', file: string } | { kind: 'postgres', url: string, schema?: string }, from: number, to: number, checkpoints: [number, string, string][] }} */
const { database, from, to, checkpoints } = workerData;
const signed = new Map(checkpoints.map(([seq, head, at]) => [seq, { head, at }]));
const columns =
  'seq, id, occurred_at, actor, action, target_type, target, reason, request_id, source_ip, summary, prev_hash, hash';
/**
 * JSON.stringify of a column (a string or null), with the common case quoted directly: a string with no
 * quote, backslash, control character or surrogate is written by JSON.stringify as itself in quotes, and
 * JSON.stringify costs several times the test. Anything else goes through JSON.stringify.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what JSON escapes.
const needsEscaping = /["\\\u0000-\u001f\ud800-\udfff]/;
const J = (v) => (typeof v === 'string' && !needsEscaping.test(v) ? `"${v}"` : JSON.stringify(v));

/**
 * SQLite builds the event's canonical JSON as it reads the row, so that one string crosses into JavaScript
 * instead of thirteen: its json_quote quotes strings as RFC 8785 (and JSON.stringify) do. Where the two
 * ever differ, the hash does not match, and the row is read again and built here (`contentMatches`), so
 * the verdict never rests on the database's quoting.
 */
const q = (column) => `json_quote(${column})`;
const canonicalInSql = `'{"action":' || ${q('action')} || ',"actor":' || ${q('actor')} || ',"id":' || ${q('id')} || ',"occurredAt":' || ${q('occurred_at')} || ',"prevHash":' || ${q('prev_hash')} || ',"reason":' || ${q('reason')} || ',"requestId":' || ${q('request_id')} || ',"seq":' || seq || ',"sourceIp":' || ${q('source_ip')} || ',"summary":' || summary || ',"target":' || ${q('target')} || ',"targetType":' || ${q('target_type')} || '}'`;
const fast = `seq, ${canonicalInSql} as canonical, prev_hash, hash, id`;

/**
 * The event's canonical JSON (RFC 8785: keys in code-unit order, JSON.stringify's strings), with the summary
 * as the given text. The platform stores summaries canonical, so the stored text is used as it is; a summary
 * stored otherwise (by an older release) is parsed and canonicalized when the first try does not match.
 */
const canonical = (r, summary) =>
  `{"action":${J(r[4])},"actor":${J(r[3])},"id":${J(r[1])},"occurredAt":${J(r[2])},"prevHash":${J(r[11])},"reason":${J(r[7])},"requestId":${J(r[8])},"seq":${Number(r[0])},"sourceIp":${J(r[9])},"summary":${summary},"target":${J(r[6])},"targetType":${J(r[5])}}`;
// One call, no Hash object per event (Node 20.12 and later).
const sha256 = (text) => hash('sha256', text, 'hex');

function contentMatches(r) {
  if (sha256(canonical(r, r[10])) === r[12]) return true;
  let summary;
  try {
    summary = canonicalize(JSON.parse(r[10]));
  } catch {
    return false;
  }
  return summary !== undefined && sha256(canonical(r, summary)) === r[12];
}

/** A COPY text field: `\\N` is NULL; the escapes COPY writes (`\\t`, `\\n`, `\\\\`…) undone. */
const escapes = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
const field = (f) =>
  f === '\\N' ? null : f.includes('\\') ? f.replace(/\\(.)/g, (_, c) => escapes[c] ?? c) : f;

/**
 * A COPY line of `copyColumns` as the columns of `columns`, each read as COPY wrote it (`field`), for
 * `canonical` and `contentMatches`.
 */
function columnsOf(line) {
  const f = line.split('\t').map(field);
  return [f[7], f[2], f[3], f[1], f[0], f[11], f[10], f[5], f[6], f[8], f[9], f[4], f[12]];
}

const result = { checked: 0, first: null, last: null, broken: null };

/**
 * Checks one event: its sequence number, its link to the event before it, its content (`contentMatches`,
 * asked only once the rest holds) and any signed checkpoint at it. False once the range is broken.
 */
function check(seq, prevHash, hash, contentMatches, idOf) {
  const expected = result.last ? result.last.seq + 1 : from;
  let reason = null;
  if (seq !== expected) reason = `sequence gap: expected ${expected}, found ${seq}`;
  else if (result.last && prevHash !== result.last.hash)
    reason = 'prev_hash does not match the hash of the event before it';
  else if (!contentMatches()) reason = 'content does not match its hash (the row was edited)';
  else {
    const c = signed.get(seq);
    if (c && c.head !== hash)
      reason = `the chain does not match the checkpoint signed at ${c.at}: events up to here were rewritten and their hashes recomputed`;
  }
  if (!result.first) result.first = { seq, prevHash };
  if (reason) {
    result.broken = { seq, id: idOf(), reason };
    return false;
  }
  result.last = { seq, hash };
  result.checked++;
  return true;
}

// Each worker loads only its own database's driver.
if (database.kind === 'sqlite') {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(database.file, { readonly: true, fileMustExist: true });
  try {
    const one = db.prepare(`select ${columns} from audit_events where seq = ?`).raw(true);
    const whole = (seq) => one.get(seq);
    const rows = db
      .prepare(`select ${fast} from audit_events where seq >= ? and seq <= ? order by seq`)
      .raw(true)
      .iterate(from, to);
    // r: [seq, canonical, prev_hash, hash, id]
    for (const r of rows) {
      const seq = Number(r[0]);
      const matches = () => sha256(r[1]) === r[3] || contentMatches(whole(seq));
      if (!check(seq, r[2], r[3], matches, () => r[4])) break;
    }
  } finally {
    db.close();
  }
} else {
  const [{ default: pg }, { to: copyTo }] = await Promise.all([import('pg'), import('pg-copy-streams')]);
  const client = new pg.Client({
    connectionString: database.url,
    ...(database.schema ? { options: `-c search_path="${database.schema.replaceAll('"', '""')}"` } : {}),
  });
  await client.connect();
  try {
    // The range's rows stream as COPY text (a row a line, columns by tabs): less for PostgreSQL to send
    // and for this thread to read than a protocol message a row. The database sends the columns; the
    // canonical text is built and hashed here, never by the database: from the line's bytes where every
    // value goes in as it is (audit-copy-row.js), otherwise from its columns read as strings.
    const rows = client.query(
      copyTo(
        `COPY (select ${copyColumns} from audit_events where seq >= ${Number(from)} and seq <= ${Number(to)} order by seq) TO STDOUT`,
      ),
    );
    let out = Buffer.allocUnsafe(1 << 16);
    const at = new Int32Array(26);
    let rest = null;
    let going = true;
    const lineOf = (bytes, s, e) => bytes.toString('utf8', s, e);
    for await (const chunk of rows) {
      const bytes = rest ? Buffer.concat([rest, chunk]) : chunk;
      // A line ends at a newline byte: one never occurs inside a UTF-8 character, and COPY escapes those
      // in the data.
      const end = bytes.lastIndexOf(10);
      if (end < 0) {
        rest = bytes;
        continue;
      }
      rest = end + 1 < bytes.length ? bytes.subarray(end + 1) : null;
      for (let s = 0; s <= end && going; ) {
        const e = bytes.indexOf(10, s);
        if (out.length < 2 * (e - s) + 256) out = Buffer.allocUnsafe(2 * (e - s) + 256);
        const n = canonicalOf(bytes, s, e, out, at);
        if (n >= 0) {
          const text = (c) => bytes.toString('latin1', at[2 * c], at[2 * c + 1]);
          const hashed = text(column.hash);
          going = check(
            Number(text(column.seq)),
            text(column.prevHash),
            hashed,
            () => sha256(out.subarray(0, n)) === hashed || contentMatches(columnsOf(lineOf(bytes, s, e))),
            () => lineOf(bytes, at[2 * column.id], at[2 * column.id + 1]),
          );
        } else {
          const r = columnsOf(lineOf(bytes, s, e));
          going = check(
            Number(r[0]),
            r[11],
            r[12],
            () => contentMatches(r),
            () => r[1],
          );
        }
        s = e + 1;
      }
      if (!going) break;
    }
    // Stopped at a broken row: the rest of the range is not read, and the connection is not reused.
    if (!going) rows.destroy();
  } finally {
    await client.end().catch(() => {});
  }
}

parentPort.postMessage(result);
