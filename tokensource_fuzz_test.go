package stepup

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A tenant's error code of any bytes round-trips through a lease, bounded
// to 64 bytes without cutting a character (issue 15: strconv.Quote wrote Go
// escapes, not JSON, and the bound cut inside a character).
func TestLeaseErrorCodeRoundTrips(t *testing.T) {
	for _, code := range []string{"\x7f", "invalid_grant", "a\"b\\c\u2028", "\x00\x1f<>&", strings.Repeat("é", 40), strings.Repeat("x", 63) + "é", "\xff\xfe"} {
		l, err := decodeLease(encodeLease(leaseRecord{V: leaseVersion, Holder: "h", Until: 1, Err: code}))
		if err != nil {
			t.Fatalf("%q: %v", code, err)
		}
		want := boundUTF8(code, maxLeaseErrLen)
		if l.Err != want || len(l.Err) > maxLeaseErrLen || !utf8.ValidString(l.Err) {
			t.Errorf("%q came back as %q (%d bytes), want %q", code, l.Err, len(l.Err), want)
		}
		if utf8.ValidString(code) && len(code) <= maxLeaseErrLen && l.Err != code {
			t.Errorf("%q changed on the way: %q", code, l.Err)
		}
	}
	if got := boundUTF8(strings.Repeat("é", 40), 64); got != strings.Repeat("é", 32) {
		t.Errorf("bound cut inside a character: %q", got)
	}
}

// Lease records come from the shared store: anyone who can write to it may
// put anything there.
func FuzzDecodeLease(f *testing.F) {
	f.Add(encodeLease(leaseRecord{V: 1, Holder: "abc", Until: 1764331200000}))
	f.Add(encodeLease(leaseRecord{V: 1, Holder: "abc", Until: 1, Err: "invalid_grant"}))
	f.Add([]byte(`{"v":1,"h":"","u":1}`))
	f.Add([]byte(`{"v":2,"h":"x","u":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("{\"v\":1,\"h\":\"0\",\"u\":1,\"e\":\"\x7f\"}"))                  // issue 15: strconv.Quote wrote Go escapes
	f.Add([]byte(`{"v":1,"h":"0","u":1,"e":"ééééééééééééééééééééééééééééééééé"}`)) // 66 bytes: over the bound
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := decodeLease(data)
		if err != nil {
			return
		}
		if l.V != leaseVersion || l.Holder == "" || l.Until <= 0 || len(l.Err) > maxLeaseErrLen || !utf8.ValidString(l.Err) {
			t.Fatalf("accepted an invalid lease: %+v", l)
		}
		again, err := decodeLease(encodeLease(l))
		if err != nil || again != l {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}

// Token answers come from the network.
func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","token_type":"Bearer","expires_in":86400,"refresh_token":"r","id_token":"x.y.z","scope":"openid"}`))
	f.Add([]byte(`{"access_token":"a","expires_in":"3600"}`))
	f.Add([]byte(`{"access_token":"a","expires_in":-1}`))
	f.Add([]byte(`{"expires_in":1e400}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseTokenResponse(data)
		if err != nil {
			return
		}
		if r.ExpiresIn < 0 || (r.AccessToken == "" && r.IDToken == "") {
			t.Fatalf("accepted %+v", r)
		}
	})
}
