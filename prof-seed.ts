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
const t0 = process.cpuUsage();
for (let i = 0; i < 3_000_000; i++) {
  const r = seed.evaluate('data.microapp.network.deny', { input: { request: { method: 'deploy', host: hosts[i & 3] } } }) as unknown[];
  n += r.length;
}
const t = process.cpuUsage(t0);
console.log(n, ((t.user + t.system) / 1e6).toFixed(3), 'µs/decision');
