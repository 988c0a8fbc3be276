import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Manifest } from '../src/modules/catalog/manifest-schema.ts';
import { createRuleEvaluator, riskInputOf } from '../src/modules/risk/risk-evaluator.ts';
import { riskRules } from '../src/modules/risk/risk-rules.ts';

const base: Manifest = {
  name: 'x',
  owner: 'a@example.com',
  purpose: 'a purpose here',
  dataClasses: ['internal'],
};
const today = new Date('2026-11-28T00:00:00Z');
const assess = (m: Partial<Manifest>) => createRuleEvaluator().assess(riskInputOf({ ...base, ...m }, today));

describe('interim risk rules', () => {
  test('internal, no PII, short-lived is low', async () => {
    const r = await assess({});
    assert.equal(r.tier, 'low');
    assert.equal(r.score, 5);
    assert.equal(r.rulesVersion, riskRules.version);
    assert.equal(r.inputs.lifetimeDays, 90, 'no expiry means the platform default of 90 days');
  });

  test('business data or external integrations are at least medium', async () => {
    assert.equal((await assess({ dataClasses: ['confidential'] })).tier, 'medium');
    assert.equal((await assess({ integrations: { egress: ['api.example.com'] } })).tier, 'medium');
    assert.equal((await assess({ integrations: { connectors: ['crm'] } })).tier, 'medium');
    assert.equal((await assess({ lifetime: { expires: '2027-12-31' } })).tier, 'medium');
  });

  for (const dc of ['pii', 'financial', 'health', 'regulated'] as const) {
    test(`${dc} data is high, with a factor that says so`, async () => {
      const r = await assess({ dataClasses: ['internal', dc] });
      assert.equal(r.tier, 'high');
      const f = r.factors.find((x) => x.id === `data-class:${dc}`);
      assert.ok(f && f.points > 0 && f.minTier === 'high');
    });
  }

  test('the score is the sum of the factors, capped at 100', async () => {
    const r = await assess({
      dataClasses: ['pii', 'financial', 'health', 'regulated'],
      integrations: { egress: ['a.example.com', 'b.example.com', 'c.example.com'] },
    });
    assert.equal(r.score, 100);
    const small = await assess({ secrets: ['A', 'B', 'C'] });
    assert.equal(
      small.score,
      small.factors.reduce((s, f) => s + f.points, 0),
    );
    assert.equal(small.factors.find((f) => f.id === 'secrets')?.points, riskRules.secrets.maxPoints);
  });
});
