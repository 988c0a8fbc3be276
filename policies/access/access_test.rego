package microapp.access_test

import data.microapp.access
import rego.v1

app := {"owner": "alice@example.com", "department": "finance", "tier": "high", "dataClasses": ["pii"], "audience": {"department": "finance"}}

test_same_department_may_use if access.allow with input as {"user": {"email": "dave@example.com", "department": "finance", "roles": ["creator"]}, "app": app}

test_other_department_may_not if {
	not access.allow with input as {"user": {"email": "frank@example.com", "department": "marketing", "roles": ["creator"]}, "app": app}
}

test_owner_may if access.allow with input as {"user": {"email": "alice@example.com", "department": "elsewhere", "roles": []}, "app": app}

test_a_person_the_owner_let_in_may if {
	let_in := object.union(app, {"audience": {"department": "finance", "people": ["Frank@example.com"]}})
	access.allow with input as {"user": {"email": "frank@example.com", "department": "marketing", "roles": ["creator"]}, "app": let_in}
}

test_only_the_people_named if {
	let_in := object.union(app, {"audience": {"department": "finance", "people": ["frank@example.com"]}})
	not access.allow with input as {"user": {"email": "grace@example.com", "department": "marketing", "roles": ["creator"]}, "app": let_in}
}
