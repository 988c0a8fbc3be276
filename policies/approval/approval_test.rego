package microapp.approval_test

import data.microapp.approval
import rego.v1

test_low_is_automatic if approval.auto_approve with input as {"tier": "low"}

test_medium_needs_one_reviewer if count(approval.reviews) == 1 with input as {"tier": "medium"}

test_high_needs_security_and_compliance if {
	specialties := {r.specialty | some r in approval.reviews} with input as {"tier": "high"}
	specialties == {"security", "compliance"}
}
