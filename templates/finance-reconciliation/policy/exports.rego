# This app's own policy: reconciliation results may leave only to approved, encrypted destinations.
package microapp.app.exports

import rego.v1

public_storage := [".s3.amazonaws.com", ".blob.core.windows.net", "storage.googleapis.com"]

deny contains sprintf("exports to public storage (%s) must be encrypted and approved", [input.export.host]) if {
	strings.any_suffix_match(input.export.host, public_storage)
	not approved
}

approved if {
	input.export.encrypted == true
	input.export.approvedBy != ""
}
