# METADATA
# title: Risk scoring of app manifests
# description: |
#   Scores a registration from 0 to 100, explains every factor, and picks the tier.
#   Input: the risk-relevant part of a manifest (dataClasses, egress, connectors, secrets,
#   audience {department, maxUsers}, lifetimeDays). Same results as the foundation's interim rules.
package microapp.risk

import rego.v1

rules_version := "microapp.risk/2026-11-28.1"

thresholds := {"medium": 25, "high": 60}

tier_rank := {"low": 0, "medium": 1, "high": 2}

data_classes := {
	"public": {"points": 0, "min_tier": "low", "label": "public data"},
	"internal": {"points": 5, "min_tier": "low", "label": "internal data"},
	"confidential": {"points": 20, "min_tier": "medium", "label": "confidential business data"},
	"pii": {"points": 35, "min_tier": "high", "label": "personal data (PII)"},
	"financial": {"points": 30, "min_tier": "high", "label": "financial data"},
	"health": {"points": 40, "min_tier": "high", "label": "health data"},
	"regulated": {"points": 40, "min_tier": "high", "label": "regulated data"},
}

lists := {
	"egress": {"each": 10, "max": 20, "min_tier": "medium", "what": "calls external hosts"},
	"connectors": {"each": 10, "max": 20, "min_tier": "medium", "what": "uses connectors to other systems"},
	"secrets": {"each": 5, "max": 10, "min_tier": "low", "what": "needs secrets"},
}

large_audience := 100

short_lifetime_days := 90

factors contains {
	"id": sprintf("data-class:%s", [dc]),
	"points": rule.points,
	"minTier": rule.min_tier,
	"explanation": sprintf("handles %s", [rule.label]),
} if {
	some dc in input.dataClasses
	rule := data_classes[dc]
}

factors contains {
	"id": name,
	"points": min([count(items) * rule.each, rule.max]),
	"minTier": rule.min_tier,
	"explanation": sprintf("%s: %s", [rule.what, concat(", ", items)]),
} if {
	some name, rule in lists
	items := input[name]
	count(items) > 0
}

factors contains {
	"id": "audience:large",
	"points": 10,
	"minTier": "medium",
	"explanation": sprintf("audience of up to %d users (more than %d)", [input.audience.maxUsers, large_audience]),
} if {
	input.audience.maxUsers > large_audience
}

factors contains {
	"id": "audience:company-wide",
	"points": 10,
	"minTier": "medium",
	"explanation": "open to the whole company rather than one department",
} if {
	input.audience.department == null
	input.audience.maxUsers > large_audience
}

factors contains {
	"id": "lifetime:long",
	"points": 10,
	"minTier": "medium",
	"explanation": sprintf("expected to live %d days (more than %d)", [input.lifetimeDays, short_lifetime_days]),
} if {
	input.lifetimeDays > short_lifetime_days
}

large_resources := {"memory_mb": 512, "cpu": 1}

resources_factor := {
	"id": "resources:large",
	"points": 10,
	"minTier": "medium",
	"explanation": sprintf(
		"asks for %d MB of memory and %v CPU (more than %d MB or %v CPU)",
		[input.resources.memoryMb, input.resources.cpu, large_resources.memory_mb, large_resources.cpu],
	),
}

factors contains resources_factor if input.resources.memoryMb > large_resources.memory_mb

factors contains resources_factor if input.resources.cpu > large_resources.cpu

score := min([sum([f.points | some f in factors]), 100])

score_tier := "high" if score >= thresholds.high
else := "medium" if score >= thresholds.medium
else := "low"

tier := name if {
	ranks := {tier_rank[f.minTier] | some f in factors} | {tier_rank[score_tier]}
	some name, rank in tier_rank
	rank == max(ranks)
}

assessment := {
	"score": score,
	"tier": tier,
	"factors": [f | some f in factors],
	"rulesVersion": rules_version,
}
