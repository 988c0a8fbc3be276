/** The platform's sense of time, for everything that acts on schedules (lifecycle, jobs, usage, audit). */
export type Clock = {
  now(): Date;
  nowIso(): string;
};

/** A clock that can be moved forward: tests, and `microapp dev clock advance` on a `--dev` server. */
export type AdjustableClock = Clock & {
  /** Moves the clock forward by `ms` (never backward: schedules already written must stay in the past). */
  advance(ms: number): void;
  offsetMs(): number;
};

/**
 * The wall clock plus an offset that only grows. Credentials (sessions, tokens, one-time codes) keep
 * the wall clock on purpose, so moving this clock never lengthens or shortens a credential's life.
 * @example const clock = adjustableClock(); clock.advance(61 * 86_400_000);
 */
export function adjustableClock(): AdjustableClock {
  let offset = 0;
  const now = () => new Date(Date.now() + offset);
  return {
    now,
    nowIso: () => now().toISOString(),
    advance(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError('the clock only moves forward');
      offset += ms;
    },
    offsetMs: () => offset,
  };
}

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parses a duration such as `61d`, `12h`, `2w` or `1d12h` into milliseconds; null when it is not one.
 * @example parseDuration('61d') // 5270400000
 */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (!/^(\d{1,6}[smhdw])+$/.test(trimmed)) return null;
  let total = 0;
  for (const [, n, unit] of trimmed.matchAll(/(\d+)([smhdw])/g)) total += Number(n) * units[unit!]!;
  return total;
}

export const dayMs = 86_400_000;
