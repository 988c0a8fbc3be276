package microapp.deploy_test

import data.microapp.deploy
import rego.v1

manifest := {"name": "recon", "dataClasses": ["internal", "pii"], "integrations": {"egress": ["api.bank.example.com"], "connectors": ["ledger-api"]}}

test_approved_host_is_allowed if {
	count(deploy.deny) == 0 with input as {"request": {"method": "deploy", "host": "api.bank.example.com"}, "manifest": manifest}
}

test_unlisted_host_is_denied if {
	deploy.deny["host evil.example.net is not in the approved manifest of recon"] with input as {"request": {"method": "deploy", "host": "evil.example.net"}, "manifest": manifest}
}

test_blocked_domain_is_denied_even_if_listed if {
	deploy.deny["host api.bank.example.com is blocked by organization policy"] with input as {"request": {"method": "register"}, "manifest": manifest}
		with data.microapp.config.blocked_domains as ["api.bank.example.com"]
}

test_connector_not_approved_for_pii if {
	deploy.deny["connector ledger-api is not approved for pii data"] with input as {"request": {"method": "deploy"}, "manifest": manifest}
		with data.microapp.connectors as {"ledger-api": {"dataClasses": ["internal", "financial"]}}
}
