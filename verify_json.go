package stepup

import (
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small, strict JSON decoder for token headers and claim sets. It produces
// the same Go values as encoding/json's decoding into any (map[string]any,
// []any, string, float64, bool, nil) in one pass without reflection, and
// shares the input's memory for strings without escapes. It is stricter than
// encoding/json where laxness helps an attacker: a repeated member name,
// invalid UTF-8 and nesting deeper than maxJSONDepth are errors.

const maxJSONDepth = 32

var (
	errJSONSyntax    = errors.New("invalid JSON")
	errJSONDuplicate = errors.New("repeated member name")
	errJSONDepth     = errors.New("JSON nested too deeply")
	errJSONUTF8      = errors.New("invalid UTF-8 in JSON string")
	errJSONNotObject = errors.New("not a JSON object")
)

type jsonDecoder struct {
	s     string
	i     int
	depth int
}

// decodeJSONObject decodes s, which must hold exactly one JSON object.
// The returned values may share memory with s.
func decodeJSONObject(s string) (map[string]any, error) {
	d := jsonDecoder{s: s}
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return nil, errJSONNotObject
	}
	m, err := d.object()
	if err != nil {
		return nil, err
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeJOSEHeader decodes a JWS header: a JSON object of which it keeps alg,
// kid and typ (strings) and notes crit; other members are decoded and dropped.
// A repeated alg, kid, typ or crit is an error.
func decodeJOSEHeader(s string) (h joseHeader, hasCrit bool, err error) {
	d := jsonDecoder{s: s, depth: 1}
	end, err := d.openObject()
	if err != nil {
		return h, false, err
	}
	var seen [4]bool
	for !end {
		k, err := d.memberName()
		if err != nil {
			return h, false, err
		}
		var dst *string
		slot := -1
		switch k {
		case "alg":
			dst, slot = &h.Alg, 0
		case "kid":
			dst, slot = &h.Kid, 1
		case "typ":
			dst, slot = &h.Typ, 2
		case "crit":
			slot, hasCrit = 3, true
		}
		if slot >= 0 {
			if seen[slot] {
				return h, false, errJSONDuplicate
			}
			seen[slot] = true
		}
		// Values are read without boxing them into any: the header is
		// decoded on every verification.
		if dst != nil {
			if *dst, _, err = d.claimString(k); err != nil {
				return h, false, err
			}
		} else if err := d.skip(); err != nil {
			return h, false, err
		}
		if end, err = d.next('}'); err != nil {
			return h, false, err
		}
	}
	if err := d.finish(); err != nil {
		return h, false, err
	}
	return h, hasCrit, nil
}

// openObject consumes the '{' that must open d.s (after white space) and,
// when the object is empty, its '}' (end true). It is the start of the
// top-level objects decoded member by member (a JOSE header, a claim set);
// d.depth counts that object already.
func (d *jsonDecoder) openObject() (end bool, err error) {
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return false, errJSONNotObject
	}
	d.i++
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return true, nil
	}
	return false, nil
}

// memberName decodes an object member's name and the ':' after it (white
// space around both), leaving d.i at the member's value.
func (d *jsonDecoder) memberName() (string, error) {
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", errJSONSyntax
	}
	k, err := d.str()
	if err != nil {
		return "", err
	}
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != ':' {
		return "", errJSONSyntax
	}
	d.i++
	d.ws()
	return k, nil
}

// finish checks that only white space follows the decoded value.
func (d *jsonDecoder) finish() error {
	d.ws()
	if d.i != len(d.s) {
		return errJSONSyntax
	}
	return nil
}

// ws skips white space. Tokens are usually compact JSON: the common case,
// a byte above ' ' or the end, is one comparison inlined at the call, and
// the loop is out of line (wsLoop).
func (d *jsonDecoder) ws() {
	if d.i >= len(d.s) || d.s[d.i] > ' ' {
		return
	}
	d.wsLoop()
}

// wsLoop is ws' loop over the white space at d.i.
//
//go:noinline
func (d *jsonDecoder) wsLoop() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value() (any, error) {
	d.ws()
	if d.i >= len(d.s) {
		return nil, errJSONSyntax
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		return d.str()
	case c == 't':
		return true, d.lit("true")
	case c == 'f':
		return false, d.lit("false")
	case c == 'n':
		return nil, d.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return nil, errJSONSyntax
}

func (d *jsonDecoder) lit(word string) error {
	if len(d.s)-d.i < len(word) || d.s[d.i:d.i+len(word)] != word {
		return errJSONSyntax
	}
	d.i += len(word)
	return nil
}

func (d *jsonDecoder) object() (map[string]any, error) {
	if d.depth++; d.depth > maxJSONDepth {
		return nil, errJSONDepth
	}
	d.i++ // '{'
	hint := 0
	if d.depth == 1 {
		hint = 12 // a typical token's claim count: one allocation, no growth
	}
	m := make(map[string]any, hint)
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return m, nil
	}
	for {
		k, v, err := d.member()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, errJSONDuplicate
		}
		m[k] = v
		end, err := d.next('}')
		if err != nil {
			return nil, err
		}
		if end {
			d.depth--
			return m, nil
		}
	}
}

// member decodes one object member, "name": value (white space first).
func (d *jsonDecoder) member() (string, any, error) {
	k, err := d.memberName()
	if err != nil {
		return "", nil, err
	}
	v, err := d.value()
	if err != nil {
		return "", nil, err
	}
	return k, v, nil
}

// next consumes what follows an object member or array element: a ',' (end
// false) or the closing byte (end true); anything else is a syntax error.
func (d *jsonDecoder) next(closing byte) (end bool, err error) {
	d.ws()
	if d.i >= len(d.s) {
		return false, errJSONSyntax
	}
	switch d.s[d.i] {
	case ',':
		d.i++
		return false, nil
	case closing:
		d.i++
		return true, nil
	}
	return false, errJSONSyntax
}

func (d *jsonDecoder) array() ([]any, error) {
	if d.depth++; d.depth > maxJSONDepth {
		return nil, errJSONDepth
	}
	d.i++ // '['
	a := make([]any, 0, 4)
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return a, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		end, err := d.next(']')
		if err != nil {
			return nil, err
		}
		if end {
			d.depth--
			return a, nil
		}
	}
}

// str decodes the string at d.i (an opening quote).
//
// Plain bytes (ASCII from ' ' on, other than '"' and '\\') are skipped by
// plainPrefix; the first other byte is then looked at on its own: the
// closing quote, an escape, a control byte (refused) or the start of a UTF-8
// sequence (validated).
func (d *jsonDecoder) str() (string, error) {
	s, i := d.s, d.i+1 // after the '"'
	start := i
	for {
		i = plainPrefix(s, i)
		if i >= len(s) {
			return "", errJSONSyntax
		}
		switch c := s[i]; {
		case c == '"':
			d.i = i + 1
			return s[start:i], nil
		case c == '\\':
			d.i = i
			return d.strSlow(start)
		case c < 0x20:
			return "", errJSONSyntax
		default: // the start of a UTF-8 sequence
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				return "", errJSONUTF8
			}
			i += n
		}
	}
}

// plainPrefix returns the index of the first byte at or after i that a
// string scan must look at on its own (special8's: a control byte, '"',
// '\\' or a non-ASCII byte), or len(s): eight bytes at a time, then the
// last few one by one.
func plainPrefix(s string, i int) int {
	for i+8 <= len(s) {
		if m := special8(load8(s, i)); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(s) && s[i] >= 0x20 && s[i] < utf8.RuneSelf && s[i] != '"' && s[i] != '\\' {
		i++
	}
	return i
}

// load8 returns the eight bytes of s at i as a little-endian word (the
// compiler makes it one load); i+8 <= len(s).
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// special8 flags the bytes of x (little-endian) that a JSON string scan
// must look at on its own: a control byte (< 0x20), '"', '\\', or a
// non-ASCII byte (>= 0x80). It is zero exactly when there is none, and its
// lowest set bit is in the first such byte (a byte above it may be flagged
// too, by a borrow: str never looks past the first).
//
// (v-ones)&^v&high flags a zero byte of v, for bytes below 0x80 (the x term
// covers the others); (x-0x20s)&^x&high a byte below 0x20. A borrow only
// starts at a byte that is itself flagged, so no byte below the first
// flagged one is.
func special8(x uint64) uint64 {
	q := x ^ (swarOnes * '"')
	b := x ^ (swarOnes * '\\')
	return (x | (x-swarOnes*0x20)&^x | (q-swarOnes)&^q | (b-swarOnes)&^b) & swarHigh
}

// strSlow decodes a string with escapes; d.i is at the first backslash.
func (d *jsonDecoder) strSlow(start int) (string, error) {
	b := make([]byte, 0, d.i-start+16)
	b = append(b, d.s[start:d.i]...)
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b), nil
		case c == '\\':
			if d.i+1 >= len(d.s) {
				return "", errJSONSyntax
			}
			e := d.s[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", errJSONSyntax
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if d.i+1 < len(d.s) && d.s[d.i] == '\\' && d.s[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						var ok2 bool
						if r2, ok2 = d.hex4(); !ok2 {
							return "", errJSONSyntax
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
						} else {
							d.i = save // not a pair: r2 is decoded on its own
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", errJSONSyntax
			}
		case c < 0x20:
			return "", errJSONSyntax
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.i++
		default:
			r, n := utf8.DecodeRuneInString(d.s[d.i:])
			if r == utf8.RuneError && n <= 1 {
				return "", errJSONUTF8
			}
			b = append(b, d.s[d.i:d.i+n]...)
			d.i += n
		}
	}
	return "", errJSONSyntax
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if len(d.s)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(d.s[d.i : d.i+4]) {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// skip validates the value at d.i with the grammar of value without keeping
// it: scalars and arrays cost no allocation; nested objects are decoded (and
// dropped) so that their repeated names are found as in decodeJSONObject.
func (d *jsonDecoder) skip() error {
	d.ws()
	if d.i >= len(d.s) {
		return errJSONSyntax
	}
	switch c := d.s[d.i]; {
	case c == '{':
		_, err := d.object()
		return err
	case c == '[':
		if d.depth++; d.depth > maxJSONDepth {
			return errJSONDepth
		}
		d.i++
		d.ws()
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			d.depth--
			return nil
		}
		for {
			if err := d.skip(); err != nil {
				return err
			}
			end, err := d.next(']')
			if err != nil {
				return err
			}
			if end {
				d.depth--
				return nil
			}
		}
	case c == '"':
		_, err := d.str()
		return err
	case c == 't':
		return d.lit("true")
	case c == 'f':
		return d.lit("false")
	case c == 'n':
		return d.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.float()
		return err
	}
	return errJSONSyntax
}

// number decodes a JSON number (RFC 8259 grammar) as float64.
func (d *jsonDecoder) number() (any, error) {
	f, err := d.float()
	if err != nil {
		return nil, err
	}
	return f, nil
}

// float decodes a JSON number (RFC 8259 grammar).
func (d *jsonDecoder) float() (float64, error) {
	s, i := d.s, d.i
	start := i
	neg := s[i] == '-'
	if neg {
		i++
	}
	digits := i
	var n uint64 // the integer part, while it has at most 15 digits
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			n = n*10 + uint64(s[i]-'0')
			i++
		}
	default:
		return 0, errJSONSyntax
	}
	// An integer of at most 15 digits (below 2^53) is exactly a float64:
	// the same value as strconv.ParseFloat's, -0 included, without it (every
	// NumericDate is one).
	if i-digits <= 15 && (i >= len(s) || (s[i] != '.' && s[i] != 'e' && s[i] != 'E')) {
		d.i = i
		f := float64(n)
		if neg {
			f = -f
		}
		return f, nil
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return 0, errJSONSyntax
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return 0, errJSONSyntax
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	f, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil {
		// Out of float64 range: encoding/json rejects it too.
		return 0, errJSONSyntax
	}
	return f, nil
}
