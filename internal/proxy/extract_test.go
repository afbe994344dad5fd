package proxy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The examples of RFC 6901 section 5.
func TestPointerRFC6901(t *testing.T) {
	doc, err := decodeAny([]byte(`{
      "foo": ["bar", "baz"],
      "": 0,
      "a/b": 1,
      "c%d": 2,
      "e^f": 3,
      "g|h": 4,
      "i\\j": 5,
      "k\"l": 6,
      " ": 7,
      "m~n": 8
   }`))
	if err != nil {
		t.Fatal(err)
	}
	for ptr, want := range map[string]string{
		``:       `{"":0," ":7,"a/b":1,"c%d":2,"e^f":3,"foo":["bar","baz"],"g|h":4,"i\\j":5,"k\"l":6,"m~n":8}`,
		`/foo`:   `["bar","baz"]`,
		`/foo/0`: `"bar"`,
		`/`:      `0`,
		`/a~1b`:  `1`,
		`/c%d`:   `2`,
		`/e^f`:   `3`,
		`/g|h`:   `4`,
		`/i\j`:   `5`,
		`/k"l`:   `6`,
		`/ `:     `7`,
		`/m~0n`:  `8`,
	} {
		p, err := parsePointer(ptr)
		if err != nil {
			t.Fatalf("%q: %v", ptr, err)
		}
		v, err := resolve(doc, p.tokens)
		if err != nil {
			t.Fatalf("%q: %v", ptr, err)
		}
		got, _ := json.Marshal(v)
		if string(got) != want {
			t.Errorf("%q = %s, want %s", ptr, got, want)
		}
	}
	for _, bad := range []string{"foo", "/a~2", "/a~", "/*/*"} {
		if _, err := parsePointer(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for _, missing := range []string{"/foo/2", "/foo/01", "/foo/-", "/nope", "/foo/0/x"} {
		p, _ := parsePointer(missing)
		if _, err := resolve(doc, p.tokens); err == nil {
			t.Errorf("%q resolved", missing)
		}
	}
}

func TestParseMappingErrors(t *testing.T) {
	for _, bad := range []string{
		`{"features": "/a"}`,
		`{"features": "/a/*", "prediction": "/b"}`,
		`{"features": "a", "prediction": "/b"}`,
		`{"unknown": 1}`,
		`{"segment": {"s": "/x/*"}}`,
		`{"paths": ["nope"]}`,
		`{"classes": ["a", "a"]}`,
		`{} {}`,
	} {
		if _, err := ParseMapping([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestExtractKServeShapes(t *testing.T) {
	for _, tc := range []struct {
		name, req, resp, want string
	}{
		{"columnar inputs, scalar output",
			`{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1,2]},{"name":"b","shape":[2,1],"datatype":"BYTES","data":[["x"],["y"]]}]}`,
			`{"outputs":[{"name":"p","shape":[2],"datatype":"FP32","data":[0.1,0.2]}]}`,
			`[{"a":1,"b":"x"} 0.1] [{"a":2,"b":"y"} 0.2]`},
		{"matrix input, probabilities",
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP64","data":[1,2,3]}]}`,
			`{"outputs":[{"name":"probs","shape":[1,2],"datatype":"FP64","data":[[0.3,0.7]]}]}`,
			`[{"x_0":1,"x_1":2,"x_2":3} {"0":0.3,"1":0.7}]`},
		{"scalar input",
			`{"inputs":[{"name":"x","shape":[],"datatype":"BOOL","data":true}]}`,
			`{"outputs":[{"name":"label","shape":[1],"datatype":"BYTES","data":["yes"]}]}`,
			`[{"x":true} yes]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := (*Mapping)(nil).ExtractKServe([]byte(tc.req), []byte(tc.resp))
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, r := range rows {
				f, _ := json.Marshal(r.Features)
				p := fmt.Sprint(r.Prediction)
				if m, ok := r.Prediction.(map[string]any); ok {
					b, _ := json.Marshal(m)
					p = string(b)
				}
				parts = append(parts, fmt.Sprintf("[%s %s]", f, p))
			}
			if got := strings.Join(parts, " "); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	for _, bad := range [][2]string{
		{`{"inputs":[{"name":"a","shape":[2],"data":[1]}]}`, `{"outputs":[{"name":"p","shape":[2],"data":[1,2]}]}`},
		{`{"inputs":[{"name":"a","shape":[2],"data":[1,2]}]}`, `{"outputs":[{"name":"p","shape":[3],"data":[1,2,3]}]}`},
		{`{"inputs":[{"name":"a","shape":[2],"data":[1,2]},{"name":"b","shape":[3],"data":[1,2,3]}]}`, `{"outputs":[{"name":"p","shape":[2],"data":[1,2]}]}`},
		{`{"inputs":[{"name":"a","shape":[-1],"data":[]}]}`, `{"outputs":[]}`},
		{`{"inputs":[{"name":"a","shape":[1],"data":[{"x":1}]}]}`, `{"outputs":[{"name":"p","shape":[1],"data":[1]}]}`},
		{`{"inputs":[{"name":"a","shape":[100000000,100000000],"data":[]}]}`, `{"outputs":[{"name":"p","shape":[1],"data":[1]}]}`},
	} {
		if _, err := (*Mapping)(nil).ExtractKServe([]byte(bad[0]), []byte(bad[1])); err == nil {
			t.Errorf("accepted %s -> %s", bad[0], bad[1])
		}
	}
}

// checkRows asserts the invariants every extracted row must satisfy: flat
// features, a WIRE-valid prediction, and a record that marshals.
func checkRows(t *testing.T, rows []row) {
	t.Helper()
	if len(rows) > MaxRows {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		for k, v := range r.Features {
			if !isScalar(v) {
				t.Fatalf("feature %q is not flat: %T", k, v)
			}
		}
		switch p := r.Prediction.(type) {
		case json.Number, string:
		case map[string]any:
			for _, v := range p {
				if _, ok := v.(json.Number); !ok {
					t.Fatalf("prediction value %T", v)
				}
			}
		default:
			t.Fatalf("prediction %T", r.Prediction)
		}
		if _, err := json.Marshal(Record{Features: r.Features, Prediction: r.Prediction, Segment: r.Segment}); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzExtractKServe(f *testing.F) {
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`),
		[]byte(`{"outputs":[{"name":"p","shape":[2,2],"datatype":"FP32","data":[[0.1,0.9],[0.5,0.5]]}]}`), `{"classes":["a","b"]}`)
	f.Add([]byte(`{"inputs":[{"name":"a","shape":[1],"datatype":"BYTES","data":["s"]}]}`),
		[]byte(`{"outputs":[{"name":"l","shape":[1],"datatype":"BYTES","data":["c"]}]}`), `{"output":"l","segment":{"s":"/parameters/s"}}`)
	f.Fuzz(func(t *testing.T, req, resp []byte, mapping string) {
		var m *Mapping
		if mapping != "" {
			var err error
			if m, err = ParseMapping([]byte(mapping)); err != nil {
				return
			}
		}
		rows, err := m.ExtractKServe(req, resp)
		if err != nil {
			return
		}
		checkRows(t, rows)
	})
}

func FuzzExtractPointers(f *testing.F) {
	f.Add(`{"features":"/instances/*","prediction":"/predictions/*","segment":{"s":"/meta/s"}}`,
		[]byte(`{"instances":[{"a":1},{"a":2}],"meta":{"s":"x"}}`), []byte(`{"predictions":[1,[0.1,0.9]]}`))
	f.Add(`{"features":"/x","prediction":"/y","feature_names":["a","b"],"classes":["n","p"]}`,
		[]byte(`{"x":[1,"s"]}`), []byte(`{"y":[0.2,0.8]}`))
	f.Add(`{"features":"/a~1b/0","prediction":""}`, []byte(`{"a/b":[{"k":true}]}`), []byte(`"label"`))
	f.Fuzz(func(t *testing.T, mapping string, req, resp []byte) {
		m, err := ParseMapping([]byte(mapping))
		if err != nil || m.Features == nil {
			return
		}
		rows, err := m.ExtractPointers(req, resp)
		if err != nil {
			return
		}
		checkRows(t, rows)
	})
}

func TestIsKServeInfer(t *testing.T) {
	for path, want := range map[string]bool{
		"/v2/models/m/infer":                 true,
		"/v2/models/m/versions/3/infer":      true,
		"/v2/models/m-1.a/versions/v1/infer": true,
		"/v2/models//infer":                  false,
		"/v2/models/m/versions//infer":       false,
		"/v2/models/m/x/infer":               false,
		"/v2/models/m/versions/1/2/infer":    false,
		"/v2/models/m/infer/":                false,
		"/v2/models/m":                       false,
		"/v1/models/m/infer":                 false,
		"/v2/models/m/versions/1/infer/x":    false,
	} {
		if got := IsKServeInfer(path); got != want {
			t.Errorf("IsKServeInfer(%q) = %v", path, got)
		}
	}
}
