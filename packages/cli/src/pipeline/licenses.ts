import parse from 'spdx-expression-parse';
import type { LockPackage } from './sbom.ts';

/** Licenses accepted for every tier; others need a review, and some are refused for high-tier apps. */
export const licensePolicy = {
  allowed: [
    'MIT',
    'MIT-0',
    'Apache-2.0',
    'BSD-2-Clause',
    'BSD-3-Clause',
    'ISC',
    '0BSD',
    'Unlicense',
    'CC0-1.0',
    'BlueOak-1.0.0',
    'Python-2.0',
    'Zlib',
    'CC-BY-4.0',
  ],
  refusedForHigh: [
    'GPL-2.0-only',
    'GPL-2.0-or-later',
    'GPL-3.0-only',
    'GPL-3.0-or-later',
    'AGPL-3.0-only',
    'AGPL-3.0-or-later',
    'SSPL-1.0',
    'BUSL-1.1',
  ],
};

type Node = { license: string; plus?: boolean } | { conjunction: 'and' | 'or'; left: Node; right: Node };

function satisfied(node: Node, ok: (id: string) => boolean): boolean {
  if ('license' in node) return ok(node.license);
  return node.conjunction === 'or'
    ? satisfied(node.left, ok) || satisfied(node.right, ok)
    : satisfied(node.left, ok) && satisfied(node.right, ok);
}

export type LicenseFinding = { package: string; version: string; license: string | null; problem: string };

/** Checks each package's SPDX expression: any OR branch made only of allowed licenses passes. */
export function checkLicenses(
  packages: LockPackage[],
  tier: string,
): { findings: LicenseFinding[]; blocking: LicenseFinding[] } {
  const findings: LicenseFinding[] = [];
  const blocking: LicenseFinding[] = [];
  for (const p of packages) {
    if (p.dev) continue;
    if (!p.license) {
      const f = { package: p.name, version: p.version, license: null, problem: 'no license declared' };
      findings.push(f);
      if (tier === 'high') blocking.push(f);
      continue;
    }
    let tree: Node;
    try {
      tree = parse(p.license) as Node;
    } catch {
      const f = {
        package: p.name,
        version: p.version,
        license: p.license,
        problem: 'not an SPDX expression',
      };
      findings.push(f);
      if (tier === 'high') blocking.push(f);
      continue;
    }
    if (satisfied(tree, (id) => licensePolicy.allowed.includes(id))) continue;
    const refused = tier === 'high' && !satisfied(tree, (id) => !licensePolicy.refusedForHigh.includes(id));
    const f = {
      package: p.name,
      version: p.version,
      license: p.license,
      problem: refused ? 'refused for high-tier apps' : 'not on the allow list: needs review',
    };
    findings.push(f);
    if (refused || tier === 'high') blocking.push(f);
  }
  return { findings, blocking };
}
