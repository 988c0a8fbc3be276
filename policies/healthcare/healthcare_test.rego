package microapp.healthcare_test

import data.microapp.healthcare
import rego.v1

test_unapproved_health_host_denied if {
	count(healthcare.deny) == 1 with input as {"manifest": {"dataClasses": ["health"], "integrations": {"egress": ["api.labs.example.com"]}}}
}

test_approved_health_host_allowed if {
	count(healthcare.deny) == 0 with input as {"manifest": {"dataClasses": ["health"], "integrations": {"egress": ["api.labs.example.com"]}}}
		with data.microapp.config.health_hosts as ["api.labs.example.com"]
}
