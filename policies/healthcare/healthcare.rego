# METADATA
# title: Healthcare pack
# description: Health data goes only to hosts approved for health data (data.microapp.config.health_hosts).
package microapp.healthcare

import rego.v1

deny contains sprintf("health data may only go to approved hosts; %s is not one", [host]) if {
	"health" in input.manifest.dataClasses
	some host in object.get(input.manifest, ["integrations", "egress"], [])
	not health_host(host)
}

health_host(host) if host in data.microapp.config.health_hosts
