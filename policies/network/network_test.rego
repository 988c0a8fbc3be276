package microapp.network_test

import data.microapp.network
import rego.v1

test_blacklisted_host_is_denied if {
	network.deny["deployment denied: host suspicious.example.com is blacklisted"] with input as {"request": {"method": "deploy", "host": "suspicious.example.com"}}
}

test_bank_api_is_allowed if {
	count(network.deny) == 0 with input as {"request": {"method": "deploy", "host": "api.bank.example.com"}}
}

test_only_deploys_are_checked if {
	count(network.deny) == 0 with input as {"request": {"method": "register", "host": "suspicious.example.com"}}
}

test_egress_to_blacklisted_host_is_denied if {
	network.deny["egress denied: host unsafe.example.org is blacklisted"] with input as {"request": {"method": "egress", "host": "unsafe.example.org"}}
}

test_egress_to_bank_api_is_allowed if {
	count(network.deny) == 0 with input as {"request": {"method": "egress", "host": "api.bank.example.com"}}
}
