# METADATA
# title: Approved AI models
# description: |
#   Which AI models may be used with which data: data.microapp.config.models maps a data class to the
#   models approved for it, for instance {"*": ["*"]} (any model for any data; the default), or
#   {"*": ["claude-opus-*"], "internal": ["*"]}. A class not listed takes the entry for "*"; an entry
#   ending in * matches a prefix. The agents pack uses it for the model an agent declares; the egress
#   broker asks `refuse` for each call an app makes to a model API through a model connector
#   (input: {model, dataClasses, app}).
package microapp.models

import rego.v1

configured := object.get(data.microapp.config, "models", {"*": ["*"]})

list_for(dc) := configured[dc]

list_for(dc) := object.get(configured, "*", []) if not configured[dc]

matches(_, list) if "*" in list

matches(model, list) if model in list

matches(model, list) if {
	is_string(model)
	some p in list
	endswith(p, "*")
	p != "*"
	startswith(model, trim_suffix(p, "*"))
}

# The model may be used with data of this class.
approved(model, dc) if matches(model, list_for(dc))

# The model may be used with some class of data: an agent running on it may connect.
approved_somewhere(model) if {
	some list in configured
	matches(model, list)
}

refuse contains "the request names no model; send the model's name in the body's model field" if {
	not is_string(input.model)
}

refuse contains sprintf("the model %s is not approved for %s data (data.microapp.config.models)", [input.model, dc]) if {
	is_string(input.model)
	some dc in input.dataClasses
	not approved(input.model, dc)
}
