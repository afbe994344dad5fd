package oms

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/testvectors"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// omsSchemas compiles the OMS v1.0 JSON schemas (bundle -> envelope,
// statement -> predicate).
func omsSchemas(t *testing.T) (bundle, statement *jsonschema.Schema) {
	t.Helper()
	dir := testvectors.Path(t, "ossf-model-signing-spec", "schemas", "v1.0")
	c := jsonschema.NewCompiler()
	ids := map[string]string{}
	for _, name := range []string{"bundle", "envelope", "statement", "predicate"} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(readFile(t, filepath.Join(dir, name+".schema.json"))))
		if err != nil {
			t.Fatal(err)
		}
		id := doc.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	return c.MustCompile(ids["bundle"]), c.MustCompile(ids["statement"])
}

// validateOMS validates a bundle and its decoded statement.
func validateOMS(t *testing.T, bundleSchema, statementSchema *jsonschema.Schema, raw []byte) error {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := bundleSchema.Validate(doc); err != nil {
		return err
	}
	payload, err := base64.StdEncoding.DecodeString(doc.(map[string]any)["dsseEnvelope"].(map[string]any)["payload"].(string))
	if err != nil {
		return err
	}
	st, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return err
	}
	return statementSchema.Validate(st)
}

func TestBundlesMatchOMSSchemas(t *testing.T) {
	bundleSchema, statementSchema := omsSchemas(t)

	// The harness itself: the spec's vectors pass or fail as published.
	base := testvectors.Path(t, "ossf-model-signing-spec", "test-vectors", "v1.0")
	for _, sub := range []string{"valid", "invalid", "invalid-payload"} {
		ents, _ := os.ReadDir(filepath.Join(base, sub))
		for _, e := range ents {
			err := validateOMS(t, bundleSchema, statementSchema, readFile(t, filepath.Join(base, sub, e.Name())))
			if (err == nil) != (sub == "valid") {
				t.Errorf("%s/%s: schema validation error = %v", sub, e.Name(), err)
			}
		}
	}

	root := newTestCA(t, "root", nil)
	certKey := mustKey(t, AlgoECDSAP384)
	leaf := root.issue(t, certKey.Public(), leafOpts{keyUsage: x509.KeyUsageDigitalSignature})
	cases := map[string]func(dir string) *Bundle{
		"p256": func(dir string) *Bundle { return signDir(t, dir, mustKey(t, AlgoECDSAP256), nil, SignOptions{}) },
		"p384 shards": func(dir string) *Bundle {
			return signDir(t, dir, mustKey(t, AlgoECDSAP384), nil, SignOptions{Digest: digest.Options{ShardSize: 3}})
		},
		"ed25519":     func(dir string) *Bundle { return signDir(t, dir, mustKey(t, AlgoEd25519), nil, SignOptions{}) },
		"certificate": func(dir string) *Bundle { return signDir(t, dir, certKey, []*x509.Certificate{leaf}, SignOptions{}) },
	}
	for name, sign := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writeModel(t, map[string]string{"a.bin": "aaaaaaa", "dir/b.bin": "b", "empty": ""})
			b := sign(dir)
			raw, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := validateOMS(t, bundleSchema, statementSchema, raw); err != nil {
				t.Fatalf("custody's bundle does not match the OMS schemas: %v\n%s", err, raw)
			}
			// And it parses back to the same thing.
			again, err := ParseBundle(raw)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(b)
			c, _ := json.Marshal(again)
			if !bytes.Equal(a, c) {
				t.Errorf("bundle changed in a parse round trip:\n%s\n%s", a, c)
			}
		})
	}
}
