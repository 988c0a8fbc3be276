package microapp.app.exports_test

import data.microapp.app.exports
import rego.v1

test_unencrypted_public_bucket_denied if {
	count(exports.deny) == 1 with input as {"export": {"host": "recon.s3.amazonaws.com", "encrypted": false}}
}

test_encrypted_approved_export_allowed if {
	count(exports.deny) == 0 with input as {"export": {"host": "recon.s3.amazonaws.com", "encrypted": true, "approvedBy": "erin@example.com"}}
}

test_internal_host_allowed if {
	count(exports.deny) == 0 with input as {"export": {"host": "files.internal.example.com", "encrypted": false}}
}
