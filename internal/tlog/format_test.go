package tlog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/tlog"
	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
)

var entryCases = []tlog.Entry{
	{Type: "version.register", Subject: "m@1", Actor: "token:0123456789ab", Time: time.Date(2026, 11, 22, 1, 2, 3, 120000000, time.UTC), Event: 7,
		Data: map[string]any{"model": "m", "digest": "sha256:00", "signers": []any{"b", "a"}, "size": json.Number("9007199254740991"), "ok": true, "none": nil}},
	{Type: "model.update", Subject: "ünïcode\u2028\"\\\x01\t", Actor: "a", Time: time.Unix(0, 0), Event: 0,
		Data: map[string]any{"€": "x", "z": "y", "\U0001F600": "emoji key sorts by UTF-16", "\uff61": "after the surrogate"}},
	{Type: "t", Subject: "", Actor: "", Time: time.Unix(1, 1), Event: 1 << 40, Data: map[string]any{"nested": map[string]any{"b": []any{map[string]any{"d": "e", "c": json.Number("-3")}}}}},
}

// Entries are RFC 8785 canonical: the reference implementation
// (cyberphone/json-canonicalization) leaves them unchanged, and they
// parse back to the same bytes.
func TestEntryCanonical(t *testing.T) {
	for _, e := range entryCases {
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ref, err := jsoncanonicalizer.Transform(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ref, b) {
			t.Fatalf("not JCS:\n got %s\nwant %s", b, ref)
		}
		p, err := tlog.ParseEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := p.Marshal()
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip changed %s to %s", b, again)
		}
	}
	want := `{"actor":"a","data":{"k":"v"},"event":3,"subject":"m","time":"2026-01-02T03:04:05.5Z","type":"model.create"}`
	e := tlog.Entry{Type: "model.create", Subject: "m", Actor: "a", Time: time.Date(2026, 1, 2, 3, 4, 5, 500000000, time.UTC), Event: 3, Data: map[string]any{"k": "v"}}
	if b, _ := e.Marshal(); string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestEntryRejects(t *testing.T) {
	good := `{"actor":"a","data":{},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`
	if _, err := tlog.ParseEntry([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`{"actor":"a", "data":{},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`,       // whitespace
		`{"data":{},"actor":"a","event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`,        // order
		`{"actor":"a","data":{},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}` + "\n", // trailing
		`{"actor":"a","data":{},"event":3.0,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`,
		`{"actor":"a","data":{"n":1e3},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`,
		`{"actor":"a","data":{"n":9007199254740992},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`,
		`{"actor":"a","data":{},"event":3,"subject":"m","time":"2026-01-02T04:04:05+01:00","type":"x"}`,
		`{"actor":"a","data":{},"event":3,"subject":"m","time":"2026-01-02T03:04:05.000Z","type":"x"}`,
		`{"actor":"a","data":{},"event":3,"subject":"\u006d","time":"2026-01-02T03:04:05Z","type":"x"}`, // needless escape
		`{"actor":"a","data":{},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x","more":1}`,
		`{"actor":"a","actor":"a","data":{},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`,
		`{"actor":"a","data":null,"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`,
		`{"actor":"a","event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`,
		"{\"actor\":\"\xff\",\"data\":{},\"event\":3,\"subject\":\"m\",\"time\":\"2026-01-02T03:04:05Z\",\"type\":\"x\"}",
		`{"actor":"a","data":{},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"` + strings.Repeat(" ", 1<<16) + "}",
	} {
		if _, err := tlog.ParseEntry([]byte(bad)); !errors.Is(err, tlog.ErrMalformedEntry) {
			t.Errorf("accepted %.120s: %v", bad, err)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	for _, e := range entryCases {
		b, _ := e.Marshal()
		f.Add(b)
	}
	f.Add([]byte(`{"actor":"a","data":{"x":[1,{"y":null}]},"event":3,"subject":"m","time":"2026-01-02T03:04:05Z","type":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := tlog.ParseEntry(b)
		if err != nil {
			return
		}
		// Accepted bytes are canonical: they re-encode to themselves and
		// the JCS reference agrees.
		again, err := e.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted non-canonical %q (re-encoded %q, %v)", b, again, err)
		}
		ref, err := jsoncanonicalizer.Transform(b)
		if err != nil || !bytes.Equal(ref, b) {
			t.Fatalf("accepted %q, JCS gives %q (%v)", b, ref, err)
		}
	})
}

func TestCheckpointParse(t *testing.T) {
	h := tlog.Hash{1, 2, 3}
	c := tlog.Checkpoint{Origin: "custody.example/log", Size: 42, Hash: h}
	text := c.Format()
	want := "custody.example/log\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	if string(text) != want {
		t.Fatalf("got %q want %q", text, want)
	}
	got, err := tlog.ParseCheckpoint(text)
	if err != nil || got != c {
		t.Fatal(got, err)
	}
	for _, bad := range []string{
		"custody.example/log\n042\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"custody.example/log\n-1\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"custody.example/log\n+1\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"custody.example/log\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"custody.example/log\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",
		"custody.example/log\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n",
		"custody.example/log\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextension\n",
		"custody.example/log\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"custody example\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"custody.example/log\n99999999999999999999\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	} {
		if _, err := tlog.ParseCheckpoint([]byte(bad)); !errors.Is(err, tlog.ErrMalformedCheckpoint) {
			t.Errorf("accepted %q: %v", bad, err)
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("custody.example/log\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add([]byte("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := tlog.ParseCheckpoint(b)
		if err != nil {
			return
		}
		if again := c.Format(); !bytes.Equal(again, b) {
			t.Fatalf("accepted non-canonical %q (formats as %q)", b, again)
		}
	})
}

// FuzzOpenCheckpoint feeds arbitrary signed notes to the verifier: nothing
// but the exact signed bytes opens.
func FuzzOpenCheckpoint(f *testing.F) {
	signer, verifier := newSigner(f, "custody.test/log")
	text := tlog.Checkpoint{Origin: "custody.test/log", Size: 7, Hash: tlog.Hash{9}}.Format()
	signed := mustSign(f, string(text), signer)
	f.Add(signed)
	f.Add([]byte("custody.test/log\n7\nCQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— custody.test/log AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := tlog.OpenCheckpoint(b, verifier)
		if err != nil {
			return
		}
		if c.Size != 7 || c.Hash != (tlog.Hash{9}) {
			t.Fatalf("opened a checkpoint that was never signed: %+v from %q", c, b)
		}
	})
}

func TestTilePaths(t *testing.T) {
	for _, tc := range []struct {
		tile tlog.Tile
		path string
	}{
		{tlog.Tile{Level: 0, N: 0, W: 256}, "tile/0/000"},
		{tlog.Tile{Level: 1, N: 1234067, W: 256}, "tile/1/x001/x234/067"},
		{tlog.Tile{Level: 2, N: 5, W: 17}, "tile/2/005.p/17"},
		{tlog.Tile{Entries: true, N: 1000, W: 1}, "tile/entries/x001/000.p/1"},
	} {
		if p := tc.tile.Path(); p != tc.path {
			t.Errorf("%+v: %s, want %s", tc.tile, p, tc.path)
		}
		got, err := tlog.ParseTilePath(tc.path)
		if err != nil || got != tc.tile {
			t.Errorf("%s: %+v %v", tc.path, got, err)
		}
	}
	for _, bad := range []string{"tile/6/000", "tile/00/000", "tile/0/0", "tile/0/x000/001", "tile/0/001/002", "tile/0/000.p/256",
		"tile/0/000.p/0", "tile/0/000.p/01", "tile/entries/000.p/", "tile/0/x001", "tile/0/x999/x999/x999/x999/x999/x999/999", "tile/1/000/"} {
		if _, err := tlog.ParseTilePath(bad); !errors.Is(err, tlog.ErrBadTilePath) {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzParseTilePath(f *testing.F) {
	f.Add("tile/1/x001/x234/067.p/5")
	f.Add("tile/entries/000")
	f.Fuzz(func(t *testing.T, p string) {
		tile, err := tlog.ParseTilePath(p)
		if err != nil {
			return
		}
		if tile.Path() != p {
			t.Fatalf("accepted %q, which is spelled %q", p, tile.Path())
		}
	})
}
