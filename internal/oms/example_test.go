package oms_test

import (
	"fmt"

	"github.com/custody-ml/custody/internal/oms"
)

// The DSSE payload custody signs for a two-file model: compact JSON, fields
// in this order, the subject digest being the OMS root of the resources
// (sha256 of the two raw digests: printf %s 5e47...4555... | xxd -r -p | sha256sum).
func ExampleStatement_Marshal() {
	st, err := oms.NewStatement("my-model", []oms.Resource{
		{Name: "config.json", Algorithm: "sha256", Digest: "5e472403951781d18d5f790aa5b3316a5f535fc37a1052f6659c9c6af82e3643"},
		{Name: "weights.bin", Algorithm: "sha256", Digest: "4555555dc68d872c2270ba89ecc5f6f094812f65372b37e50071fe5168031c49"},
	}, oms.Serialization{Method: "files", HashType: "sha256", IgnorePaths: []string{".git", "model.sig"}})
	if err != nil {
		panic(err)
	}
	payload, err := st.Marshal()
	if err != nil {
		panic(err)
	}
	fmt.Println(string(payload))
	// Output:
	// {"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"my-model","digest":{"sha256":"b941667adf1337cbe83a15313561c531eb6b4d9f4dffd4bd073abd2b9893440b"}}],"predicateType":"https://model_signing/signature/v1.0","predicate":{"resources":[{"name":"config.json","algorithm":"sha256","digest":"5e472403951781d18d5f790aa5b3316a5f535fc37a1052f6659c9c6af82e3643"},{"name":"weights.bin","algorithm":"sha256","digest":"4555555dc68d872c2270ba89ecc5f6f094812f65372b37e50071fe5168031c49"}],"serialization":{"method":"files","hash_type":"sha256","allow_symlinks":false,"ignore_paths":[".git","model.sig"]}}}
}
