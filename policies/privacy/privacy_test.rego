package microapp.privacy_test

import data.microapp.privacy
import rego.v1

m := {"dataClasses": ["pii"], "integrations": {"egress": ["api.bank.example.com"]}}

test_unapproved_pii_host_denied if {
	count(privacy.deny) == 1 with input as {"request": {"method": "deploy"}, "manifest": m}
		with data.microapp.config.pii_hosts as []
}

test_approved_pii_host_allowed if {
	count(privacy.deny) == 0 with input as {"request": {"method": "deploy"}, "manifest": m}
		with data.microapp.config.pii_hosts as ["api.bank.example.com"]
}

test_masking_warning if count(privacy.warn) == 1 with input as {"manifest": m}
