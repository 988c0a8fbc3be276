# METADATA
# title: Data loss prevention pack
# description: |
#   What the egress broker does with personal and payment data it finds in a request body. The broker
#   finds card numbers, IBANs, national identifiers and e-mail addresses and says, for each kind, whether
#   the destination may receive it (`permitted`: the app, and a connector too, are approved for the data
#   class it needs). This pack answers three sets of kinds: `block` (the request is refused with 451),
#   `mask` (the values are masked, then sent) and `flag` (sent as it is, and audited). A kind in none of
#   them is sent; the broker applies the strictest answer (block, then mask, then flag).
#
#   A kind the destination may not receive is blocked unless the organization chose another mode for it:
#   data.microapp.config.dlp.modes (for instance {"email": "mask"}), or per connector,
#   data.microapp.config.dlp.connectors[id] (for instance {"ledger": {"iban": "flag"}}). Modes are
#   "block", "mask" and "flag"; anything else blocks. An organization module in this package may add to
#   any set (for instance, flag every e-mail address sent to one host, even where it is permitted).
#
#   A CSV file sent by an app that handles personal data to a destination not approved for it (a connector
#   without the pii data class, a host not in data.microapp.config.pii_hosts) is blocked as
#   `csv_export`, whatever it holds.
package microapp.dlp

import rego.v1

configured := data.microapp.config.dlp

# The mode for a kind the destination may not receive: the connector's own, else the organization's, else block.
mode(kind) := m if {
	input.destination.type == "connector"
	m := configured.connectors[input.destination.name][kind]
} else := m if {
	m := configured.modes[kind]
} else := "block"

unpermitted contains f.kind if {
	some f in input.findings
	not f.permitted
}

block contains kind if {
	some kind in unpermitted
	not mode(kind) in {"mask", "flag"}
}

mask contains kind if {
	some kind in unpermitted
	mode(kind) == "mask"
}

flag contains kind if {
	some kind in unpermitted
	mode(kind) == "flag"
}

pii_destination if {
	input.destination.type == "connector"
	"pii" in input.destination.dataClasses
}

pii_destination if {
	input.destination.type == "host"
	input.destination.name in data.microapp.config.pii_hosts
}

block contains "csv_export" if {
	input.request.csv
	"pii" in input.manifest.dataClasses
	not pii_destination
}
