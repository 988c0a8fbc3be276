import type { Manifest } from '../catalog/manifest-schema.ts';
import { defaultLimits } from '../runtime/cgroups.ts';
import { type RiskRules, riskRules, type Tier, tiers } from './risk-rules.ts';

/** One reason the score went up, with its points and the lowest tier it forces. */
export type RiskFactor = { id: string; points: number; minTier: Tier; explanation: string };

/** The outcome of scoring one manifest: stored with the inputs and the rules' version. */
export type RiskAssessment = {
  score: number;
  tier: Tier;
  factors: RiskFactor[];
  rulesVersion: string;
  inputs: RiskInput;
};

/** What the rules look at; the manifest's other fields do not change the risk. */
export type RiskInput = {
  dataClasses: string[];
  egress: string[];
  connectors: string[];
  secrets: string[];
  /** `people` only when the app names some (so earlier assessments compare equal). */
  audience: { department: string | null; maxUsers: number | null; people?: string[] };
  lifetimeDays: number;
  /** What the app asks to run with (absent in assessments made before it counted). */
  resources?: { memoryMb: number; cpu: number };
};

/** A policy decision that produced a result, for the decision log. */
export type DecisionRecord = {
  entrypoint: string;
  revision: string;
  inputDigest: string;
  result: unknown;
  durationMs: number;
};

/** Decides risk for a manifest: the interim rules below, or the Rego pack `microapp.risk`. */
export type RiskEvaluator = {
  assess(input: RiskInput): Promise<RiskAssessment & { decision?: DecisionRecord }>;
};

export const tierRank = (t: Tier) => tiers.indexOf(t);
const maxTier = (a: Tier, b: Tier) => (tierRank(a) >= tierRank(b) ? a : b);

/** The risk-relevant part of a manifest; an app without an expiry gets the platform default of 90 days. */
export function riskInputOf(manifest: Manifest, today = new Date()): RiskInput {
  const expires = manifest.lifetime?.expires ? Date.parse(`${manifest.lifetime.expires}T00:00:00Z`) : null;
  const lifetimeDays = expires === null ? 90 : Math.ceil((expires - today.getTime()) / 86_400_000);
  return {
    dataClasses: [...manifest.dataClasses].sort(),
    egress: [...(manifest.integrations?.egress ?? [])].sort(),
    connectors: [...(manifest.integrations?.connectors ?? [])].sort(),
    secrets: [...(manifest.secrets ?? [])].sort(),
    audience: {
      department: manifest.audience?.department ?? null,
      maxUsers: manifest.audience?.maxUsers ?? null,
      ...(manifest.audience?.people?.length
        ? { people: manifest.audience.people.map((p) => p.toLowerCase()).sort() }
        : {}),
    },
    lifetimeDays,
    resources: {
      memoryMb: manifest.runtime?.memoryMb ?? defaultLimits.memoryMb,
      cpu: manifest.runtime?.cpu ?? defaultLimits.cpu,
    },
  };
}

function capped(count: number, each: number, max: number) {
  return Math.min(count * each, max);
}

/** The rules-as-data evaluator: sums factor points, caps at 100, and takes the highest tier any factor forces. */
export function createRuleEvaluator(rules: RiskRules = riskRules): RiskEvaluator {
  return {
    async assess(input) {
      const factors: RiskFactor[] = [];
      for (const dc of input.dataClasses) {
        const rule = rules.dataClasses[dc as keyof RiskRules['dataClasses']];
        if (!rule) continue;
        factors.push({
          id: `data-class:${dc}`,
          points: rule.points,
          minTier: rule.minTier as Tier,
          explanation: `handles ${rule.label}`,
        });
      }
      const list = (
        id: string,
        items: string[],
        rule: { pointsEach: number; maxPoints: number; minTier: Tier },
        what: string,
      ) => {
        if (items.length === 0) return;
        factors.push({
          id,
          points: capped(items.length, rule.pointsEach, rule.maxPoints),
          minTier: rule.minTier,
          explanation: `${what}: ${items.join(', ')}`,
        });
      };
      list('egress', input.egress, rules.egress, 'calls external hosts');
      list('connectors', input.connectors, rules.connectors, 'uses connectors to other systems');
      list('secrets', input.secrets, rules.secrets, 'needs secrets');
      const { maxUsers, department } = input.audience;
      if (maxUsers !== null && maxUsers > rules.audience.largeAbove)
        factors.push({
          id: 'audience:large',
          points: rules.audience.largePoints,
          minTier: rules.audience.minTier,
          explanation: `audience of up to ${maxUsers} users (more than ${rules.audience.largeAbove})`,
        });
      if (department === null && maxUsers !== null && maxUsers > rules.audience.largeAbove)
        factors.push({
          id: 'audience:company-wide',
          points: rules.audience.companyWidePoints,
          minTier: rules.audience.minTier,
          explanation: 'open to the whole company rather than one department',
        });
      if (input.lifetimeDays > rules.lifetime.shortDays)
        factors.push({
          id: 'lifetime:long',
          points: rules.lifetime.longPoints,
          minTier: rules.lifetime.minTier,
          explanation: `expected to live ${input.lifetimeDays} days (more than ${rules.lifetime.shortDays})`,
        });
      const r = input.resources;
      if (r && (r.memoryMb > rules.resources.memoryMbAbove || r.cpu > rules.resources.cpuAbove))
        factors.push({
          id: 'resources:large',
          points: rules.resources.points,
          minTier: rules.resources.minTier,
          explanation: `asks for ${r.memoryMb} MB of memory and ${r.cpu} CPU (more than ${rules.resources.memoryMbAbove} MB or ${rules.resources.cpuAbove} CPU)`,
        });
      const score = Math.min(
        100,
        factors.reduce((sum, f) => sum + f.points, 0),
      );
      let tier: Tier =
        score >= rules.thresholds.high ? 'high' : score >= rules.thresholds.medium ? 'medium' : 'low';
      for (const f of factors) tier = maxTier(tier, f.minTier);
      factors.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return { score, tier, factors, rulesVersion: rules.version, inputs: input };
    },
  };
}
