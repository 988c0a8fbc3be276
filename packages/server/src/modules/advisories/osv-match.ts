import semver from 'semver';
import { cvss3BaseScore, ratingOf, type Severity } from './cvss.ts';

/** The parts of an OSV record (https://ossf.github.io/osv-schema/) the scanner reads. */
export type OsvRecord = {
  id: string;
  modified?: string;
  withdrawn?: string;
  aliases?: string[];
  summary?: string;
  severity?: { type: string; score: string }[];
  affected?: {
    package?: { ecosystem?: string; name?: string; purl?: string };
    ranges?: { type: string; events: Record<string, string>[] }[];
    versions?: string[];
    database_specific?: { severity?: string };
  }[];
  database_specific?: { severity?: string };
};

const cmp = (a: string, b: string) => semver.compare(a, b, { loose: true });
const valid = (v: string) => semver.valid(v, { loose: true }) !== null;

/**
 * A range event's version as a semver version: itself when valid, else coerced the way OSV's own tooling
 * reads npm versions ("1.0" is 1.0.0, "v2" is 2.0.0), else null (the bound cannot be read).
 */
export function versionOf(v: string): string | null {
  if (valid(v)) return v;
  return semver.coerce(v)?.version ?? null;
}

/** The versions in a record's npm ranges that cannot be read even coerced (import warns about them). */
export function unreadableEvents(record: OsvRecord): string[] {
  const out: string[] = [];
  for (const a of record.affected ?? [])
    if (a.package?.ecosystem === 'npm')
      for (const r of a.ranges ?? [])
        if (r.type === 'SEMVER' || r.type === 'ECOSYSTEM')
          for (const e of r.events)
            for (const [kind, at] of Object.entries(e))
              if (
                !(kind === 'introduced' && at === '0') &&
                !(kind === 'limit' && at === '*') &&
                versionOf(at) === null
              )
                out.push(at);
  return out;
}

/**
 * Whether one SEMVER/ECOSYSTEM range covers a version, as the OSV spec evaluates it: walk the events in
 * version order; `introduced` (0 = from the start) switches on, `fixed` switches off at that version,
 * `last_affected` switches off after it; a `limit` caps the range.
 */
export function rangeAffects(events: Record<string, string>[], version: string): boolean {
  const limits = events
    .map((e) => (e.limit !== undefined && e.limit !== '*' ? versionOf(e.limit) : null))
    .filter((l): l is string => l !== null);
  if (limits.length > 0 && !limits.some((l) => cmp(version, l) < 0)) return false;
  const points = events
    .flatMap((e) => Object.entries(e).filter(([kind]) => kind !== 'limit'))
    .map(([kind, at]) => [kind, at === '0' ? '0' : versionOf(at)] as const)
    .filter((p): p is readonly [string, string] => p[1] !== null)
    .sort(([, x], [, y]) => (x === '0' ? (y === '0' ? 0 : -1) : y === '0' ? 1 : cmp(x, y)));
  let affected = false;
  for (const [kind, at] of points) {
    if (kind === 'introduced' && (at === '0' || cmp(version, at) >= 0)) affected = true;
    else if (kind === 'fixed' && cmp(version, at) >= 0) affected = false;
    else if (kind === 'last_affected' && cmp(version, at) > 0) affected = false;
  }
  return affected;
}

/** The fixed versions a record names for a package, for the finding's "fixed in". */
export function fixedVersions(record: OsvRecord, name: string): string[] {
  const out = new Set<string>();
  for (const a of record.affected ?? [])
    if (a.package?.ecosystem === 'npm' && a.package.name === name)
      for (const r of a.ranges ?? []) for (const e of r.events) if (e.fixed) out.add(e.fixed);
  return [...out].sort((x, y) => (valid(x) && valid(y) ? cmp(x, y) : x < y ? -1 : 1));
}

/** True when the record affects this npm package version (withdrawn records affect nothing). */
export function affects(record: OsvRecord, name: string, version: string): boolean {
  if (record.withdrawn) return false;
  for (const a of record.affected ?? []) {
    if (a.package?.ecosystem !== 'npm' || a.package.name !== name) continue;
    if (a.versions?.includes(version)) return true;
    if (!valid(version)) continue;
    for (const r of a.ranges ?? []) {
      if (r.type !== 'SEMVER' && r.type !== 'ECOSYSTEM') continue;
      if (rangeAffects(r.events, version)) return true;
    }
  }
  return false;
}

const named: Record<string, Severity> = {
  CRITICAL: 'critical',
  HIGH: 'high',
  MODERATE: 'medium',
  MEDIUM: 'medium',
  LOW: 'low',
};

/** The record's severity: its CVSS v3 vector when present, else the database's own rating. */
export function severityOf(record: OsvRecord): { severity: Severity; score: number | null } {
  for (const s of record.severity ?? []) {
    if (s.type === 'CVSS_V3') {
      const score = cvss3BaseScore(s.score);
      if (score !== null) return { severity: ratingOf(score), score };
    }
  }
  const db =
    record.database_specific?.severity ??
    record.affected?.find((a) => a.database_specific?.severity)?.database_specific?.severity;
  return { severity: (db && named[db.toUpperCase()]) || 'unknown', score: null };
}
