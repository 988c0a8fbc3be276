import type { DataClass } from '../catalog/manifest-schema.ts';

export const tiers = ['low', 'medium', 'high'] as const;
export type Tier = (typeof tiers)[number];

/**
 * The interim risk rules, as data. The evaluator beside this file reads them; the Rego pack
 * `microapp.risk` replaces both without changing callers. Bump `version` with any change:
 * every assessment stores the version that produced it.
 */
export const riskRules = {
  version: 'microapp-risk-rules/2026-11-28.1',
  /** Score at or above which a tier applies, whatever the factors' own minimum tiers. */
  thresholds: { medium: 25, high: 60 },
  dataClasses: {
    public: { points: 0, minTier: 'low', label: 'public data' },
    internal: { points: 5, minTier: 'low', label: 'internal data' },
    confidential: { points: 20, minTier: 'medium', label: 'confidential business data' },
    pii: { points: 35, minTier: 'high', label: 'personal data (PII)' },
    financial: { points: 30, minTier: 'high', label: 'financial data' },
    health: { points: 40, minTier: 'high', label: 'health data' },
    regulated: { points: 40, minTier: 'high', label: 'regulated data' },
  } satisfies Record<DataClass, { points: number; minTier: Tier; label: string }>,
  egress: { pointsEach: 10, maxPoints: 20, minTier: 'medium' as Tier },
  connectors: { pointsEach: 10, maxPoints: 20, minTier: 'medium' as Tier },
  secrets: { pointsEach: 5, maxPoints: 10, minTier: 'low' as Tier },
  audience: { largeAbove: 100, largePoints: 10, companyWidePoints: 10, minTier: 'medium' as Tier },
  lifetime: { shortDays: 90, longPoints: 10, minTier: 'medium' as Tier },
  /** An app asking for more than this runs on more of the shared machine: someone should look at why. */
  resources: { memoryMbAbove: 512, cpuAbove: 1, points: 10, minTier: 'medium' as Tier },
};

export type RiskRules = typeof riskRules;
