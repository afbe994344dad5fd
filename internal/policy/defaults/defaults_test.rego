package custody.defaults_test

import data.custody.approve
import data.custody.deploy
import data.custody.promote
import data.custody.register
import data.custody.rollback

good := {
	"decision": "promote",
	"version": {
		"name": "resnet",
		"version": "3",
		"digest": "sha256:88eaddfe1f4c7f1f59dd7b69ec68696897f48f92e00e4f49b564818268b33e80",
		"publisher": "alice",
		"signatures": [{"key_id": "SHA256:abc", "signer": "alice", "trusted": true}],
		"scan": {"verdict": "safe"},
		"contracts": [{"name": "train", "passed": true}],
		"metrics": {"accuracy": 0.93},
		"approvals": [{"approver": "bob"}],
		"promotions": [{"alias": "production"}],
	},
	"actor": {"token_id": "tok1", "subject": "bob", "role": "approver"},
	"config": {"min_metrics": {"accuracy": 0.9}},
}

test_compliant_allowed if {
	register.allow with input as good
	approve.allow with input as good
	promote.allow with input as good
	deploy.allow with input as good
	rollback.allow with input as good
}

test_rollback_ignores_metric_minimums if {
	inp := json.patch(good, [{"op": "replace", "path": "/version/metrics/accuracy", "value": 0.5}])
	rollback.allow with input as inp
	not promote.allow with input as inp
}

test_rollback_needs_signature_and_safe_scan if {
	inp := json.patch(good, [
		{"op": "replace", "path": "/version/signatures/0/trusted", "value": false},
		{"op": "replace", "path": "/version/scan/verdict", "value": "dangerous"},
	])
	rollback.deny == {"version is not signed by a trusted key", "scan verdict is \"dangerous\" (want \"safe\")"} with input as inp
}

test_untrusted_signature_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/version/signatures/0/trusted", "value": false}])
	not promote.allow with input as inp
	promote.deny == {"version is not signed by a trusted key"} with input as inp
	register.deny == {"version is not signed by a trusted key"} with input as inp
}

test_trusted_key_from_config if {
	inp := json.patch(good, [
		{"op": "replace", "path": "/version/signatures/0/trusted", "value": false},
		{"op": "add", "path": "/config/trusted_keys", "value": ["SHA256:abc"]},
	])
	register.allow with input as inp
}

test_unsigned_denied if {
	inp := json.remove(good, ["version/signatures"])
	register.deny == {"version is not signed by a trusted key"} with input as inp
}

test_scan_dangerous_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/version/scan/verdict", "value": "dangerous"}])
	promote.deny == {"scan verdict is \"dangerous\" (want \"safe\")"} with input as inp
	deploy.deny == {"scan verdict is \"dangerous\" (want \"safe\")"} with input as inp
}

test_scan_missing_denied if {
	inp := json.remove(good, ["version/scan"])
	approve.deny == {"version has no scan verdict (want \"safe\")"} with input as inp
}

test_self_approval_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/actor/subject", "value": "alice"}])
	approve.deny == {"actor \"alice\" is the publisher and may not approve it (two-person rule)"} with input as inp
}

test_approve_needs_role if {
	inp := json.patch(good, [{"op": "replace", "path": "/actor/role", "value": "publisher"}])
	approve.deny == {"actor role \"publisher\" may not approve (want \"approver\" or \"admin\")"} with input as inp
}

test_only_publisher_approval_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/version/approvals", "value": [{"approver": "alice"}]}])
	promote.deny == {"no approval by anyone other than the publisher \"alice\" (two-person rule)"} with input as inp
}

test_metric_below_minimum_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/version/metrics/accuracy", "value": 0.85}])
	promote.deny == {"metric accuracy = 0.85 is below the minimum 0.9"} with input as inp
}

test_metric_missing_denied if {
	inp := json.remove(good, ["version/metrics"])
	promote.deny == {"metric accuracy is missing (minimum 0.9)"} with input as inp
}

test_contract_failed_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/version/contracts/0/passed", "value": false}])
	promote.deny == {"dataset contract \"train\" failed"} with input as inp
}

test_deploy_needs_promotion if {
	inp := json.remove(good, ["version/promotions"])
	deploy.deny == {"version has not been promoted to any alias"} with input as inp
	promote.allow with input as inp
}

test_register_needs_digest if {
	inp := json.remove(good, ["version/digest"])
	register.deny == {"version has no digest"} with input as inp
}

test_metric_minimum_not_number_denied if {
	inp := json.patch(good, [{"op": "replace", "path": "/config/min_metrics/accuracy", "value": "high"}])
	promote.deny == {"config.min_metrics.accuracy is not a number"} with input as inp
}

test_anonymous_approver_denied if {
	inp := json.remove(good, ["actor/subject"])
	approve.deny == {"actor has no subject"} with input as inp
}
