export { writeOpaBundle } from './opa-bundle.ts';
export { type CheckedPolicy, checkPolicy, type PolicyProblem } from './policy-check.ts';
export { builtinPolicyDir, deepMerge, type PolicySet, readPolicyDir } from './policy-sources.ts';
