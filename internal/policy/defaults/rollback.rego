# rollback: moving an alias back to a version that held it before. The
# target must still be signed by a trusted key, scanned safe, pass its
# dataset contracts and have been approved by someone other than the
# publisher. Metric minimums are not re-checked: they may have been raised
# since the target was promoted, and a rollback is how an incident ends.
# (The server itself refuses targets marked bad and versions that never
# held the alias.)
package custody.rollback

import data.custody.lib

deny contains msg if some msg in lib.signed

deny contains msg if some msg in lib.scan_safe

deny contains msg if some msg in lib.contracts_pass

deny contains msg if some msg in lib.independent_approval

allow if count(deny) == 0
