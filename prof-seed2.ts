import { compile } from './packages/rego/src/index.ts';
const seed = compile([{ file: 'n.rego', source: `package microapp.network

blacklisted_domains = {"suspicious.example.com", "unsafe.example.org"}

deny[msg] {
  input.request.method == "deploy"
  host := input.request.host
  blacklisted_domains[host]
  msg = sprintf("deployment denied: host %v is blacklisted", [host])
}
` }]);
const hosts = ['suspicious.example.com','api.bank.example.com','unsafe.example.org','ledger.internal.example.com'];
let n = 0;
for (let round = 0; round < 6; round++) {
  const t0 = process.cpuUsage();
  for (let i = 0; i < 500_000; i++) {
    const r = seed.evaluate('data.microapp.network.deny', { input: { request: { method: 'deploy', host: hosts[i & 3] } } }) as unknown[];
    n += r.length;
  }
  const t = process.cpuUsage(t0);
  console.log(round, ((t.user + t.system) / 5e5).toFixed(3), 'µs/decision', Math.round(process.memoryUsage().heapUsed / 1e6), 'MB');
}
