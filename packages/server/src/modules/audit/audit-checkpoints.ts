import {
  createHash,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Kysely } from 'kysely';
import { canonicalJson } from '../../canonical-json.ts';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';

/**
 * Signed checkpoints of the audit chain: its length and head hash at a time, signed with an Ed25519 key
 * derived from the key-encryption key (KEK). The database never holds that key, not even encrypted, so
 * root on the database host can rewrite the chain and recompute every hash, or delete its newest events,
 * but cannot sign a checkpoint that matches: a verifier holding any earlier checkpoint (the platform's own
 * copy, the SIEM's, the file an auditor keeps) sees the chain no longer fits it.
 */
export type Checkpoint = {
  type: 'microapp.audit.checkpoint/v1';
  /** How many events the chain held: the sequence number of its newest event. */
  seq: number;
  /** That event's hash. */
  head: string;
  at: string;
  keyid: string;
  /** Ed25519 over the canonical JSON of the other fields, base64. */
  signature: string;
};

const pkcs8Ed25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The checkpoint key pair, derived from the KEK (HKDF-SHA256), and its id (SHA-256 of the public key). */
export function checkpointKey(kek: Buffer): { privateKey: KeyObject; publicPem: string; keyid: string } {
  const seed = Buffer.from(hkdfSync('sha256', kek, 'microapp', 'audit-checkpoint-ed25519', 32));
  const privateKey = createPrivateKey({
    key: Buffer.concat([pkcs8Ed25519, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return {
    privateKey,
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    keyid: createHash('sha256').update(der).digest('hex'),
  };
}

const signedPart = (c: Omit<Checkpoint, 'signature'>) =>
  Buffer.from(canonicalJson({ type: c.type, seq: c.seq, head: c.head, at: c.at, keyid: c.keyid }));

/** Why a checkpoint is not one this key signed, or null when it is. */
export function checkpointProblem(c: Checkpoint, publicPem: string): string | null {
  if (c?.type !== 'microapp.audit.checkpoint/v1') return 'it is not an audit checkpoint';
  if (!Number.isInteger(c.seq) || c.seq < 0 || !/^[0-9a-f]{64}$/.test(c.head ?? ''))
    return 'its sequence number or head hash is malformed';
  try {
    const ok = verify(null, signedPart(c), publicPem, Buffer.from(c.signature, 'base64'));
    return ok ? null : 'its signature does not verify with the checkpoint key';
  } catch {
    return 'its signature does not verify with the checkpoint key';
  }
}

/**
 * Makes, stores and publishes checkpoints: in the database (for the API and the platform's own verify),
 * and appended to a file outside it (`file`, one JSON line each) that an operator can ship elsewhere.
 */
export function createAuditCheckpoints(deps: {
  db: Kysely<Database>;
  clock: Pick<Clock, 'nowIso'>;
  key: ReturnType<typeof checkpointKey>;
  file?: string | null;
  /** Chains the events still queued, so that a checkpoint covers every change committed before it. */
  sequence?: () => Promise<void>;
}) {
  const { db, key } = deps;

  const fromRow = (row: Database['audit_checkpoints']): Checkpoint => ({
    type: 'microapp.audit.checkpoint/v1',
    seq: Number(row.seq),
    head: row.head,
    at: row.at,
    keyid: row.keyid,
    signature: row.signature,
  });

  /** The newest stored checkpoint that this key signed (a forged row is passed over), or null. */
  async function latest(): Promise<Checkpoint | null> {
    const rows = await db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(20)
      .execute();
    for (const row of rows) {
      const c = fromRow(row);
      if (!checkpointProblem(c, key.publicPem)) return c;
    }
    return null;
  }

  /** A checkpoint of the chain's head now; the stored one when the chain has not moved since. */
  async function make(): Promise<Checkpoint | null> {
    await deps.sequence?.();
    const head = await db
      .selectFrom('audit_events')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!head) return null;
    const previous = await latest();
    if (previous && previous.seq === Number(head.seq) && previous.head === head.hash) return previous;
    const unsigned = {
      type: 'microapp.audit.checkpoint/v1' as const,
      seq: Number(head.seq),
      head: head.hash,
      at: deps.clock.nowIso(),
      keyid: key.keyid,
    };
    const c: Checkpoint = {
      ...unsigned,
      signature: sign(null, signedPart(unsigned), key.privateKey).toString('base64'),
    };
    await db
      .insertInto('audit_checkpoints')
      .values({ seq: c.seq, head: c.head, at: c.at, keyid: c.keyid, signature: c.signature })
      .onConflict((oc) => oc.column('seq').doNothing())
      .execute();
    if (deps.file) {
      mkdirSync(dirname(deps.file), { recursive: true, mode: 0o700 });
      appendFileSync(deps.file, `${JSON.stringify(c)}\n`, { mode: 0o600 });
    }
    return c;
  }

  return { make, latest, publicPem: key.publicPem, keyid: key.keyid };
}

export type AuditCheckpoints = ReturnType<typeof createAuditCheckpoints>;
