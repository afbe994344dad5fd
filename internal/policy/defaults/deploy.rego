# deploy: a serving process runs only a signed, safely scanned version that
# was independently approved and promoted.
package custody.deploy

import data.custody.lib

deny contains msg if some msg in lib.signed

deny contains msg if some msg in lib.scan_safe

deny contains msg if some msg in lib.independent_approval

deny contains msg if some msg in lib.promoted

allow if count(deny) == 0
