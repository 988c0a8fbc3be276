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

# Domains the organization blocked (`PUT /api/v1/blocked-domains`, kept in the org bundle's data as
# `blocked_domains`): the name itself and every name under it, for deploys and for each outbound request.
org_blocked(host) {
  some i
  host == data.blocked_domains[i]
}

org_blocked(host) {
  some i
  endswith(host, concat("", [".", data.blocked_domains[i]]))
}

deny[msg] {
  input.request.method == "deploy"
  host := input.request.host
  org_blocked(host)
  msg = sprintf("deployment denied: the organization blocked %v", [host])
}

deny[msg] {
  input.request.method == "egress"
  host := input.request.host
  org_blocked(host)
  msg = sprintf("egress denied: the organization blocked %v", [host])
}
