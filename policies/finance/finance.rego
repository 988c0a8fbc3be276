# METADATA
# title: Finance pack
# description: Financial data never goes to public storage buckets unless the export is encrypted and approved.
package microapp.finance

import rego.v1

public_storage_suffixes := [".s3.amazonaws.com", "s3.amazonaws.com", ".blob.core.windows.net", "storage.googleapis.com"]

public_storage(host) if strings.any_suffix_match(host, public_storage_suffixes)

deny contains sprintf("financial data must not go to public storage (%s) unless the export is encrypted and approved", [host]) if {
	"financial" in input.manifest.dataClasses
	some host in object.get(input.manifest, ["integrations", "egress"], [])
	public_storage(host)
	not approved_export(host)
}

approved_export(host) if {
	some e in data.microapp.config.approved_exports
	e.host == host
	e.encrypted == true
}
