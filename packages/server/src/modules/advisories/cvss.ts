/** CVSS v3.x base score from a vector such as `CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`. */
export function cvss3BaseScore(vector: string): number | null {
  const m = /^CVSS:3\.[01]\/(.+)$/.exec(vector.trim());
  if (!m) return null;
  const v: Record<string, string> = {};
  for (const part of m[1]!.split('/')) {
    const [k, val] = part.split(':');
    if (k && val) v[k] = val;
  }
  const av = { N: 0.85, A: 0.62, L: 0.55, P: 0.2 }[v.AV!];
  const ac = { L: 0.77, H: 0.44 }[v.AC!];
  const ui = { N: 0.85, R: 0.62 }[v.UI!];
  const scopeChanged = v.S === 'C';
  const pr = scopeChanged ? { N: 0.85, L: 0.68, H: 0.5 }[v.PR!] : { N: 0.85, L: 0.62, H: 0.27 }[v.PR!];
  const cia = (x: string | undefined) => ({ H: 0.56, L: 0.22, N: 0 })[x ?? ''];
  const c = cia(v.C);
  const i = cia(v.I);
  const a = cia(v.A);
  if ([av, ac, ui, pr, c, i, a].some((x) => x === undefined)) return null;
  const iss = 1 - (1 - c!) * (1 - i!) * (1 - a!);
  const impact = scopeChanged ? 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 : 6.42 * iss;
  const exploitability = 8.22 * av! * ac! * pr! * ui!;
  if (impact <= 0) return 0;
  const raw = scopeChanged
    ? Math.min(1.08 * (impact + exploitability), 10)
    : Math.min(impact + exploitability, 10);
  // CVSS "round up" to one decimal, computed on integers to avoid floating-point surprises.
  const int = Math.round(raw * 100000);
  return int % 10000 === 0 ? int / 100000 : (Math.floor(int / 10000) + 1) / 10;
}

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'unknown';

export function ratingOf(score: number): Severity {
  if (score >= 9) return 'critical';
  if (score >= 7) return 'high';
  if (score >= 4) return 'medium';
  if (score > 0) return 'low';
  return 'unknown';
}
