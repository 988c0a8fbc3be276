import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DatabaseOptions } from '../../db/database.ts';
import { genesisHash } from './audit-chain.ts';
import type { Checkpoint } from './audit-checkpoints.ts';

export type VerifyResult =
  | { ok: true; checked: number; head: string; checkpoint: { seq: number; at: string } | null }
  | { ok: false; checked: number; broken: { seq: number; id: string | null; reason: string } };

type RangeResult = {
  checked: number;
  first: { seq: number; prevHash: string } | null;
  last: { seq: number; hash: string } | null;
  broken: { seq: number; id: string | null; reason: string } | null;
};

// Below this many events one worker checks them all: starting a second costs more than it saves.
const perWorkerAtLeast = 50_000;

function checkRange(
  database: DatabaseOptions,
  from: number,
  to: number,
  checkpoints: Checkpoint[],
): Promise<RangeResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./audit-verify-worker.js', import.meta.url), {
      execArgv: [],
      workerData: {
        database,
        from,
        to,
        checkpoints: checkpoints
          .filter((c) => c.seq >= from && c.seq <= to)
          .map((c) => [c.seq, c.head, c.at]),
      },
    });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the audit verifier stopped with exit code ${code}`));
    });
  });
}

/**
 * Checks the chain from the first event to `newestSeq` (the head when the check began) in worker threads,
 * one range each, read and hashed in parallel and joined here: each range's first event must link to the
 * last of the range before it. Then holds the chain against the newest signed checkpoint, so that
 * truncation shows. The result names the first event that does not fit.
 */
export async function verifyChain(
  database: DatabaseOptions,
  newestSeq: number,
  checkpoints: Checkpoint[],
  options: { workers?: number } = {},
): Promise<VerifyResult> {
  const workers =
    options.workers ??
    Math.max(1, Math.min(availableParallelism(), Math.floor(newestSeq / perWorkerAtLeast)));
  const size = Math.ceil(newestSeq / workers);
  const ranges = Array.from({ length: newestSeq > 0 ? workers : 0 }, (_, i) => ({
    from: i * size + 1,
    to: Math.min(newestSeq, (i + 1) * size),
  }));
  const results = await Promise.all(ranges.map((r) => checkRange(database, r.from, r.to, checkpoints)));

  let previous: { seq: number; hash: string } | null = null;
  let checked = 0;
  for (const [i, r] of results.entries()) {
    const expected = previous ? previous.seq + 1 : 1;
    if (r.first && r.first.seq === expected && r.first.seq === ranges[i]!.from) {
      const link = previous ? previous.hash : genesisHash;
      if (r.first.prevHash !== link)
        return {
          ok: false,
          checked,
          broken: {
            seq: r.first.seq,
            id: null,
            reason: 'prev_hash does not match the hash of the event before it',
          },
        };
    } else if (r.first && r.first.seq !== expected) {
      // The range starts later than the chain goes on: a gap, found where the next event is.
      return {
        ok: false,
        checked,
        broken: {
          seq: r.first.seq,
          id: null,
          reason: `sequence gap: expected ${expected}, found ${r.first.seq}`,
        },
      };
    }
    if (r.broken) return { ok: false, checked: checked + r.checked, broken: r.broken };
    if (!r.first) continue; // an empty range: the next one's first event shows the gap, or the chain ends
    checked += r.checked;
    previous = r.last;
  }
  return chainEnd(checked, previous, checkpoints);
}

/**
 * The verdict on a chain found whole up to `last` (`checked` events): held against the newest signed
 * checkpoint, which a truncated chain is shorter than.
 */
export function chainEnd(
  checked: number,
  last: { hash: string } | null,
  checkpoints: Checkpoint[],
): VerifyResult {
  const newest = checkpoints.reduce<Checkpoint | null>((a, c) => (!a || c.seq > a.seq ? c : a), null);
  if (newest && newest.seq > checked)
    return {
      ok: false,
      checked,
      broken: {
        seq: checked + 1,
        id: null,
        reason: `the chain ends after ${checked} events, but the checkpoint signed at ${newest.at} counted ${newest.seq}: the newest events were deleted`,
      },
    };
  return {
    ok: true,
    checked,
    head: last?.hash ?? genesisHash,
    checkpoint: newest ? { seq: newest.seq, at: newest.at } : null,
  };
}
