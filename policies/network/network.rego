package microapp.network

blacklisted_domains = {"suspicious.example.com", "unsafe.example.org"}

deny[msg] {
  input.request.method == "deploy"
  host := input.request.host
  blacklisted_domains[host]
  msg = sprintf("deployment denied: host %v is blacklisted", [host])
}
