package microapp.network

blacklisted_domains = {"suspicious.example.com", "unsafe.example.org"}

deny[msg] {
  input.request.method == "deploy"
  host := input.request.host
  blacklisted_domains[host]
  msg = sprintf("deployment denied: host %v is blacklisted", [host])
}

# The egress broker asks for every outbound request an app makes: a blacklisted host is refused even
# when the app's approved manifest lists it (the blacklist may have grown since).
deny[msg] {
  input.request.method == "egress"
  host := input.request.host
  blacklisted_domains[host]
  msg = sprintf("egress denied: host %v is blacklisted", [host])
}
