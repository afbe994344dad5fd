// Package bom builds CycloneDX 1.6 ML-BOMs (AI bills of materials) from
// registry records and validates them against the official CycloneDX 1.6
// JSON schema.
//
// [Build] is a pure function of the domain records of one model version (the
// version, its training run, the run's input datasets and the model's
// metadata): no I/O, no clock unless [Options] leaves the time out. The
// mapping from registry fields to CycloneDX fields is documented in
// docs/bom.md; in short:
//
//   - the model version is metadata.component, of type
//     machine-learning-model, with the SHA-256 of its pinned digest, one
//     "file" sub-component per OMS resource, a modelCard (datasets,
//     performance metrics from the run's metrics) and the run's parameters,
//     signers and OMS root as "custody:" properties;
//   - every input dataset is a component of type data;
//   - every package of the environment lock is a library component with a
//     pkg:pypi purl, and the model depends on all of them;
//   - the training run is the formulation: a workflow whose inputs are the
//     datasets and the parameters and whose output is the model, with the
//     code repository and commit and the build image.
//
// [Validate] checks a BOM against the schemas embedded from the
// cyclonedx-go module (schema/README.md says which files).
package bom

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/custody-ml/custody/internal/envcheck"
	"github.com/custody-ml/custody/internal/store"
)

// Input is what a BOM is built from: the records of one model version.
// Version is required; Run and Datasets are empty for a version registered
// without a run; Model (the registered model's metadata) is optional.
type Input struct {
	Model    *store.Model
	Version  *store.Version
	Run      *store.Run
	Datasets []store.Dataset
}

// Options are the parts of a BOM that do not follow from the records.
type Options struct {
	// Timestamp is metadata.timestamp; zero means time.Now().
	Timestamp time.Time
	// ToolVersion is the version of custody named in metadata.tools.
	ToolVersion string
}

// PropertyPrefix prefixes every property custody writes (CycloneDX
// property taxonomy: a namespace per tool).
const PropertyPrefix = "custody:"

// ErrNoVersion is returned by [Build] when the input has no version.
var ErrNoVersion = errors.New("bom: no model version")

// Build returns the CycloneDX 1.6 ML-BOM of a model version. Encode it with
// [Encode]. An environment lock that is not custody's format
// (envcheck.Schema) contributes no packages (the BOM says so in the
// formula's properties).
func Build(in Input, opts Options) (*cdx.BOM, error) {
	v := in.Version
	if v == nil {
		return nil, ErrNoVersion
	}
	ts := opts.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	b := cdx.NewBOM()
	b.SpecVersion = cdx.SpecVersion1_6
	b.SerialNumber = serialNumber(v)
	b.Version = 1

	model := modelComponent(in)
	b.Metadata = &cdx.Metadata{
		Timestamp: ts.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "custody", Version: opts.ToolVersion,
			ExternalReferences: &[]cdx.ExternalReference{{Type: cdx.ERTypeVCS, URL: "https://github.com/custody-ml/custody"}},
		}}},
		Component: model,
	}

	var comps []cdx.Component
	var dsRefs []cdx.MLDatasetChoice
	for i := range in.Datasets {
		c := datasetComponent(&in.Datasets[i])
		comps = append(comps, c)
		dsRefs = append(dsRefs, cdx.MLDatasetChoice{Ref: c.BOMRef})
	}
	if len(dsRefs) > 0 {
		model.ModelCard.ModelParameters = &cdx.MLModelParameters{Datasets: &dsRefs}
	}

	var lock *envcheck.Lock
	lockNote := ""
	if in.Run != nil && len(in.Run.EnvLock) > 0 {
		lock, lockNote = parseLock(in.Run.EnvLock)
	}
	var pkgRefs []string
	if lock != nil {
		for _, p := range lock.Packages {
			purl := pypiPURL(p.Name, p.Version)
			comps = append(comps, cdx.Component{
				BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version,
				PackageURL: purl, Scope: cdx.ScopeRequired,
			})
			pkgRefs = append(pkgRefs, purl)
		}
	}
	if len(comps) > 0 {
		b.Components = &comps
	}

	deps := []cdx.Dependency{{Ref: model.BOMRef}}
	if len(pkgRefs) > 0 {
		refs := append([]string(nil), pkgRefs...)
		deps[0].Dependencies = &refs
	}
	for _, c := range comps {
		deps = append(deps, cdx.Dependency{Ref: c.BOMRef})
	}
	b.Dependencies = &deps

	if in.Run != nil {
		b.Formulation = &[]cdx.Formula{formula(in.Run, model.BOMRef, in.Datasets, lock, lockNote)}
	}
	return b, nil
}

// Encode writes b as indented CycloneDX 1.6 JSON.
func Encode(w io.Writer, b *cdx.BOM) error {
	return cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false).EncodeVersion(b, cdx.SpecVersion1_6)
}

// ModelRef is the bom-ref of a model version: its purl.
func ModelRef(v *store.Version) string {
	return "pkg:generic/" + purlEscape(v.Model) + "@" + purlEscape(v.Version) + "?checksum=sha256:" + v.Manifest.Digest.Hex()
}

// DatasetRef is the bom-ref of a dataset version.
func DatasetRef(d *store.Dataset) string {
	return "dataset:" + d.Name + "@" + d.Version
}

// serialNumber derives a stable urn:uuid from the model's name, version and
// pinned digest (an RFC 9562 version 8 UUID over SHA-256), so that the BOM
// of a version always has the same serial number.
func serialNumber(v *store.Version) string {
	h := sha256.Sum256([]byte("custody-bom\x00" + v.Model + "\x00" + v.Version + "\x00" + v.Manifest.Digest.String()))
	u := h[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func prop(name, value string) cdx.Property {
	return cdx.Property{Name: PropertyPrefix + name, Value: value}
}

func modelComponent(in Input) *cdx.Component {
	v := in.Version
	ref := ModelRef(v)
	props := []cdx.Property{
		prop("digest", v.Manifest.Digest.String()),
		prop("oms_root", v.Manifest.OMSRoot.String()),
		prop("serialization", v.Manifest.Serialization.Method),
	}
	for _, kv := range [][2]string{{"uri", v.URI}, {"format", v.Format}, {"scan_verdict", v.ScanVerdict}, {"run_id", v.RunID}, {"created_by", v.CreatedBy}} {
		if kv[1] != "" {
			props = append(props, prop(kv[0], kv[1]))
		}
	}
	props = append(props, prop("created_at", v.CreatedAt.UTC().Format(time.RFC3339)))
	for _, s := range v.Signatures {
		props = append(props, prop("signer", s.Signer))
		for _, k := range s.KeyIDs {
			props = append(props, prop("signer_key_id", k))
		}
	}
	if in.Run != nil {
		for _, k := range slices.Sorted(maps.Keys(in.Run.Params)) {
			props = append(props, prop("param:"+k, in.Run.Params[k]))
		}
	}
	sizes := map[string]int64{}
	for _, f := range v.Manifest.Files {
		sizes[f.Name] = f.Size
	}
	var files []cdx.Component
	for _, r := range v.Manifest.Resources {
		f := cdx.Component{
			BOMRef: ref + "#" + r.Name, Type: cdx.ComponentTypeFile, Name: r.Name,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: r.Digest}},
		}
		if sz, ok := sizes[r.Name]; ok {
			f.Properties = &[]cdx.Property{prop("size", strconv.FormatInt(sz, 10))}
		}
		files = append(files, f)
	}
	c := &cdx.Component{
		BOMRef: ref, Type: cdx.ComponentTypeMachineLearningModel, Name: v.Model, Version: v.Version,
		PackageURL: ref,
		Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: v.Manifest.Digest.Hex()}},
		ModelCard:  &cdx.MLModelCard{BOMRef: ref + "#model-card"},
		Properties: &props,
	}
	if len(files) > 0 {
		c.Components = &files
	}
	if v.URI != "" {
		c.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeDistribution, URL: v.URI}}
	}
	if m := in.Model; m != nil {
		c.Description = m.Description
		if len(m.Tags) > 0 {
			tags := append([]string(nil), m.Tags...)
			c.Tags = &tags
		}
		if len(m.Owners) > 0 {
			var owners []cdx.OrganizationalContact
			for _, o := range m.Owners {
				owners = append(owners, cdx.OrganizationalContact{Name: o})
			}
			c.Authors = &owners
		}
	}
	if in.Run != nil && len(in.Run.Metrics) > 0 {
		var ms []cdx.MLPerformanceMetric
		keys := make([]string, 0, len(in.Run.Metrics))
		for k := range in.Run.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ms = append(ms, cdx.MLPerformanceMetric{Type: k, Value: strconv.FormatFloat(in.Run.Metrics[k], 'g', -1, 64)})
		}
		c.ModelCard.QuantitativeAnalysis = &cdx.MLQuantitativeAnalysis{PerformanceMetrics: &ms}
	}
	return c
}

func datasetComponent(d *store.Dataset) cdx.Component {
	ref := DatasetRef(d)
	hashes := []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: d.Digest.Hex()}}
	if len(d.Files) == 1 && d.DVCMD5 == d.Files[0].MD5 {
		// A single file: DVC's md5 is the MD5 of its bytes. A directory's
		// "<md5>.dir" hashes DVC's listing, not the data: a property only.
		hashes = append(hashes, cdx.Hash{Algorithm: cdx.HashAlgoMD5, Value: d.DVCMD5})
	}
	props := []cdx.Property{
		prop("digest", d.Digest.String()),
		prop("dvc_md5", d.DVCMD5),
		prop("size", strconv.FormatInt(d.Size, 10)),
	}
	if d.Rows != nil {
		props = append(props, prop("rows", strconv.FormatInt(*d.Rows, 10)))
	}
	var files []cdx.Component
	for _, f := range d.Files {
		files = append(files, cdx.Component{
			BOMRef: ref + "#" + f.Path, Type: cdx.ComponentTypeFile, Name: f.Path,
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.SHA256}, {Algorithm: cdx.HashAlgoMD5, Value: f.MD5}},
			Properties: &[]cdx.Property{prop("size", strconv.FormatInt(f.Size, 10))},
		})
	}
	data := cdx.ComponentData{Type: cdx.ComponentDataTypeDataset, Name: d.Name}
	if d.SourceURI != "" {
		data.Contents = &cdx.ComponentDataContents{URL: d.SourceURI}
	}
	c := cdx.Component{
		BOMRef: ref, Type: cdx.ComponentTypeData, Name: d.Name, Version: d.Version,
		Hashes: &hashes, Data: &[]cdx.ComponentData{data}, Properties: &props,
	}
	if len(files) > 0 {
		c.Components = &files
	}
	return c
}

func formula(r *store.Run, modelRef string, datasets []store.Dataset, lock *envcheck.Lock, lockNote string) cdx.Formula {
	runRef := "run:" + r.ID
	var inputs []cdx.TaskInput
	for i := range datasets {
		inputs = append(inputs, cdx.TaskInput{Resource: &cdx.ResourceReferenceChoice{Ref: DatasetRef(&datasets[i])}})
	}
	if len(r.Params) > 0 {
		var ps []cdx.Parameter
		for _, k := range slices.Sorted(maps.Keys(r.Params)) {
			ps = append(ps, cdx.Parameter{Name: k, Value: r.Params[k]})
		}
		inputs = append(inputs, cdx.TaskInput{Parameters: &ps})
	}
	wf := cdx.Workflow{
		BOMRef: runRef, UID: r.ID, Name: "training run " + r.ID,
		TaskTypes: &[]cdx.TaskType{cdx.TaskTypeBuild},
		Outputs:   &[]cdx.TaskOutput{{Type: cdx.TaskOutputTypeArtifact, Resource: &cdx.ResourceReferenceChoice{Ref: modelRef}}},
		TimeEnd:   r.CreatedAt.UTC().Format(time.RFC3339),
	}
	if len(inputs) > 0 {
		wf.Inputs = &inputs
	}
	var wprops []cdx.Property
	if r.CodeRepo != "" || r.CodeCommit != "" {
		if r.CodeRepo != "" {
			er := cdx.ExternalReference{Type: cdx.ERTypeVCS, URL: r.CodeRepo}
			if r.CodeCommit != "" {
				er.Comment = "commit " + r.CodeCommit
			}
			wf.ResourceReferences = &[]cdx.ResourceReferenceChoice{{ExternalReference: &er}}
			wprops = append(wprops, prop("code_repo", r.CodeRepo))
		}
		if r.CodeCommit != "" {
			wprops = append(wprops, prop("code_commit", r.CodeCommit))
		}
	}
	if r.CreatedBy != "" {
		wprops = append(wprops, prop("created_by", r.CreatedBy))
	}
	if len(wprops) > 0 {
		wf.Properties = &wprops
	}

	f := cdx.Formula{BOMRef: "formula:" + r.ID, Workflows: &[]cdx.Workflow{wf}}
	image := r.ImageDigest
	if image == "" && lock != nil {
		image = lock.ImageDigest
	}
	if hexd, ok := strings.CutPrefix(image, "sha256:"); ok && len(hexd) == 64 {
		f.Components = &[]cdx.Component{{
			BOMRef: "image:" + image, Type: cdx.ComponentTypeContainer, Name: "build image", Version: image,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hexd}},
		}}
	}
	var fprops []cdx.Property
	if image != "" {
		fprops = append(fprops, prop("image_digest", image))
	}
	if lock != nil {
		if lock.Python != nil {
			fprops = append(fprops, prop("python", lock.Python.Implementation+" "+lock.Python.Version))
		}
		if lock.OS.PrettyName != "" {
			fprops = append(fprops, prop("os", lock.OS.PrettyName))
		}
		if lock.OS.Arch != "" {
			fprops = append(fprops, prop("arch", lock.OS.Arch))
		}
		fprops = append(fprops, prop("env_captured_at", lock.CapturedAt.UTC().Format(time.RFC3339)))
	}
	if lockNote != "" {
		fprops = append(fprops, prop("env_lock", lockNote))
	}
	if len(fprops) > 0 {
		f.Properties = &fprops
	}
	return f
}

// parseLock reads a custody environment lock; anything else yields a note
// instead of packages.
func parseLock(raw json.RawMessage) (*envcheck.Lock, string) {
	var l envcheck.Lock
	if err := json.Unmarshal(raw, &l); err != nil || l.Schema != envcheck.Schema {
		return nil, "recorded in a format other than " + envcheck.Schema + "; packages not listed"
	}
	return &l, ""
}

// pypiPURL is the purl of a Python distribution (purl-spec PyPI type: the
// name lowercased with "_" as "-", which the lock's PEP 503 names already
// are).
func pypiPURL(name, version string) string {
	n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	return "pkg:pypi/" + purlEscape(n) + "@" + purlEscape(version)
}

// purlEscape percent-encodes everything but the unreserved characters of
// RFC 3986 (purl-spec: "+" in a version is "%2B").
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
