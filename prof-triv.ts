import { compile } from './packages/rego/src/index.ts';
const pol = compile([{ file: 'n.rego', source: 'package t\np := 1\n' }]);
let n = 0;
for (const label of ['warm', 'measure']) {
  const t0 = process.cpuUsage();
  for (let i = 0; i < 1_000_000; i++) n += pol.evaluate('data.t.p', { input: { request: { method: 'deploy', host: 'x' } } }) as number;
  const t = process.cpuUsage(t0);
  console.log(label, ((t.user + t.system) / 1e6).toFixed(3), 'µs/decision (trivial policy)');
}
