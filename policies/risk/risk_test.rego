package microapp.risk_test

import data.microapp.risk
import rego.v1

base := {"dataClasses": ["internal"], "egress": [], "connectors": [], "secrets": [], "audience": {"department": null, "maxUsers": null}, "lifetimeDays": 90}

test_internal_short_lived_is_low if {
	risk.tier == "low" with input as base
	risk.score == 5 with input as base
}

test_external_host_is_medium if {
	risk.tier == "medium" with input as object.union(base, {"egress": ["api.example.com"]})
}

test_pii_is_high if {
	risk.tier == "high" with input as object.union(base, {"dataClasses": ["internal", "pii"]})
}

test_score_is_capped if {
	doc := object.union(base, {"dataClasses": ["pii", "financial", "health", "regulated"]})
	risk.score == 100 with input as doc
}

test_every_factor_is_explained if {
	doc := object.union(base, {"dataClasses": ["pii"], "egress": ["a.example.com"], "secrets": ["TOKEN"], "lifetimeDays": 200})
	fs := risk.factors with input as doc
	count(fs) == 4
	every f in fs {
		f.explanation != ""
		f.points >= 0
	}
}

test_large_resources_are_a_factor if {
	doc := object.union(base, {"resources": {"memoryMb": 4096, "cpu": 4}})
	fs := risk.factors with input as doc
	some f in fs
	f.id == "resources:large"
	risk.tier == "medium" with input as doc
}

test_default_resources_add_nothing if {
	doc := object.union(base, {"resources": {"memoryMb": 256, "cpu": 0.5}})
	risk.score == 5 with input as doc
}
