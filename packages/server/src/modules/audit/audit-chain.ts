import { createHash, hash } from 'node:crypto';
import { canonicalJson } from '../../canonical-json.ts';

/** The hash that precedes the first event. */
export const genesisHash = '0'.repeat(64);

/** The fields an event's hash covers: everything but the hash itself. */
export type ChainedEvent = {
  seq: number;
  id: string;
  occurredAt: string;
  actor: string;
  action: string;
  targetType: string;
  target: string;
  reason: string | null;
  requestId: string | null;
  sourceIp: string | null;
  summary: Record<string, unknown>;
  prevHash: string;
};

/** SHA-256 over the RFC 8785 canonical JSON of the event; any edit to any field changes it. */
export function hashEvent(event: ChainedEvent): string {
  return createHash('sha256').update(canonicalJson(event)).digest('hex');
}

/** Why a stored event does not fit the chain, or null when it does. */
export function checkLink(
  event: ChainedEvent & { hash: string },
  previous: { seq: number; hash: string } | null,
): string | null {
  const expectedSeq = previous ? previous.seq + 1 : 1;
  if (event.seq !== expectedSeq) return `sequence gap: expected ${expectedSeq}, found ${event.seq}`;
  const expectedPrev = previous ? previous.hash : genesisHash;
  if (event.prevHash !== expectedPrev) return 'prev_hash does not match the hash of the event before it';
  const { hash, ...content } = event;
  if (hashEvent(content) !== hash) return 'content does not match its hash (the row was edited)';
  return null;
}

const J = JSON.stringify;

/**
 * The same hash as `hashEvent`, for an event whose summary is already canonical JSON text (as the platform
 * stores it): the event's canonical JSON is written out in its keys' RFC 8785 order (code units; strings as
 * JSON.stringify writes them, which is what canonicalize does) instead of canonicalizing an object again.
 * audit.test.ts holds the two equal on awkward values.
 */
export function hashWithCanonicalSummary(event: Omit<ChainedEvent, 'summary'>, summary: string): string {
  return hash(
    'sha256',
    `{"action":${J(event.action)},"actor":${J(event.actor)},"id":${J(event.id)},"occurredAt":${J(event.occurredAt)},"prevHash":${J(event.prevHash)},"reason":${J(event.reason)},"requestId":${J(event.requestId)},"seq":${event.seq},"sourceIp":${J(event.sourceIp)},"summary":${summary},"target":${J(event.target)},"targetType":${J(event.targetType)}}`,
    'hex',
  );
}
