import { dayMs } from '../../clock.ts';
import type { Tier } from '../risk/risk-rules.ts';

export const stages = ['active', 'warned', 'stopped', 'escalated', 'decommissioned'] as const;
export type Stage = (typeof stages)[number];

/** The lifecycle schedule; every figure is configurable (docs/operations.md). */
export type LifecycleSettings = {
  /** Days without use after which the owner is warned. */
  idleDays: number;
  /** Days after the warning, without an answer, after which the app is stopped. */
  stopAfterDays: number;
  /** Days after the warning after which the owner's manager is told. */
  escalateAfterDays: number;
  /** Days after the escalation after which the app is decommissioned. */
  graceDays: number;
  /** Days a decommissioned app's encrypted data is kept (and `microapp restore` works). */
  archiveRetentionDays: number;
  /** Longest lifetime by tier before the owner must renew. */
  maxLifetimeDays: Record<Tier, number>;
  /** Notices before expiry, in days. */
  expiryNoticeDays: number[];
};

export const defaultLifecycleSettings: LifecycleSettings = {
  idleDays: 60,
  stopAfterDays: 14,
  escalateAfterDays: 30,
  graceDays: 30,
  archiveRetentionDays: 365,
  maxLifetimeDays: { low: 90, medium: 180, high: 365 },
  expiryNoticeDays: [30, 7, 1],
};

/** What the job knows about one app. */
export type LifecycleFacts = {
  approved: boolean;
  stage: Stage;
  reason: string | null;
  stageAt: string;
  nextStepAt: string | null;
  activeSince: string;
  lastUsedAt: string | null;
  exempt: boolean;
  expiresAt: string;
  noticesSent: number[];
};

/** The one thing to do next for an app; the job applies it, then asks again. */
export type Step =
  | { kind: 'none' }
  | { kind: 'resume' }
  | { kind: 'expiry_notice'; days: number; covers: number[]; expiresAt: string }
  | { kind: 'expire'; escalateAt: string }
  | { kind: 'warn'; idleDays: number; stopAt: string }
  | { kind: 'stop'; escalateAt: string }
  | { kind: 'escalate'; decommissionAt: string }
  | { kind: 'decommission'; purgeAt: string }
  | { kind: 'purge' };

const plusDays = (at: number, days: number) => new Date(at + days * dayMs).toISOString();

/** When an app stops being allowed to run: its manifest's date or the tier's longest lifetime, whichever is first. */
export function expiryOf(
  app: { createdAt: string; tier: Tier; manifestExpires: string | null; renewedAt: string | null },
  s: Pick<LifecycleSettings, 'maxLifetimeDays'>,
): string {
  const base = Date.parse(app.renewedAt ?? app.createdAt);
  const cap = plusDays(base, s.maxLifetimeDays[app.tier]);
  // A renewal re-confirms the purpose for a new full term; the manifest's date bounds the first term only.
  if (app.renewedAt || !app.manifestExpires) return cap;
  const manifestEnd = new Date(`${app.manifestExpires.slice(0, 10)}T23:59:59.999Z`).toISOString();
  // ISO-8601 UTC strings of one length compare as the times they name.
  return [manifestEnd, cap].sort()[0]!;
}

/**
 * The next step of an app's lifecycle at `now`. Inactivity is judged by use (the gateway's records),
 * never by changes to the app: an app edited daily that nobody opens is idle.
 */
export function nextStep(f: LifecycleFacts, now: Date, s: LifecycleSettings): Step {
  const t = now.getTime();
  const due = f.nextStepAt !== null && t >= Date.parse(f.nextStepAt);
  if (f.stage === 'decommissioned') return due ? { kind: 'purge' } : { kind: 'none' };
  if (!f.approved) return { kind: 'none' };
  const lastActive = Math.max(Date.parse(f.activeSince), f.lastUsedAt ? Date.parse(f.lastUsedAt) : 0);
  if (f.stage === 'warned' && f.reason === 'inactive' && lastActive > Date.parse(f.stageAt))
    return { kind: 'resume' };
  if (f.stage === 'active' || f.stage === 'warned') {
    const expires = Date.parse(f.expiresAt);
    if (t >= expires)
      return { kind: 'expire', escalateAt: plusDays(t, s.escalateAfterDays - s.stopAfterDays) };
    const open = s.expiryNoticeDays.filter((d) => t >= expires - d * dayMs && !f.noticesSent.includes(d));
    if (open.length) {
      // Several notices fall due at once only when the job was late: send the nearest, count the rest.
      const days = Math.min(...open);
      return {
        kind: 'expiry_notice',
        days,
        covers: s.expiryNoticeDays.filter((d) => d >= days),
        expiresAt: f.expiresAt,
      };
    }
  }
  if (f.stage === 'active') {
    if (f.exempt) return { kind: 'none' };
    const idle = t - lastActive;
    if (idle >= s.idleDays * dayMs)
      return { kind: 'warn', idleDays: Math.floor(idle / dayMs), stopAt: plusDays(t, s.stopAfterDays) };
    return { kind: 'none' };
  }
  if (!due) return { kind: 'none' };
  if (f.stage === 'warned')
    return { kind: 'stop', escalateAt: plusDays(t, s.escalateAfterDays - s.stopAfterDays) };
  if (f.stage === 'stopped') return { kind: 'escalate', decommissionAt: plusDays(t, s.graceDays) };
  return { kind: 'decommission', purgeAt: plusDays(t, s.archiveRetentionDays) };
}
