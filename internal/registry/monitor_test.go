package registry_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store/sqlite"
)

// A monitor result is one logged monitor.result event; it needs the alias
// permission, a valid name and a JSON object within the size cap.
func TestRecordMonitorResult(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir()+"/r.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := gatedFixture(t, st)
	mon := registry.Actor{Name: "monitor:churn", Role: registry.RoleApprover}
	ok := json.RawMessage(`{"monitor": "churn", "status": "breached", "labelled": 300, "metrics": [{"metric": "ece", "value": "0.49"}]}`)
	if err := f.svc.RecordMonitorResult(t.Context(), mon, "churn", ok); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		actor  registry.Actor
		name   string
		result json.RawMessage
		want   error
	}{
		{registry.Actor{Name: "token:v", Role: registry.RoleViewer}, "churn", ok, registry.ErrForbidden},
		{mon, "Bad Name", ok, registry.ErrInvalid},
		{mon, "churn", json.RawMessage(`[1]`), registry.ErrInvalid},
		{mon, "churn", json.RawMessage(`{"x": "` + strings.Repeat("a", registry.MaxMonitorResultBytes) + `"}`), registry.ErrInvalid},
	} {
		if err := f.svc.RecordMonitorResult(t.Context(), tc.actor, tc.name, tc.result); !errors.Is(err, tc.want) {
			t.Errorf("%s %q: got %v, want %v", tc.actor.Name, tc.name, err, tc.want)
		}
	}
	evs, err := st.Events(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == "monitor.result" {
			n++
			if e.Subject != "monitor:churn" || e.Actor != "monitor:churn" {
				t.Fatalf("event %+v", e)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d monitor.result events, want 1", n)
	}
}
