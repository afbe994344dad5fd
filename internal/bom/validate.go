package bom

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/xeipuuv/gojsonschema"
)

// The official CycloneDX 1.6 JSON schema and the two schemas it references,
// copied from the cyclonedx-go module (schema/README.md).
//
// The validator is github.com/xeipuuv/gojsonschema (draft-07, the schema's
// own draft). It is chosen over more featureful validators for its package
// initialisation cost: this package is linked into every custody process,
// and a validator that compiles its meta-schemas at init (several
// milliseconds) would tax every `custody hash` and `custody exec` start.
//
//go:embed schema/*.json
var schemaFS embed.FS

// schemaFiles maps each embedded file to its $id; the first is the root.
var schemaFiles = []struct{ file, id string }{
	{"schema/bom-1.6.schema.json", "http://cyclonedx.org/schema/bom-1.6.schema.json"},
	{"schema/spdx.schema.json", "http://cyclonedx.org/schema/spdx.schema.json"},
	{"schema/jsf-0.82.schema.json", "http://cyclonedx.org/schema/jsf-0.82.schema.json"},
}

// MaxBOMSize caps what [Validate] reads.
const MaxBOMSize = 256 << 20

// ErrInvalid is wrapped by [Validate] when the document does not conform
// to the CycloneDX 1.6 schema (check with errors.Is). Other errors mean the
// document could not be read.
var ErrInvalid = errors.New("not a valid CycloneDX 1.6 BOM")

var compiled = sync.OnceValues(func() (*gojsonschema.Schema, error) {
	sl := gojsonschema.NewSchemaLoader()
	sl.Draft = gojsonschema.Draft7
	sl.AutoDetect = false
	sl.Validate = true // check each schema against its meta-schema
	var root gojsonschema.JSONLoader
	for i, f := range schemaFiles {
		raw, err := schemaFS.ReadFile(f.file)
		if err != nil {
			return nil, err
		}
		l := gojsonschema.NewBytesLoader(raw)
		if i == 0 {
			root = l
			continue
		}
		if err := sl.AddSchema(f.id, l); err != nil {
			return nil, fmt.Errorf("%s: %w", f.file, err)
		}
	}
	return sl.Compile(root)
})

// Validate reads one JSON document from r and checks it against the
// CycloneDX 1.6 JSON schema, with format assertions on (date-time, iri-reference,
// email, ...). A document that does not conform yields an error wrapping
// [ErrInvalid] that lists the violations.
func Validate(r io.Reader) error {
	s, err := compiled()
	if err != nil {
		return fmt.Errorf("failed to compile the CycloneDX schema: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxBOMSize+1))
	if err != nil {
		return err
	}
	if len(raw) > MaxBOMSize {
		return fmt.Errorf("BOM larger than %d bytes", MaxBOMSize)
	}
	res, err := s.Validate(gojsonschema.NewBytesLoader(raw))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !res.Valid() {
		var b strings.Builder
		for i, e := range res.Errors() {
			if i == 20 {
				fmt.Fprintf(&b, "; and %d more", len(res.Errors())-i)
				break
			}
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(e.String())
		}
		return fmt.Errorf("%w: %s", ErrInvalid, b.String())
	}
	return nil
}
