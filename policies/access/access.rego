# METADATA
# title: Who may use an app
# description: |
#   Input {user: {email, department, roles}, app: {owner, department, tier, dataClasses, audience}}.
#   Owners, admins and reviewers always; public apps everyone; otherwise the app's audience
#   department (or its own department); high-tier apps only inside that department.
package microapp.access

import rego.v1

default allow := false

audience_department := object.get(input.app, ["audience", "department"], input.app.department)

allow if input.user.email == input.app.owner

allow if "admin" in input.user.roles

allow if "reviewer" in input.user.roles

allow if {
	input.app.dataClasses == ["public"]
}

allow if {
	input.app.tier != "high"
	input.user.department == audience_department
}

allow if {
	input.app.tier == "high"
	input.user.department == input.app.department
	input.user.department == audience_department
}

reason := "allowed" if allow
else := sprintf("%s apps are limited to the %s department", [input.app.tier, audience_department])

# People from elsewhere the owner let in (audience.people): a reviewed change to the app's audience.
allow if {
	some person in object.get(input.app, ["audience", "people"], [])
	lower(person) == lower(input.user.email)
}
