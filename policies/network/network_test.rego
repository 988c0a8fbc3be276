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

test_org_blocked_domain_and_its_subdomains_are_denied if {
	network.deny["egress denied: the organization blocked files.share.example.net"] with input as {"request": {"method": "egress", "host": "files.share.example.net"}}
		with data.blocked_domains as ["share.example.net"]
	network.deny["deployment denied: the organization blocked share.example.net"] with input as {"request": {"method": "deploy", "host": "share.example.net"}}
		with data.blocked_domains as ["share.example.net"]
}

test_org_blocking_matches_whole_labels_only if {
	count(network.deny) == 0 with input as {"request": {"method": "egress", "host": "notshare.example.net"}}
		with data.blocked_domains as ["share.example.net"]
}

test_nothing_blocked_by_an_empty_list if {
	count(network.deny) == 0 with input as {"request": {"method": "egress", "host": "share.example.net"}}
		with data.blocked_domains as []
}
