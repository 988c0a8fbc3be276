package microapp.finance_test

import data.microapp.finance
import rego.v1

m := {"dataClasses": ["financial"], "integrations": {"egress": ["exports.s3.amazonaws.com"]}}

test_public_bucket_denied if count(finance.deny) == 1 with input as {"manifest": m}

test_encrypted_approved_export_allowed if {
	count(finance.deny) == 0 with input as {"manifest": m}
		with data.microapp.config.approved_exports as [{"host": "exports.s3.amazonaws.com", "encrypted": true}]
}

test_bank_api_is_not_storage if count(finance.deny) == 0 with input as {"manifest": {"dataClasses": ["financial"], "integrations": {"egress": ["api.bank.example.com"]}}}
