import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AppUsageTable } from '../../db/schema.ts';

/**
 * The write-ahead log of usage rows not yet in the database: each row is appended to the current segment
 * file as the request ends (one `write`, no fsync: it survives the process being killed, not the machine
 * losing power), and a segment is deleted once its rows are committed. Rows carry their ids, so a segment
 * written again after a crash between the commit and the delete adds nothing twice.
 */
export type UsageWal = {
  append(row: AppUsageTable): void;
  /** Starts a new segment; returns the finished one's path, to `done` once its rows are committed. */
  rotate(): string;
  done(segment: string): void;
  /** Segments a killed process left behind, oldest first, with their rows. */
  leftovers(): { segment: string; rows: AppUsageTable[] }[];
  close(): void;
};

/** @example const wal = openUsageWal('/var/lib/microapp/usage-wal/replica-a') */
export function openUsageWal(dir: string): UsageWal {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Whatever is here now was left by an earlier process: read before this one writes its own.
  const earlier = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort();
  let seq = 0;
  const name = () =>
    join(
      dir,
      `${Date.now().toString().padStart(15, '0')}-${String(seq++).padStart(6, '0')}-${randomUUID()}.jsonl`,
    );
  let current = name();
  let fd = openSync(current, 'a', 0o600);
  return {
    append(row) {
      writeSync(fd, `${JSON.stringify(row)}\n`);
    },
    rotate() {
      const finished = current;
      closeSync(fd);
      current = name();
      fd = openSync(current, 'a', 0o600);
      return finished;
    },
    done(segment) {
      rmSync(segment, { force: true });
    },
    leftovers() {
      return earlier.map((f) => {
        const segment = join(dir, f);
        const rows: AppUsageTable[] = [];
        // A kill in the middle of a write leaves a torn last line: the rows before it are whole.
        for (const line of readFileSync(segment, 'utf8').split('\n'))
          try {
            if (line) rows.push(JSON.parse(line) as AppUsageTable);
          } catch {}
        return { segment, rows };
      });
    },
    close() {
      closeSync(fd);
      rmSync(current, { force: true });
    },
  };
}
