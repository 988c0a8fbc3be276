package microapp.dlp_test

import data.microapp.dlp
import rego.v1

card := {"kind": "card_number", "count": 1, "dataClass": "regulated", "permitted": false}

email_ok := {"kind": "email", "count": 2, "dataClass": "pii", "permitted": true}

iban := {"kind": "iban", "count": 1, "dataClass": "financial", "permitted": false}

ledger := {"type": "connector", "name": "ledger", "dataClasses": ["internal", "pii"]}

# The organization's own settings are merged in when it pushes a bundle: these tests state theirs.
none := {"modes": {}, "connectors": {}}

test_unpermitted_data_is_blocked_by_default if {
	dlp.block == {"card_number"} with input as {"findings": [card, email_ok], "destination": ledger}
		with data.microapp.config.dlp as none
	count(dlp.mask) == 0 with input as {"findings": [card, email_ok], "destination": ledger}
		with data.microapp.config.dlp as none
}

test_permitted_data_is_sent if {
	count(dlp.block | dlp.mask | dlp.flag) == 0 with input as {"findings": [email_ok], "destination": ledger}
		with data.microapp.config.dlp as none
}

test_the_organization_chooses_mask_or_flag if {
	r := dlp with input as {"findings": [card, iban], "destination": ledger}
		with data.microapp.config.dlp as {"modes": {"card_number": "mask", "iban": "flag"}, "connectors": {}}
	r.mask == {"card_number"}
	r.flag == {"iban"}
	count(r.block) == 0
}

test_a_connector_setting_wins_over_the_organization if {
	r := dlp with input as {"findings": [card], "destination": ledger}
		with data.microapp.config.dlp.modes as {"card_number": "mask"}
		with data.microapp.config.dlp.connectors as {"ledger": {"card_number": "block"}}
	r.block == {"card_number"}
	count(r.mask) == 0
}

test_an_unknown_mode_blocks if {
	dlp.block == {"card_number"} with input as {"findings": [card], "destination": ledger}
		with data.microapp.config.dlp as {"modes": {"card_number": "allow"}, "connectors": {}}
}

test_csv_export_of_personal_data_to_a_destination_not_approved_for_it if {
	hr := {"type": "connector", "name": "reports", "dataClasses": ["internal"]}
	dlp.block == {"csv_export"} with input as {
		"request": {"csv": true}, "manifest": {"dataClasses": ["pii"]},
		"findings": [], "destination": hr,
	}
	count(dlp.block) == 0 with input as {
		"request": {"csv": true}, "manifest": {"dataClasses": ["pii"]},
		"findings": [], "destination": ledger,
	}
	count(dlp.block) == 0 with input as {
		"request": {"csv": true}, "manifest": {"dataClasses": ["internal"]},
		"findings": [], "destination": hr,
	}
}

test_csv_export_to_a_host_follows_pii_hosts if {
	inp := {"request": {"csv": true}, "manifest": {"dataClasses": ["pii"]}, "findings": []}
	dlp.block == {"csv_export"} with input as object.union(inp, {"destination": {"type": "host", "name": "files.example.com"}})
		with data.microapp.config.pii_hosts as ["api.bank.example.com"]
	count(dlp.block) == 0 with input as object.union(inp, {"destination": {"type": "host", "name": "api.bank.example.com"}})
		with data.microapp.config.pii_hosts as ["api.bank.example.com"]
}
