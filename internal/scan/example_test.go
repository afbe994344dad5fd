package scan_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/custody-ml/custody/internal/scan"
	"github.com/custody-ml/custody/internal/scan/policy"
)

func ExampleScanner_Scan() {
	// A protocol 0 pickle that calls os.system when loaded.
	evil := "cos\nsystem\n(S'echo pwned'\ntR."
	s := scan.New(nil, scan.Limits{})
	r := s.Scan(context.Background(), "evil.pkl", strings.NewReader(evil), int64(len(evil)))
	fmt.Println(r.Verdict, r.Format)
	for _, f := range r.Findings {
		fmt.Println(f.Rule, f.Module+"."+f.Name, "at offset", f.Offset)
	}
	// Output:
	// dangerous pickle
	// pickle/denied-import os.system at offset 0
}

func ExampleScanner_Scan_policy() {
	// A pickle of a scikit-learn object: unknown by default, safe once the
	// policy allows scikit-learn.
	p := "csklearn.linear_model\nLinearRegression\n)\x81."
	pol, err := policy.Parse([]byte(`{"allow": ["sklearn.*"]}`), "example")
	if err != nil {
		panic(err)
	}
	for _, s := range []*scan.Scanner{scan.New(nil, scan.Limits{}), scan.New(pol, scan.Limits{})} {
		r := s.Scan(context.Background(), "model.pkl", strings.NewReader(p), int64(len(p)))
		fmt.Println(r.Verdict)
	}
	// Output:
	// unknown
	// safe
}
