import { randomBytes } from 'node:crypto';

/** Kinds of id; the prefix tells a reader what an id names. */
export const idPrefixes = {
  app: 'app',
  assessment: 'ras',
  review: 'rev',
  user: 'usr',
  token: 'tok',
  event: 'evt',
  session: 'ses',
  request: 'req',
  policy: 'pol',
  decision: 'dec',
  snapshot: 'osv',
  exception: 'exc',
  version: 'ver',
  deployment: 'dep',
  usage: 'use',
  notification: 'ntf',
  delivery: 'dlv',
  archive: 'arc',
  lease: 'lse',
  build: 'bld',
  egress: 'egr',
  databaseCredential: 'dbc',
  agentClient: 'agc',
  delegation: 'dlg',
  checkpoint: 'chk',
  agentCall: 'agx',
  change: 'chg',
  changeReview: 'crv',
} as const;

export type IdKind = keyof typeof idPrefixes;

const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';

// Random bytes for ids drawn 4 KB at a time: one call to the system's generator per 200 ids instead of one
// each (every request gets an id).
let pool = Buffer.alloc(0);
let poolAt = 0;
function randomForId(n: number): Buffer {
  if (poolAt + n > pool.length) {
    pool = randomBytes(4096);
    poolAt = 0;
  }
  poolAt += n;
  return pool.subarray(poolAt - n, poolAt);
}

function randomChars(n: number): string {
  let out = '';
  for (const b of randomForId(n)) out += alphabet[b % 36];
  return out;
}

/** A new id such as `app_3k9x…`: the kind's prefix and 20 random base-36 characters (~103 bits). */
export function newId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${randomChars(20)}`;
}

/**
 * A new id for rows written in great numbers (usage, egress calls, audit events, decisions): the same shape
 * as `newId`, but its first 9 characters are the time in milliseconds (base 36), then 11 random ones (~57
 * bits). Rows inserted one after another then land at the end of the id's index instead of at a random
 * page of it: committing 200 usage rows at a time into a table of 200,000 took a quarter of the CPU on
 * SQLite (`bench/usage`).
 * The time in such an id is no secret: those rows carry it anyway.
 */
export function newTimedId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${Date.now().toString(36).padStart(9, '0')}${randomChars(11)}`;
}

/** A random secret in base64url, for tokens, session ids and one-time codes. */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** The current time as a UTC ISO-8601 string, the form every timestamp is stored in. */
export function nowIso(): string {
  return new Date().toISOString();
}
