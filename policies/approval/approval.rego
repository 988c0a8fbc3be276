# METADATA
# title: Which reviews an app needs
# description: Input {tier}. low needs none (approved by policy), medium one reviewer, high a security and a compliance reviewer.
package microapp.approval

import rego.v1

rules_version := "microapp.approval/2026-11-28.1"

required_reviews := {
	"low": [],
	"medium": [{"specialty": null}],
	"high": [{"specialty": "security"}, {"specialty": "compliance"}],
}

reviews := required_reviews[input.tier]

auto_approve if count(reviews) == 0
