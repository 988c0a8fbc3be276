package microapp.models_test

import rego.v1

import data.microapp.models

narrow := {"*": ["claude-opus-*"], "internal": ["*"]}

test_any_model_by_default if {
	count(models.refuse) == 0 with input as {"model": "gpt-4o", "dataClasses": ["pii"]} with data.microapp.config.models as {"*": ["*"]}
}

test_a_class_takes_its_own_list_or_the_default if {
	count(models.refuse) == 0 with input as {"model": "gpt-4o", "dataClasses": ["internal"]} with data.microapp.config.models as narrow
	models.refuse == {"the model gpt-4o is not approved for pii data (data.microapp.config.models)"} with input as {"model": "gpt-4o", "dataClasses": ["internal", "pii"]} with data.microapp.config.models as narrow
	count(models.refuse) == 0 with input as {"model": "claude-opus-4-1", "dataClasses": ["pii"]} with data.microapp.config.models as narrow
}

test_a_request_without_a_model_is_refused if {
	count(models.refuse) == 1 with input as {"dataClasses": ["internal"]} with data.microapp.config.models as {"*": ["*"]}
}

test_approved_somewhere if {
	models.approved_somewhere("gpt-4o") with data.microapp.config.models as narrow
	not models.approved_somewhere("gpt-4o") with data.microapp.config.models as {"*": ["claude-*"]}
}
