package policy

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	p, err := Parse([]byte(`{"allow": ["sklearn.*", "xgboost.core.Booster", {"name": "mylib.A.B", "source": "me"}, "os.system", "pathlib.*"], "deny": ["mylib.bad"]}`), "test")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		module, name string
		want         Class
	}{
		{"collections", "OrderedDict", Allowed},
		{"torch._utils", "_rebuild_tensor_v2", Allowed},
		{"__builtin__", "set", Allowed}, // Python 2 name, fix_imports
		{"sklearn.linear_model._logistic", "LogisticRegression", Allowed},
		{"sklearn", "utils.os.system", Denied}, // traversal reaches os
		{"sklearn", "utils.Thing", Unknown},    // dotted: wildcard does not allow
		{"xgboost.core", "Booster", Allowed},
		{"xgboost", "core.Booster", Allowed}, // same full path
		{"xgboost.core", "DMatrix", Unknown},
		{"mylib", "A.B", Allowed},
		{"mylib", "bad", Denied},
		{"os", "system", Denied},          // deny wins over an exact allow
		{"pathlib", "PosixPath", Allowed}, // allowed by the test policy; harmless constructor
		{"pathlib", "os.system", Denied},  // traversal to os is still denied
		{"types", "SimpleNamespace", Unknown},
		{"types", "FunctionType", Denied},
		{"collections", "OrderedDict.__globals__", Denied},
		{"numpy", "eval", Denied}, // *.eval
		{"builtins", "getattr", Denied},
		{"__builtin__", "eval", Denied},
		{"subprocess", "Popen", Denied},
		{"torch", "load", Denied},
		{"torch", "serialization.load", Denied},
		{"nosuchmodule", "thing", Unknown},
	}
	for _, c := range cases {
		if got := p.Check(c.module, c.name).Class; got != c.want {
			t.Errorf("%s.%s: %s, want %s", c.module, c.name, got, c.want)
		}
	}
}

func TestBuiltinEntriesHaveSources(t *testing.T) {
	p := Default()
	for _, m := range []map[string]Entry{p.allowExact, p.denyExact, p.allowMod, p.denyMod, p.denyAnyName} {
		for k, e := range m {
			if e.Source == "" || e.Source == "builtin" {
				t.Errorf("%s: no source", k)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, doc := range []string{
		`{"allow": ["*.x"]}`,
		`{"allow": ["nodots"]}`,
		`{"allow": ["bad name.x"]}`,
		`{"allow": [], "extra": 1}`,
		`{"allow": []} {}`,
		`not json`,
	} {
		if _, err := Parse([]byte(doc), "t"); !errors.Is(err, ErrBadPolicy) {
			t.Errorf("%s: err %v, want ErrBadPolicy", doc, err)
		}
	}
}
