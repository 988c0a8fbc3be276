// Decisions per second of the Rego engine, prepared once, on one core, side by side with
// @cedar-policy/cedar-wasm's statefulIsAuthorized on the equivalent ABAC policy.
//   npx tsx bench/rego/run.ts [--seconds 2]
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { compile } from '../../packages/rego/src/index.ts';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 2);

function measure(name: string, fn: (i: number) => unknown): number {
  for (let i = 0; i < 2000; i++) fn(i); // warm up
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let j = 0; j < 200; j++) fn(n++);
    elapsed = process.hrtime.bigint() - start;
  }
  const perSec = n / (Number(elapsed) / 1e9);
  console.log(
    `${name.padEnd(52)} ${Math.round(perSec).toLocaleString('en-US').padStart(12)} decisions/s  ${(1e6 / perSec).toFixed(2).padStart(8)} µs/decision`,
  );
  return perSec;
}

// (a) The seed policy, exactly as written.
const seed = compile([
  {
    file: 'network.rego',
    source: `package microapp.network

blacklisted_domains = {"suspicious.example.com", "unsafe.example.org"}

deny[msg] {
  input.request.method == "deploy"
  host := input.request.host
  blacklisted_domains[host]
  msg = sprintf("deployment denied: host %v is blacklisted", [host])
}
`,
  },
]);
const hosts = [
  'suspicious.example.com',
  'api.bank.example.com',
  'unsafe.example.org',
  'ledger.internal.example.com',
];
const seedInputs = hosts.map((host) => ({ request: { method: 'deploy', host } }));

// (b) ABAC: department, data class, tier; the same rules in Rego and in Cedar.
const abacRego = compile([
  {
    file: 'abac.rego',
    source: `package bench.abac

import rego.v1

default allow := false

allow if {
	permit
	not forbid
}

permit if {
	input.user.department == input.app.department
	input.app.tier != "high"
}

permit if {
	input.user.department == input.app.department
	input.app.tier == "high"
	not "pii" in input.app.dataClasses
}

permit if "admin" in input.user.roles

forbid if {
	"regulated" in input.app.dataClasses
	not "compliance" in input.user.roles
}
`,
  },
]);
const cedarPolicies = `
permit(principal, action == Action::"use", resource) when { principal.department == resource.department && resource.tier != "high" };
permit(principal, action == Action::"use", resource) when { principal.department == resource.department && resource.tier == "high" && !resource.dataClasses.contains("pii") };
permit(principal, action == Action::"use", resource) when { principal.roles.contains("admin") };
forbid(principal, action, resource) when { resource.dataClasses.contains("regulated") && !principal.roles.contains("compliance") };
`;
const parsed = cedar.preparsePolicySet('abac', { staticPolicies: cedarPolicies });
if (parsed.type !== 'success') throw new Error(`cedar: ${JSON.stringify(parsed)}`);

const users = [
  { id: 'alice', department: 'finance', roles: ['creator'] },
  { id: 'frank', department: 'marketing', roles: ['creator'] },
  { id: 'carol', department: 'platform', roles: ['admin'] },
  { id: 'erin', department: 'finance', roles: ['compliance'] },
];
const apps = [
  { id: 'recon', department: 'finance', tier: 'high', dataClasses: ['financial', 'pii'] },
  { id: 'poll', department: 'finance', tier: 'low', dataClasses: ['internal'] },
  { id: 'kyc', department: 'finance', tier: 'high', dataClasses: ['regulated'] },
  { id: 'ads', department: 'marketing', tier: 'medium', dataClasses: ['confidential'] },
];
const abacInputs = users.flatMap((user) => apps.map((app) => ({ user, app })));
const cedarCalls: cedar.StatefulAuthorizationCall[] = abacInputs.map(({ user, app }) => ({
  principal: { type: 'User', id: user.id },
  action: { type: 'Action', id: 'use' },
  resource: { type: 'App', id: app.id },
  context: {},
  preparsedPolicySetId: 'abac',
  entities: [
    {
      uid: { type: 'User', id: user.id },
      attrs: { department: user.department, roles: user.roles },
      parents: [],
    },
    {
      uid: { type: 'App', id: app.id },
      attrs: { department: app.department, tier: app.tier, dataClasses: app.dataClasses },
      parents: [],
    },
  ] as cedar.Entities,
}));

// The two engines must agree before their speeds are compared.
for (let i = 0; i < abacInputs.length; i++) {
  const r = abacRego.evaluate('data.bench.abac.allow', { input: abacInputs[i] });
  const c = cedar.statefulIsAuthorized(cedarCalls[i]!);
  if (c.type !== 'success') throw new Error(JSON.stringify(c));
  if ((c.response.decision === 'allow') !== r)
    throw new Error(`engines disagree on case ${i}: rego ${r}, cedar ${c.response.decision}`);
}

// (c) A 50-rule admission policy over a 200-field manifest.
const fields: Record<string, unknown> = {};
for (let i = 0; i < 200; i++)
  fields[`f${i}`] = i % 3 === 0 ? i : i % 3 === 1 ? `value-${i}` : { enabled: i % 2 === 0, limit: i };
const rules: string[] = [];
for (let i = 0; i < 50; i++) {
  const f = i * 4;
  if (f % 3 === 0) rules.push(`deny contains "f${f} exceeds ${f + 10}" if input.manifest.f${f} > ${f + 10}`);
  else if (f % 3 === 1)
    rules.push(`deny contains "f${f} is a forbidden value" if startswith(input.manifest.f${f}, "forbidden")`);
  else
    rules.push(
      `deny contains "f${f} is enabled beyond its limit" if {\n\tinput.manifest.f${f}.enabled\n\tinput.manifest.f${f}.limit > ${f + 100}\n}`,
    );
}
const admission = compile([
  { file: 'admission.rego', source: `package bench.admission\n\nimport rego.v1\n\n${rules.join('\n\n')}\n` },
]);
const manifest = { manifest: fields };
if ((admission.evaluate('data.bench.admission.deny', { input: manifest }) as unknown[]).length !== 0)
  throw new Error('admission bench should allow');

console.log(`node ${process.version}, one core, ${seconds} s per row\n`);
const a = measure('(a) seed policy, data.microapp.network.deny', (i) =>
  seed.evaluate('data.microapp.network.deny', { input: seedInputs[i % 4] }),
);
const regoB = measure('(b) ABAC allow, this engine (Rego)', (i) =>
  abacRego.evaluate('data.bench.abac.allow', { input: abacInputs[i % 16] }),
);
const cedarB = measure('(b) ABAC allow, cedar-wasm statefulIsAuthorized', (i) =>
  cedar.statefulIsAuthorized(cedarCalls[i % 16]!),
);
measure('(c) 50-rule admission, 200-field manifest', () =>
  admission.evaluate('data.bench.admission.deny', { input: manifest }),
);
console.log(`\nratio (b) Rego / cedar-wasm: ${(regoB / cedarB).toFixed(1)}x  (goal: at least 10x)`);
console.log(`(a) ${(1e6 / a).toFixed(2)} µs per decision  (goal: under 5 µs)`);
