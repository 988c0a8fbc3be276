package microapp.agents_test

import rego.v1

import data.microapp.agents

delegation := {
	"scopes": ["apps:read", "apps:register", "apps:build", "apps:deploy"],
	"limits": {"registrationsPerDay": 2, "buildsPerDay": 2, "tiers": ["low"], "liveTiers": []},
	"usage": {"registrations": 0, "builds": 0},
}

agent := {"client": "test-agent", "version": "1.0", "model": "claude-sonnet-4-5"}

call(tool, extra) := object.union({"tool": tool, "agent": agent, "delegation": delegation}, extra)

# The organization may narrow the approved models; these tests are about the rest of the policy.
any_model := {"*": ["*"]}

test_a_new_internal_low_app_goes_ahead if {
	input_ := call("register_app", {
		"proposed": {"tier": "low", "dataClasses": ["internal"]},
		"change": {"dataClasses": ["internal"], "egress": [], "connectors": [], "secrets": []},
	})
	count(agents.refuse) == 0 with input as input_ with data.microapp.config.models as any_model
	count(agents.ask) == 0 with input as input_ with data.microapp.config.models as any_model
}

test_pii_and_a_host_ask_the_person if {
	input_ := call("register_app", {
		"app": {"exists": true, "tier": "low", "dataClasses": ["internal"]},
		"proposed": {"tier": "medium", "dataClasses": ["internal", "pii"]},
		"change": {"dataClasses": ["pii"], "egress": ["api.example.org"], "connectors": [], "secrets": []},
	})
	asks := agents.ask with input as input_ with data.microapp.config.models as any_model
	"adds the data class pii" in asks
	"adds the outside host api.example.org" in asks
	count(agents.refuse) == 0 with input as input_ with data.microapp.config.models as any_model
}

test_live_is_refused_without_the_tier if {
	input_ := call("deploy_app", {"app": {"tier": "low", "dataClasses": ["internal"]}, "environment": "live"})
	count(agents.refuse) == 1 with input as input_ with data.microapp.config.models as any_model
}

test_live_asks_when_the_delegation_allows_it if {
	d := object.union(delegation, {"limits": {"registrationsPerDay": 2, "buildsPerDay": 2, "tiers": ["low"], "liveTiers": ["low"]}})
	input_ := {"tool": "deploy_app", "agent": agent, "delegation": d, "app": {"tier": "low", "dataClasses": ["internal"]}, "environment": "live"}
	count(agents.refuse) == 0 with input as input_ with data.microapp.config.models as any_model
	count(agents.ask) == 1 with input as input_ with data.microapp.config.models as any_model
}

test_budget_is_kept if {
	d := object.union(delegation, {"usage": {"registrations": 2, "builds": 0}})
	input_ := {"tool": "register_app", "agent": agent, "delegation": d, "proposed": {"tier": "low", "dataClasses": ["internal"]}}
	count(agents.refuse) == 1 with input as input_ with data.microapp.config.models as any_model
}

test_models_are_approved_per_data_class if {
	models := {"internal": ["*"], "pii": ["claude-opus-*"]}
	input_ := call("register_app", {"proposed": {"tier": "medium", "dataClasses": ["internal", "pii"]}})
	refusals := agents.refuse with input as input_ with data.microapp.config.models as models
	refusals == {"claude-sonnet-4-5 is not approved for pii data (data.microapp.config.models)"}
	count(agents.refuse_connect) == 0 with input as input_ with data.microapp.config.models as models
}

test_an_unapproved_model_is_refused_at_connect if {
	models := {"*": ["claude-opus-4"]}
	refusals := agents.refuse_connect with input as {"agent": agent} with data.microapp.config.models as models
	refusals == {"claude-sonnet-4-5 is not a model this organization approved for agents"}
	undeclared := agents.refuse_connect with input as {"agent": {"client": "x"}} with data.microapp.config.models as models
	undeclared == {"an undeclared model is not a model this organization approved for agents"}
}

test_a_push_needs_the_build_scope_and_spends_the_build_budget if {
	app := {"app": {"exists": true, "tier": "medium", "dataClasses": ["internal"]}}
	count(agents.refuse) == 0 with input as call("push_change", app) with data.microapp.config.models as any_model
	no_build := object.union(delegation, {"scopes": ["apps:read"]})
	input_ := object.union({"tool": "push_change", "agent": agent, "delegation": no_build}, app)
	refused := agents.refuse with input as input_ with data.microapp.config.models as any_model
	"this delegation does not include apps:build; the person can consent again with it" in refused
	spent := object.union(delegation, {"usage": {"registrations": 0, "builds": 2}})
	input2 := object.union({"tool": "push_change", "agent": agent, "delegation": spent}, app)
	count(agents.refuse) == 1 with input as input2 with data.microapp.config.models as any_model
}

test_reading_code_of_data_the_model_is_not_approved_for_is_refused if {
	input_ := call("read_repository", {"app": {"exists": true, "tier": "high", "dataClasses": ["pii"]}})
	count(agents.refuse) == 1 with input as input_ with data.microapp.config.models as {"internal": ["*"]}
	count(agents.refuse) == 0 with input as input_ with data.microapp.config.models as any_model
}
