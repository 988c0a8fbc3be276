# METADATA
# title: AI agents
# description: |
#   Decides each tool call an AI agent makes through the platform's MCP endpoint for the person who
#   delegated to it. Three answers: `refuse` (the call is refused, with these reasons), `ask` (the call
#   waits until the delegating person approves it in the console or with `microapp agents approve`), or
#   neither (the call goes ahead). `refuse_connect` refuses an agent when it registers or a person consents.
#
#   Input: {tool, agent: {client, version, model}, delegation: {scopes, limits, usage: {registrations,
#   builds}}, app: {exists, tier, dataClasses} (the app the call is about, as it is now), proposed:
#   {tier, dataClasses} (the app as the call would leave it), change: {dataClasses, egress, connectors,
#   secrets} (what the call adds), environment}.
#
#   Tools of the git server: `read_repository` (a clone or fetch), `push_change` (a push to a branch,
#   which opens a change request and starts its check: it spends a build of the day's budget) and
#   `merge_change` (asked whenever the agent's push would merge: the person confirms that exact commit;
#   reasons in `ask` are added to the question).
#
#   The model an agent declares is checked against the approved models per data class
#   (data.microapp.config.models, see the models pack).
package microapp.agents

import rego.v1

import data.microapp.models

model := object.get(input.agent, "model", null)

model_name := model if model != null

model_name := "an undeclared model" if model == null

# The data classes the call touches: the app's as it is, and as the call would leave it.
classes contains dc if some dc in object.get(input, ["app", "dataClasses"], [])

classes contains dc if some dc in object.get(input, ["proposed", "dataClasses"], [])

refuse_connect contains sprintf("%s is not a model this organization approved for agents", [model_name]) if {
	not models.approved_somewhere(model)
}

refuse contains msg if some msg in refuse_connect

refuse contains sprintf("%s is not approved for %s data (data.microapp.config.models)", [model_name, dc]) if {
	some dc in classes
	not models.approved(model, dc)
}

# The scope each tool needs; a tool not named here needs none beyond the delegation itself.
needs := {
	"register_app": "apps:register",
	"build_app": "apps:build",
	"push_change": "apps:build",
	"read_repository": "apps:read",
	"deploy_app": "apps:deploy",
	"decommission_app": "apps:register",
}

refuse contains sprintf("this delegation does not include %s; the person can consent again with it", [scope]) if {
	scope := needs[input.tool]
	not scope in input.delegation.scopes
}

refuse contains sprintf("this delegation allows %d registrations a day and they are used; try again tomorrow or ask the person", [input.delegation.limits.registrationsPerDay]) if {
	input.tool == "register_app"
	input.delegation.usage.registrations >= input.delegation.limits.registrationsPerDay
}

refuse contains sprintf("this delegation allows %d builds a day and they are used; try again tomorrow or ask the person", [input.delegation.limits.buildsPerDay]) if {
	input.tool in {"build_app", "push_change"}
	input.delegation.usage.builds >= input.delegation.limits.buildsPerDay
}

live_tiers := object.get(input.delegation.limits, "liveTiers", [])

refuse contains sprintf("deploying a %s-tier app to live is not part of this delegation; deploy to preview, and ask the person to promote it", [input.app.tier]) if {
	input.tool == "deploy_app"
	input.environment == "live"
	not input.app.tier in live_tiers
}

ask contains "deploys to live, where the app's audience uses it" if {
	input.tool == "deploy_app"
	input.environment == "live"
}

ask contains "decommissions the app: it stops, its credentials are revoked and it is archived" if {
	input.tool == "decommission_app"
}

ask contains sprintf("adds the data class %s", [dc]) if {
	some dc in object.get(input, ["change", "dataClasses"], [])
	not dc in {"public", "internal"}
}

ask contains sprintf("adds the outside host %s", [host]) if {
	some host in object.get(input, ["change", "egress"], [])
}

ask contains sprintf("adds the connector %s", [name]) if {
	some name in object.get(input, ["change", "connectors"], [])
}

ask contains sprintf("adds the secret %s", [name]) if {
	some name in object.get(input, ["change", "secrets"], [])
}

ask contains sprintf("makes a %s-tier app; this delegation works on %s-tier apps without asking", [tier, concat(", ", input.delegation.limits.tiers)]) if {
	tier := input.proposed.tier
	not tier in input.delegation.limits.tiers
}

ask contains sprintf("asks for more than this delegation allows: %s", [input.request]) if {
	input.tool == "request_escalation"
}
