package predict_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/custody-ml/custody/internal/predstore/predtest"
)

type labelLog struct{ got []string }

func (l *labelLog) ObserveLabels(_ context.Context, ls []predict.JoinedLabel) {
	for _, j := range ls {
		l.got = append(l.got, fmt.Sprintf("%s=%s@%s", j.Label.RequestID, j.Label.Label, j.Record.Model))
	}
}

// Label observers see each request id's first label only, joined with its
// stored prediction; replacing labels are stored but not passed again.
func TestLabelObserverFirstLabelsOnly(t *testing.T) {
	st, err := predsql.OpenDir(t.Context(), t.TempDir(), predsql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if _, err := st.Append(t.Context(), []predstore.Record{predtest.Rec("a", "m", t0, 0.2), predtest.Rec("b", "m", t0, 0.7)}); err != nil {
		t.Fatal(err)
	}
	obs := &labelLog{}
	svc := predict.New(nil, st, predict.Options{LabelObservers: []predict.LabelObserver{obs}})
	parse := func(body string) []predict.LabelInput {
		in, err := predict.ParseLabels(strings.NewReader(body), true, false, predict.DefaultLimits(), t0)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	res, err := svc.Label(t.Context(), parse(`{"request_id": "a", "label": 1}
{"request_id": "b", "label": 0}
{"request_id": "b", "label": 1}
{"request_id": "zz", "label": 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 3 || len(res.Rejected) != 1 {
		t.Fatalf("result %+v", res)
	}
	if got := strings.Join(obs.got, " "); got != "a=1@m b=0@m" {
		t.Fatalf("observed %q", got)
	}
	// A correction of a is stored, and not observed again.
	if res, err = svc.Label(t.Context(), parse(`{"request_id": "a", "label": 0}`+"\n")); err != nil || res.Stored != 1 {
		t.Fatalf("relabel: %+v, %v", res, err)
	}
	if len(obs.got) != 2 {
		t.Fatalf("observed %v after a relabel", obs.got)
	}
	if _, l, err := st.Get(t.Context(), "a"); err != nil || string(l.Label) != "0" {
		t.Fatalf("label of a: %+v, %v", l, err)
	}
}
