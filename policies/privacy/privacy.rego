# METADATA
# title: Privacy pack
# description: |
#   Apps with personal data send it only to hosts approved for PII (data.microapp.config.pii_hosts)
#   and declare the fields they mask (input.manifest.privacy.maskedFields, when the runtime supports it).
package microapp.privacy

import rego.v1

default pii_hosts := []

pii_hosts := data.microapp.config.pii_hosts

deny contains sprintf("host %s is not approved to receive personal data", [host]) if {
	"pii" in input.manifest.dataClasses
	input.request.method == "deploy"
	some host in object.get(input.manifest, ["integrations", "egress"], [])
	not host in pii_hosts
}

warn contains "personal data is handled but no masked fields are declared" if {
	"pii" in input.manifest.dataClasses
	count(object.get(input.manifest, ["privacy", "maskedFields"], [])) == 0
}
