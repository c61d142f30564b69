package stepup

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
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

// strBytewise is the byte-at-a-time reference for str (no eight-byte
// scan). TestStrScan checks str against it.
func strBytewise(s string, i int) (string, int, error) {
	i++ // '"'
	start := i
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return s[start:i], i + 1, nil
		case c == '\\':
			d := jsonDecoder{s: s, i: i}
			v, err := d.strSlow(start)
			return v, d.i, err
		case c < 0x20:
			return "", 0, errJSONSyntax
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				return "", 0, errJSONUTF8
			}
			i += n
		}
	}
	return "", 0, errJSONSyntax
}

// TestSpecial8 checks the eight-byte scan's test of every byte value at
// every position (the other bytes plain, or another value above it): the
// word is flagged exactly when a byte must be looked at, and its lowest
// flag is in the first such byte. Dropping any term of special8 fails it.
func TestSpecial8(t *testing.T) {
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80 }
	check := func(w [8]byte) {
		x := load8(string(w[:]), 0)
		first := -1
		for k, c := range w {
			if special(c) {
				first = k
				break
			}
		}
		m := special8(x)
		if (m != 0) != (first >= 0) || (first >= 0 && bits.TrailingZeros64(m)>>3 != first) {
			t.Fatalf("special8(%q) = %#x, first special byte at %d", w[:], m, first)
		}
	}
	for _, fill := range []byte{'a', ' ', '!', '#', '[', ']', '~', 0x7f, '0'} {
		for pos := 0; pos < 8; pos++ {
			for c := 0; c < 256; c++ {
				var w [8]byte
				for k := range w {
					w[k] = fill
				}
				w[pos] = byte(c)
				check(w)
				for above := pos + 1; above < 8; above++ {
					for _, c2 := range []byte{0, 0x1f, 0x20, '"', '#', '\\', ']', 0x7f, 0x80, 0xff} {
						w2 := w
						w2[above] = c2
						check(w2)
					}
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var w [8]byte
		for k := range w {
			w[k] = byte(r.Uint32())
			if r.IntN(2) == 0 {
				w[k] &= 0x7f
			}
		}
		check(w)
	}
}

// TestStrScan compares str with the byte-by-byte scan on strings with every
// byte value at every offset of the first 24 (so at every position of the
// first three words and of the tail), followed by plain text or the end.
func TestStrScan(t *testing.T) {
	for n := 0; n <= 24; n++ {
		for pos := 0; pos <= n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(`"` + strings.Repeat("abcdefgh", 4)[:n] + `"`)
				b[1+pos] = byte(c)
				for _, tail := range []string{"", `,"x":1}`, "\xc3\xa9\"", `\u00e9"`, "é more text\"}"} {
					s := string(b) + tail
					d := jsonDecoder{s: s}
					got, err := d.str()
					want, wantI, wantErr := strBytewise(s, 0)
					if got != want || !errors.Is(err, wantErr) || (err == nil && d.i != wantI) {
						t.Fatalf("%q: str = %q, %d, %v; byte by byte %q, %d, %v", s, got, d.i, err, want, wantI, wantErr)
					}
				}
			}
		}
	}
}

// TestFloatInteger checks the integer path of float against
// strconv.ParseFloat: the same value (and sign of zero), the same bytes
// consumed, and the longer integers, fractions and exponents left to it.
func TestFloatInteger(t *testing.T) {
	var in []string
	for _, digits := range []string{"0", "7", "1700000000", "999999999999999", "1000000000000000", "9007199254740993",
		"123456789012345678", "18446744073709551615", "18446744073709551616", "99999999999999999999999"} {
		for _, sign := range []string{"", "-"} {
			for _, rest := range []string{"", ".5", ".0", "e3", "E-2", "e+1", ".25e2"} {
				in = append(in, sign+digits+rest)
			}
		}
	}
	for _, s := range in {
		for _, after := range []string{"", ",", "}", " ", "]"} {
			d := jsonDecoder{s: s + after}
			got, err := d.float()
			want, werr := strconv.ParseFloat(s, 64)
			if err != nil || werr != nil || got != want || math.Signbit(got) != math.Signbit(want) || d.i != len(s) {
				t.Fatalf("float(%q) = %v, %v at %d; ParseFloat %v, %v", s+after, got, err, d.i, want, werr)
			}
		}
	}
}
