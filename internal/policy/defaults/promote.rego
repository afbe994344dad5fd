# promote: moving an alias to a version needs a trusted signature, a safe
# scan, passing contracts, the minimum metrics of config.min_metrics and an
# approval by someone other than the publisher.
package custody.promote

import data.custody.lib

deny contains msg if some msg in lib.signed

deny contains msg if some msg in lib.scan_safe

deny contains msg if some msg in lib.contracts_pass

deny contains msg if some msg in lib.min_metrics

deny contains msg if some msg in lib.independent_approval

allow if count(deny) == 0
