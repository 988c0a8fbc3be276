# METADATA
# title: Deploy admission
# description: |
#   Input {request: {method, host?}, manifest}. Denies egress outside the approved manifest, hosts
#   the organization blocks (data.microapp.config.blocked_domains), and connectors not approved for
#   the app's data classes (data.microapp.connectors[name].dataClasses).
package microapp.deploy

import rego.v1

egress := object.get(input.manifest, ["integrations", "egress"], [])

connectors := object.get(input.manifest, ["integrations", "connectors"], [])

blocked contains host if some host in data.microapp.config.blocked_domains

deny contains sprintf("host %s is not in the approved manifest of %s", [input.request.host, input.manifest.name]) if {
	input.request.method == "deploy"
	input.request.host
	not input.request.host in egress
}

deny contains sprintf("host %s is blocked by organization policy", [host]) if {
	some host in egress
	host in blocked
}

deny contains sprintf("host %s is blocked by organization policy", [host]) if {
	host := input.request.host
	host in blocked
	not host in egress
}

deny contains sprintf("connector %s is not approved for %s data", [name, dc]) if {
	some name in connectors
	connector := data.microapp.connectors[name]
	some dc in input.manifest.dataClasses
	not dc in connector.dataClasses
}
