package stepup

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestDecodeJSONObject(t *testing.T) {
	good := []string{
		`{}`, ` { "a" : 1 } `, `{"a":"x\"y\\z\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, `{"a":[1,-2.5e3,true,false,null,{"b":[]}]}`,
		`{"a":"\ud800"}`, `{"a":"\ud800\u0041"}`, `{"a":0,"b":-0,"c":1E+2,"d":"é"}`,
	}
	for _, s := range good {
		got, err := decodeJSONObject(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %#v, want %#v", s, got, want)
		}
	}
	bad := map[string]error{
		`[]`: errJSONNotObject, `"a"`: errJSONNotObject, `{"a":1,"a":2}`: errJSONDuplicate, `{"a":1}x`: errJSONSyntax,
		`{"a":01}`: errJSONSyntax, `{"a":1.}`: errJSONSyntax, `{"a":"` + "\x01" + `"}`: errJSONSyntax, `{"a":"\x"}`: errJSONSyntax,
		"{\"a\":\"\xff\"}": errJSONUTF8, `{"a":1e999}`: errJSONSyntax, `{"a":tru}`: errJSONSyntax, `{"a" 1}`: errJSONSyntax,
		`{"a":1,}`: errJSONSyntax, `{`: errJSONSyntax, `{"a":[1,]}`: errJSONSyntax,
		`{"a":` + string(bytes.Repeat([]byte("["), 40)) + string(bytes.Repeat([]byte("]"), 40)) + `}`: errJSONDepth,
	}
	for s, want := range bad {
		if _, err := decodeJSONObject(s); !errors.Is(err, want) {
			t.Errorf("%q: got %v, want %v", s, err, want)
		}
	}
}

// FuzzDecodeJSONObject checks the decoder against encoding/json: where both
// accept, the results are equal; ours only refuses what it documents refusing.
func FuzzDecodeJSONObject(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"iss":"https://x/","aud":["a","b"],"exp":1.5e9,"amr":["mfa"],"n":null,"t":true}`, `{"a":"\ud83d\ude00\u0000"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodeJSONObject(s)
		var want map[string]any
		jerr := json.Unmarshal([]byte(s), &want)
		if err == nil {
			if jerr != nil {
				t.Fatalf("%q: we accept, encoding/json says %v", s, jerr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: got %#v, want %#v", s, got, want)
			}
			return
		}
		if jerr == nil && want != nil && !errors.Is(err, errJSONDuplicate) && !errors.Is(err, errJSONDepth) && utf8.ValidString(s) {
			t.Fatalf("%q: we refuse (%v), encoding/json accepts", s, err)
		}
	})
}
