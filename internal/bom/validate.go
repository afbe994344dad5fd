package bom

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The official CycloneDX 1.6 JSON schema and the two schemas it references,
// copied from the cyclonedx-go module (schema/README.md).
//
//go:embed schema/*.json
var schemaFS embed.FS

// schemaFiles maps each embedded file to its $id.
var schemaFiles = map[string]string{
	"schema/bom-1.6.schema.json":  "http://cyclonedx.org/schema/bom-1.6.schema.json",
	"schema/spdx.schema.json":     "http://cyclonedx.org/schema/spdx.schema.json",
	"schema/jsf-0.82.schema.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
}

// MaxBOMSize caps what [Validate] reads.
const MaxBOMSize = 256 << 20

// ErrInvalid is wrapped by [Validate] when the document does not conform
// to the CycloneDX 1.6 schema (check with errors.Is). Other errors mean the
// document could not be read.
var ErrInvalid = errors.New("not a valid CycloneDX 1.6 BOM")

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for file, id := range schemaFiles {
		raw, err := schemaFS.ReadFile(file)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, err
		}
	}
	return c.Compile(schemaFiles["schema/bom-1.6.schema.json"])
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
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}
