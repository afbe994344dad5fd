package registry

import (
	"context"
	"errors"

	"github.com/custody-ml/custody/internal/store"
)

// Lineage is everything upstream of a model version: the run that produced
// it (parameters, metrics, code, image, environment lock) and the datasets
// that run read.
type Lineage struct {
	Version  *store.Version  `json:"version"`
	Run      *store.Run      `json:"run,omitempty"`
	Datasets []store.Dataset `json:"datasets"`
}

// Upstream returns the lineage of a model version. A version registered
// without a run has no run and no datasets.
func (s *Service) Upstream(ctx context.Context, model, version string) (*Lineage, error) {
	v, err := s.GetVersion(ctx, model, version)
	if err != nil {
		return nil, err
	}
	out := &Lineage{Version: v, Datasets: []store.Dataset{}}
	if v.RunID == "" {
		return out, nil
	}
	if out.Run, err = s.st.GetRun(ctx, v.RunID); err != nil {
		return nil, err
	}
	for _, in := range out.Run.Inputs {
		d, err := s.st.GetDataset(ctx, in.Name, in.Version)
		if err != nil {
			return nil, err
		}
		out.Datasets = append(out.Datasets, *d)
	}
	return out, nil
}

// Downstream is everything produced from a dataset version: the runs that
// read it and the model versions they produced.
type Downstream struct {
	Dataset  *store.Dataset       `json:"dataset"`
	Runs     []store.Run          `json:"runs"`
	Versions []store.ModelVersion `json:"versions"`
}

// DatasetUsage returns every run that read the dataset version and every
// model version those runs produced.
func (s *Service) DatasetUsage(ctx context.Context, name, version string) (*Downstream, error) {
	d, err := s.GetDataset(ctx, name, version)
	if err != nil {
		return nil, err
	}
	runs, err := s.st.RunsWithInput(ctx, store.DatasetRef{Name: name, Version: version})
	if err != nil {
		return nil, err
	}
	out := &Downstream{Dataset: d, Runs: runs, Versions: []store.ModelVersion{}}
	for _, r := range runs {
		if r.OutputModel == "" {
			continue
		}
		if _, err := s.st.GetVersion(ctx, r.OutputModel, r.OutputVersion); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out.Versions = append(out.Versions, store.ModelVersion{Model: r.OutputModel, Version: r.OutputVersion})
	}
	return out, nil
}
