# register: a version enters the registry only with a digest and a
# signature by a trusted key.
package custody.register

import data.custody.lib

deny contains "version has no digest" if {
	not input.version.digest
}

deny contains msg if some msg in lib.signed

allow if count(deny) == 0
