package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/custody-ml/custody/internal/digest"
)

func digestOfBytes(b []byte) digest.Digest { return digest.Digest(sha256.Sum256(b)) }

const fuzzLimit = 1 << 16

// roundTrip checks that whatever a decoder accepts re-encodes to a body it
// accepts again, with the same meaning (decode∘encode is stable).
func roundTrip[T any](t *testing.T, v T, decode func(b []byte) (T, error)) {
	enc1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("accepted value does not encode: %v", err)
	}
	v2, err := decode(enc1)
	if err != nil {
		t.Fatalf("re-encoded body rejected: %v\n%s", err, enc1)
	}
	enc2, _ := json.Marshal(v2)
	if !bytes.Equal(enc1, enc2) {
		t.Fatalf("round trip changed the value:\n%s\n%s", enc1, enc2)
	}
}

func FuzzDecodeRegister(f *testing.F) {
	f.Add([]byte(`{"manifest":{"kind":"file","name":"m.bin","digest":"sha256:` + digestOfBytes(nil).Hex() + `","oms_root":"sha256:` + digestOfBytes(nil).Hex() + `","serialization":{"method":"files","hash_type":"sha256","allow_symlinks":false},"resources":[{"name":"m.bin","algorithm":"sha256","digest":"` + digestOfBytes(nil).Hex() + `"}],"files":[{"name":"m.bin","size":0}]},"signatures":[{"mediaType":"x"}],"uri":"s3://b/k","format":"gguf","scan_verdict":"safe","run":{"id":"r1","params":{"lr":"0.1"},"metrics":{"acc":0.5},"env_lock":{"a":[1,2]},"inputs":[{"name":"d","version":"1"}]}}`))
	f.Add([]byte(`{"manifest":{},"signatures":[]}`))
	f.Add([]byte(`{"signatures":[1,"x",null]} `))
	f.Add([]byte(`{"manifest":{"digest":"sha256:zz"}}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := func(b []byte) (*RegisterBody, error) {
			var v RegisterBody
			err := decodeStrict(bytes.NewReader(b), fuzzLimit, &v)
			return &v, err
		}
		v, err := dec(data)
		if _, rerr := decodeRegister(bytes.NewReader(data), fuzzLimit); (rerr == nil) != (err == nil) {
			t.Fatalf("decodeRegister and decodeStrict disagree: %v vs %v", rerr, err)
		}
		if err != nil {
			if classify(err) != ErrBadRequest && classify(err) != ErrTooLarge {
				t.Fatalf("decode error classified as %s: %v", classify(err), err)
			}
			return
		}
		roundTrip(t, v, dec)
	})
}

func FuzzDecodeDataset(f *testing.F) {
	f.Add([]byte(`{"kind":"directory","digest":"sha256:` + digestOfBytes(nil).Hex() + `","dvc_md5":"d41d8cd98f00b204e9800998ecf8427e.dir","source_uri":"s3://x","rows":10,"files":[{"path":"a/b.csv","size":3,"sha256":"` + digestOfBytes(nil).Hex() + `","md5":"d41d8cd98f00b204e9800998ecf8427e"}]}`))
	f.Add([]byte(`{"rows":-1,"files":null}`))
	f.Add([]byte(`{"digest":"SHA256:00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := func(b []byte) (*DatasetBody, error) {
			var v DatasetBody
			err := decodeStrict(bytes.NewReader(b), fuzzLimit, &v)
			return &v, err
		}
		v, err := dec(data)
		if err != nil {
			if classify(err) != ErrBadRequest && classify(err) != ErrTooLarge {
				t.Fatalf("decode error classified as %s: %v", classify(err), err)
			}
			return
		}
		roundTrip(t, v, dec)
		spec, err := decodeDataset(bytes.NewReader(data), fuzzLimit)
		if err != nil || spec.Digest != v.Digest || !reflect.DeepEqual(spec.Files, v.Files) {
			t.Fatalf("decodeDataset disagrees with the body: %+v, %v", spec, err)
		}
	})
}

func FuzzDecodeSmallBodies(f *testing.F) {
	f.Add([]byte(`{"version":"1"}`))
	f.Add([]byte(`{"description":"d","owners":["a"],"tags":["t"]}`))
	f.Add([]byte(`{"role":"admin","name":"ci"}`))
	f.Add([]byte(`{"version":"1","version":"2"}`))
	f.Add([]byte("\xef\xbb\xbf{}"))
	f.Add([]byte(`{"comment":"eval ok"}`))
	f.Add([]byte(`{"to":"1","reason":"error rate up"}`))
	f.Add([]byte(`{"model":"m","alias":"prod","version":"1","digest":"sha256:54055c66a5a1582c82163b7b2e1fcf28b539831ca36925354382d30ae158ace6","log_index":3,"host":"h","pid":1,"started_at":"2026-11-22T01:02:03Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []any{&AliasBody{}, &ModelBody{}, &TokenBody{}, &DeploymentBody{}, &ApproveBody{}, &PromoteBody{}, &RollbackBody{}} {
			err := decodeStrict(bytes.NewReader(data), 1024, v)
			if err != nil {
				c := classify(err)
				if c != ErrBadRequest && c != ErrTooLarge {
					t.Fatalf("decode error classified as %s: %v", c, err)
				}
				if len(data) > 1024 && c != ErrTooLarge {
					t.Fatalf("oversized body classified as %s", c)
				}
				continue
			}
			if len(data) > 1024 {
				t.Fatal("accepted a body over the limit")
			}
			enc, _ := json.Marshal(v)
			if err := decodeStrict(bytes.NewReader(enc), 1<<20, v); err != nil {
				t.Fatalf("re-encoded body rejected: %v", err)
			}
		}
	})
}
