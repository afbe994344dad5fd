# approve: an approver, who is not the publisher, approves a signed version
# whose scan is safe and whose dataset contracts pass.
package custody.approve

import data.custody.lib

deny contains msg if some msg in lib.signed

deny contains msg if some msg in lib.scan_safe

deny contains msg if some msg in lib.contracts_pass

deny contains sprintf("actor %q is the publisher and may not approve it (two-person rule)", [input.actor.subject]) if {
	input.actor.subject == input.version.publisher
}

deny contains "actor has no subject" if {
	object.get(input, ["actor", "subject"], "") == ""
}

deny contains sprintf("actor role %q may not approve (want \"approver\" or \"admin\")", [role]) if {
	role := object.get(input, ["actor", "role"], "")
	not role in {"approver", "admin"}
}

allow if count(deny) == 0
