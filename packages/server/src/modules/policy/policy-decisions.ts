import type { ApprovalRouting, ReviewSlot } from '../approvals/approval-rules.ts';
import type { RiskEvaluator, RiskFactor } from '../risk/risk-evaluator.ts';
import type { Tier } from '../risk/risk-rules.ts';
import type { PolicyEngine } from './policy-engine.ts';

/** Risk decided by the Rego pack `microapp.risk` (built-in, or as an organization overrides it). */
export function createRegoRiskEvaluator(engine: Pick<PolicyEngine, 'decide'>): RiskEvaluator {
  return {
    async assess(input) {
      const d = await engine.decide<{
        score: number;
        tier: Tier;
        factors: RiskFactor[];
        rulesVersion: string;
      }>('data.microapp.risk.assessment', input);
      if (!d.result)
        throw new Error(
          `policy revision ${d.revision} gave no risk assessment (data.microapp.risk.assessment)`,
        );
      const factors = [...d.result.factors].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return {
        score: d.result.score,
        tier: d.result.tier,
        factors,
        rulesVersion: `${d.result.rulesVersion} (${d.revision})`,
        inputs: input,
        decision: d,
      };
    },
  };
}

/** Review routing decided by the Rego pack `microapp.approval`. */
export function createRegoRouting(engine: Pick<PolicyEngine, 'decide'>): ApprovalRouting {
  return {
    async requiredReviews(tier) {
      const d = await engine.decide<ReviewSlot[]>('data.microapp.approval.reviews', { tier });
      if (!Array.isArray(d.result))
        throw new Error(`policy revision ${d.revision} gave no review routing for tier ${tier}`);
      const version = await engine.decide<string>('data.microapp.approval.rules_version', {});
      return {
        slots: d.result,
        rulesVersion: `${version.result ?? 'microapp.approval'} (${d.revision})`,
        decision: d,
      };
    },
  };
}
