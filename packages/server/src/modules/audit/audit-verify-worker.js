// A worker thread that checks one range of the audit chain (audit-verify.ts starts one per core): it
// opens its own connection, reads the events in order as arrays, and for each checks the sequence number,
// the link to the event before it (within the range) and the hash, and the head of any signed checkpoint
// at that sequence number. Plain JavaScript, so a worker starts without a TypeScript loader.
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import canonicalize from 'canonicalize';
import pg from 'pg';

/** @type {{ database: { kind: 'sqlite', file: string } | { kind: 'postgres', url: string, schema?: string }, from: number, to: number, checkpoints: [number, string, string][] }} */
const { database, from, to, checkpoints } = workerData;
const signed = new Map(checkpoints.map(([seq, head, at]) => [seq, { head, at }]));
const columns =
  'seq, id, occurred_at, actor, action, target_type, target, reason, request_id, source_ip, summary, prev_hash, hash';
const J = JSON.stringify;

/**
 * The event's canonical JSON (RFC 8785: keys in code-unit order, JSON.stringify's strings), with the summary
 * as the given text. The platform stores summaries canonical, so the stored text is used as it is; a summary
 * stored otherwise (by an older release) is parsed and canonicalized when the first try does not match.
 */
const canonical = (r, summary) =>
  `{"action":${J(r[4])},"actor":${J(r[3])},"id":${J(r[1])},"occurredAt":${J(r[2])},"prevHash":${J(r[11])},"reason":${J(r[7])},"requestId":${J(r[8])},"seq":${Number(r[0])},"sourceIp":${J(r[9])},"summary":${summary},"target":${J(r[6])},"targetType":${J(r[5])}}`;
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

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

const result = { checked: 0, first: null, last: null, broken: null };

/** Checks one row; false once the range is broken. */
function check(r) {
  const seq = Number(r[0]);
  const expected = result.last ? result.last.seq + 1 : from;
  let reason = null;
  if (seq !== expected) reason = `sequence gap: expected ${expected}, found ${seq}`;
  else if (result.last && r[11] !== result.last.hash)
    reason = 'prev_hash does not match the hash of the event before it';
  else if (!contentMatches(r)) reason = 'content does not match its hash (the row was edited)';
  else {
    const c = signed.get(seq);
    if (c && c.head !== r[12])
      reason = `the chain does not match the checkpoint signed at ${c.at}: events up to here were rewritten and their hashes recomputed`;
  }
  if (!result.first) result.first = { seq, prevHash: r[11] };
  if (reason) {
    result.broken = { seq, id: r[1], reason };
    return false;
  }
  result.last = { seq, hash: r[12] };
  result.checked++;
  return true;
}

if (database.kind === 'sqlite') {
  const db = new Database(database.file, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare(`select ${columns} from audit_events where seq >= ? and seq <= ? order by seq`)
      .raw(true)
      .iterate(from, to);
    for (const r of rows) if (!check(r)) break;
  } finally {
    db.close();
  }
} else {
  const client = new pg.Client({
    connectionString: database.url,
    ...(database.schema ? { options: `-c search_path="${database.schema.replaceAll('"', '""')}"` } : {}),
  });
  await client.connect();
  try {
    let after = from - 1;
    for (;;) {
      const page = await client.query({
        text: `select ${columns} from audit_events where seq > $1 and seq <= $2 order by seq limit 20000`,
        values: [after, to],
        rowMode: 'array',
      });
      if (page.rows.length === 0) break;
      let going = true;
      for (const r of page.rows) if (!(going = check(r))) break;
      if (!going) break;
      after = Number(page.rows.at(-1)[0]);
    }
  } finally {
    await client.end();
  }
}

parentPort.postMessage(result);
