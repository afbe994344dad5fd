package oms

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	attestationv1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Type URIs and media types of the OMS layers.
const (
	// StatementType is the in-toto Statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType is the OMS v1.0 predicate type.
	PredicateType = "https://model_signing/signature/v1.0"
	// LegacyPredicateType is the predicate model_signing 0.2.0 wrote: file
	// digests as subjects, no serialization. Verified, never produced.
	LegacyPredicateType = "https://model_signing/Digests/v0.1"
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
)

// MaxPayloadSize caps a DSSE payload (the statement JSON). A manifest of a
// million files fits in well under this.
const MaxPayloadSize = 128 << 20

// ErrUnsupported marks a signature that uses a feature custody cannot check
// (hash algorithm, key type, serialization method). Check with errors.Is.
var ErrUnsupported = errors.New("unsupported")

// Resource is one OMS resource descriptor: a file (or, for the "shards"
// method, a byte range "path:start:end") and its hex digest.
type Resource struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Digest    string `json:"digest"`
}

// Serialization records how the model was enumerated and hashed, so that a
// verifier reproduces the same manifest (OMS §5.2.2).
type Serialization struct {
	Method        string   `json:"method"`
	HashType      string   `json:"hash_type"`
	ShardSize     int64    `json:"shard_size,omitempty"`
	AllowSymlinks bool     `json:"allow_symlinks"`
	IgnorePaths   []string `json:"ignore_paths,omitempty"`
}

// Statement is a parsed or to-be-signed OMS statement.
type Statement struct {
	// SubjectName is informational only (OMS §6.5): the model's basename.
	SubjectName string
	// RootDigest is subject[0].digest.sha256: SHA-256 over the raw resource
	// digests in manifest order (OMS §6.5.1).
	RootDigest [32]byte
	Resources  []Resource
	// Serialization holds the recorded parameters. For the legacy v0.1
	// predicate it is the implied {files, sha256, no symlinks}.
	Serialization Serialization
	// PredicateType is PredicateType or LegacyPredicateType.
	PredicateType string
}

// RootDigest computes the OMS root digest of resources in the given order:
// SHA-256 over the concatenated raw digest bytes (OMS §6.5.1).
func RootDigest(resources []Resource) ([32]byte, error) {
	h := sha256.New()
	for _, r := range resources {
		raw, err := hex.DecodeString(r.Digest)
		if err != nil {
			return [32]byte{}, fmt.Errorf("resource %q: digest is not hex", r.Name)
		}
		h.Write(raw)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d, nil
}

// NewStatement builds the statement for a model named name (its basename)
// from its manifest. Resources must be in OMS order (sorted by name, byte
// order) and valid; the root digest is computed from them.
func NewStatement(name string, resources []Resource, ser Serialization) (*Statement, error) {
	if name == "" {
		return nil, errors.New("statement: empty subject name")
	}
	if len(resources) == 0 {
		return nil, errors.New("statement: no resources (an empty model cannot be signed)")
	}
	if err := validateSerialization(&ser); err != nil {
		return nil, err
	}
	if err := validateResources(resources, ser); err != nil {
		return nil, err
	}
	if !slices.IsSortedFunc(resources, func(a, b Resource) int { return strings.Compare(a.Name, b.Name) }) {
		return nil, errors.New("statement: resources are not sorted by name")
	}
	root, err := RootDigest(resources)
	if err != nil {
		return nil, err
	}
	ser.IgnorePaths = slices.Clone(ser.IgnorePaths)
	return &Statement{
		SubjectName:   name,
		RootDigest:    root,
		Resources:     slices.Clone(resources),
		Serialization: ser,
		PredicateType: PredicateType,
	}, nil
}

// statementJSON fixes the field order of the payload custody writes.
type statementJSON struct {
	Type          string        `json:"_type"`
	Subject       []subjectJSON `json:"subject"`
	PredicateType string        `json:"predicateType"`
	Predicate     predicateJSON `json:"predicate"`
}

type subjectJSON struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type predicateJSON struct {
	Resources     []Resource    `json:"resources"`
	Serialization Serialization `json:"serialization"`
}

// Marshal returns the statement's JSON, the DSSE payload.
func (s *Statement) Marshal() ([]byte, error) {
	if s.PredicateType != PredicateType {
		return nil, fmt.Errorf("statement: refusing to write predicate type %q", s.PredicateType)
	}
	return json.Marshal(statementJSON{
		Type: StatementType,
		Subject: []subjectJSON{{
			Name:   s.SubjectName,
			Digest: map[string]string{"sha256": hex.EncodeToString(s.RootDigest[:])},
		}},
		PredicateType: PredicateType,
		Predicate:     predicateJSON{Resources: s.Resources, Serialization: s.Serialization},
	})
}

// ParseStatement parses and validates a DSSE payload as an OMS statement.
//
// It is strict where ambiguity could change what was signed (duplicate keys,
// unknown predicate or serialization fields, a subject digest that does not
// match the resources, repeated resource names) and lenient where the Python
// reference varies harmlessly: key order, integral floats such as
// 1000000000.0 for shard_size, keyid forms, and the deprecated v0.1
// predicate of model_signing 0.2.0.
func ParseStatement(payload []byte) (*Statement, error) {
	if len(payload) > MaxPayloadSize {
		return nil, fmt.Errorf("statement: payload of %d bytes exceeds the %d-byte limit", len(payload), MaxPayloadSize)
	}
	if err := checkStrictJSON(payload); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	var st attestationv1.Statement
	if err := protojson.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("statement: not an in-toto statement: %w", err)
	}
	if st.GetType() != StatementType {
		return nil, fmt.Errorf("statement: _type is %q, want %q", st.GetType(), StatementType)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	switch st.GetPredicateType() {
	case PredicateType:
		return parseV1(payload, &st)
	case LegacyPredicateType:
		return parseLegacy(&st)
	default:
		return nil, fmt.Errorf("statement: predicate type %q is not %q", st.GetPredicateType(), PredicateType)
	}
}

func parseV1(payload []byte, st *attestationv1.Statement) (*Statement, error) {
	subjects := st.GetSubject()
	if len(subjects) != 1 {
		return nil, fmt.Errorf("statement: %d subjects, want exactly 1", len(subjects))
	}
	subj := subjects[0]
	if subj.GetName() == "" {
		return nil, errors.New("statement: subject has no name")
	}
	rootHex, ok := subj.GetDigest()["sha256"]
	if !ok {
		return nil, errors.New("statement: subject has no sha256 digest")
	}
	root, err := parseHex32(rootHex)
	if err != nil {
		return nil, fmt.Errorf("statement: subject digest: %w", err)
	}

	// The predicate is read from the payload bytes with encoding/json rather
	// than from the protobuf Struct, which has turned integers into floats.
	// Duplicate keys were rejected above, so both parsers see one value.
	var outer struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &outer); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	var pred map[string]json.RawMessage
	if err := json.Unmarshal(outer.Predicate, &pred); err != nil {
		return nil, fmt.Errorf("statement: predicate: %w", err)
	}
	for k := range pred {
		if k != "resources" && k != "serialization" {
			return nil, fmt.Errorf("statement: unknown predicate field %q", k)
		}
	}
	if pred["resources"] == nil || pred["serialization"] == nil {
		return nil, errors.New("statement: predicate needs both resources and serialization")
	}
	ser, err := parseSerialization(pred["serialization"])
	if err != nil {
		return nil, err
	}
	var resources []Resource
	// Resource descriptors may carry extra in-toto fields (OMS §5.2.1): the
	// plain decoder ignores them.
	if err := json.Unmarshal(pred["resources"], &resources); err != nil {
		return nil, fmt.Errorf("statement: resources: %w", err)
	}
	if len(resources) == 0 {
		return nil, errors.New("statement: no resources")
	}
	if err := validateResources(resources, *ser); err != nil {
		return nil, err
	}
	got, err := RootDigest(resources)
	if err != nil {
		return nil, err
	}
	if got != root {
		return nil, fmt.Errorf("statement: subject digest %x does not match the resources (root digest %x)", root, got)
	}
	return &Statement{
		SubjectName:   subj.GetName(),
		RootDigest:    root,
		Resources:     resources,
		Serialization: *ser,
		PredicateType: PredicateType,
	}, nil
}

func parseSerialization(raw json.RawMessage) (*Serialization, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("statement: serialization: %w", err)
	}
	var ser Serialization
	var haveSymlinks bool
	for k, v := range fields {
		var err error
		switch k {
		case "method":
			err = json.Unmarshal(v, &ser.Method)
		case "hash_type":
			err = json.Unmarshal(v, &ser.HashType)
		case "allow_symlinks":
			haveSymlinks = true
			err = json.Unmarshal(v, &ser.AllowSymlinks)
		case "ignore_paths":
			err = json.Unmarshal(v, &ser.IgnorePaths)
		case "shard_size":
			ser.ShardSize, err = parseSize(v)
		default:
			return nil, fmt.Errorf("statement: unknown serialization field %q", k)
		}
		if err != nil {
			return nil, fmt.Errorf("statement: serialization.%s: %w", k, err)
		}
	}
	if !haveSymlinks {
		return nil, errors.New("statement: serialization.allow_symlinks is missing")
	}
	if ser.Method == "files" && fields["shard_size"] != nil {
		return nil, errors.New("statement: serialization.shard_size must be absent for method files")
	}
	if err := validateSerialization(&ser); err != nil {
		return nil, err
	}
	return &ser, nil
}

// parseSize reads a positive integer that the Python reference may have
// written as a float (1000000000.0).
func parseSize(raw json.RawMessage) (int64, error) {
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return 0, err
	}
	if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f != math.Trunc(f) || f < 1 || f > 1<<53 {
		return 0, fmt.Errorf("%s is not a positive integer", n)
	}
	return int64(f), nil
}

func validateSerialization(ser *Serialization) error {
	switch ser.Method {
	case "files":
		if ser.ShardSize != 0 {
			return errors.New("statement: shard_size is set for method files")
		}
	case "shards":
		if ser.ShardSize <= 0 {
			return errors.New("statement: method shards needs a positive shard_size")
		}
	default:
		return fmt.Errorf("statement: unknown serialization method %q", ser.Method)
	}
	switch ser.HashType {
	case "sha256", "blake2b", "blake3":
	default:
		return fmt.Errorf("statement: unknown hash_type %q", ser.HashType)
	}
	for _, p := range ser.IgnorePaths {
		if p == "" || !utf8.ValidString(p) || strings.ContainsRune(p, 0) {
			return fmt.Errorf("statement: invalid ignore path %q", p)
		}
	}
	return nil
}

func validateResources(resources []Resource, ser Serialization) error {
	seen := make(map[string]bool, len(resources))
	for _, r := range resources {
		if err := validateName(r.Name); err != nil {
			return fmt.Errorf("statement: resource %q: %w", r.Name, err)
		}
		if seen[r.Name] {
			return fmt.Errorf("statement: resource %q is listed twice", r.Name)
		}
		seen[r.Name] = true
		if !validAlgorithm(r.Algorithm, ser) {
			return fmt.Errorf("statement: resource %q: algorithm %q does not match hash_type %q", r.Name, r.Algorithm, ser.HashType)
		}
		if err := validateHex(r.Digest, ser.HashType); err != nil {
			return fmt.Errorf("statement: resource %q: %w", r.Name, err)
		}
	}
	return nil
}

// validAlgorithm accepts the OMS form (algorithm == hash_type) and, for
// shards, the Python reference's "sha256-sharded-<shard size>".
func validAlgorithm(alg string, ser Serialization) bool {
	if alg == ser.HashType {
		return true
	}
	return ser.Method == "shards" && alg == fmt.Sprintf("%s-sharded-%d", ser.HashType, ser.ShardSize)
}

// validateName rejects resource names that cannot be relative paths inside a
// model root. "." is the Python reference's name for a single-file model.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return errors.New("name is not valid UTF-8 text")
	case name == ".":
		return nil
	case strings.HasPrefix(name, "/"):
		return errors.New("absolute path")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return errors.New("path escapes the model root")
		}
	}
	return nil
}

func validateHex(s, hashType string) error {
	want := map[string]int{"sha256": 64, "blake2b": 128, "blake3": 64}[hashType]
	if len(s) != want {
		return fmt.Errorf("digest has %d hex digits, want %d", len(s), want)
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errors.New("digest is not lowercase hex")
		}
	}
	return nil
}

func parseHex32(s string) ([32]byte, error) {
	var d [32]byte
	if err := validateHex(s, "sha256"); err != nil {
		return d, err
	}
	hex.Decode(d[:], []byte(s))
	return d, nil
}

// parseLegacy converts the model_signing 0.2.0 statement (one subject per
// file, digest sha256, predicate unused) to resources.
func parseLegacy(st *attestationv1.Statement) (*Statement, error) {
	ser := Serialization{Method: "files", HashType: "sha256"}
	var resources []Resource
	for _, s := range st.GetSubject() {
		d, ok := s.GetDigest()["sha256"]
		if !ok {
			return nil, fmt.Errorf("statement: legacy subject %q has no sha256 digest", s.GetName())
		}
		resources = append(resources, Resource{Name: s.GetName(), Algorithm: "sha256", Digest: d})
	}
	if len(resources) == 0 {
		return nil, errors.New("statement: no resources")
	}
	if err := validateResources(resources, ser); err != nil {
		return nil, err
	}
	root, err := RootDigest(resources)
	if err != nil {
		return nil, err
	}
	return &Statement{
		SubjectName:   "",
		RootDigest:    root,
		Resources:     resources,
		Serialization: ser,
		PredicateType: LegacyPredicateType,
	}, nil
}

// CheckSupported reports an ErrUnsupported error when the statement uses a
// hash algorithm custody cannot recompute.
func (s *Statement) CheckSupported() error {
	if s.Serialization.HashType != "sha256" {
		return fmt.Errorf("%w: hash_type %q (custody recomputes sha256 manifests only)", ErrUnsupported, s.Serialization.HashType)
	}
	return nil
}
