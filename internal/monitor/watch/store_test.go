package watch_test

import (
	"testing"

	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/custody-ml/custody/internal/monitor/watch/watchtest"
)

func TestFileStore(t *testing.T) {
	watchtest.TestStore(t, func(t *testing.T) watch.SummaryStore {
		s, err := watch.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileStoreRejectsBadNames(t *testing.T) {
	s, err := watch.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState(t.Context(), "../escape", []byte("x")); err == nil {
		t.Fatal("monitor name with a path accepted")
	}
}
