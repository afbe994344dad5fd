# Checks shared by the default decision policies. Each rule is a set of deny
# reasons; a decision policy unions the checks it needs.
package custody.lib

# A signature counts if the signer verified it against the trust policy
# (trusted is true) or its key id is listed in config.trusted_keys.
trusted_signature(sig) if sig.trusted == true

trusted_signature(sig) if sig.key_id in object.get(input, ["config", "trusted_keys"], [])

signed contains "version is not signed by a trusted key" if {
	not any_trusted
}

any_trusted if {
	some sig in object.get(input, ["version", "signatures"], [])
	trusted_signature(sig)
}

scan_safe contains "version has no scan verdict (want \"safe\")" if {
	not input.version.scan.verdict
}

scan_safe contains sprintf("scan verdict is %q (want \"safe\")", [v]) if {
	v := input.version.scan.verdict
	v != "safe"
}

contracts_pass contains sprintf("dataset contract %q failed", [c.name]) if {
	some c in object.get(input, ["version", "contracts"], [])
	c.passed != true
	not c.dataset
}

contracts_pass contains sprintf("dataset contract %q failed on %s@%s", [c.name, c.dataset, c.dataset_version]) if {
	some c in object.get(input, ["version", "contracts"], [])
	c.passed != true
	c.dataset
}

# With config.require_contracts, every training input dataset needs signed
# contract evidence that passed (custody dataset attach).
contracts_pass contains sprintf("training dataset %s@%s has no passing contract evidence", [d.name, d.version]) if {
	object.get(input, ["config", "require_contracts"], false) == true
	some d in object.get(input, ["version", "datasets"], [])
	d.passed != true
}

min_metrics contains sprintf("config.min_metrics.%s is not a number", [name]) if {
	some name, min in object.get(input, ["config", "min_metrics"], {})
	not is_number(min)
}

min_metrics contains sprintf("metric %s is missing (minimum %v)", [name, min]) if {
	some name, min in object.get(input, ["config", "min_metrics"], {})
	not is_number(object.get(input, ["version", "metrics", name], null))
}

min_metrics contains sprintf("metric %s = %v is below the minimum %v", [name, got, min]) if {
	some name, min in object.get(input, ["config", "min_metrics"], {})
	got := input.version.metrics[name]
	is_number(got)
	is_number(min)
	got < min
}

# Two-person rule: someone other than the publisher approved the version.
independent_approval contains sprintf("no approval by anyone other than the publisher %q (two-person rule)", [object.get(input, ["version", "publisher"], "")]) if {
	not any_independent_approval
}

any_independent_approval if {
	some a in object.get(input, ["version", "approvals"], [])
	a.approver != ""
	a.approver != input.version.publisher
}

promoted contains "version has not been promoted to any alias" if {
	count(object.get(input, ["version", "promotions"], [])) == 0
}
