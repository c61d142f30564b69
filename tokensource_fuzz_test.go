package stepup

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Lease records come from the shared store: anyone who can write to it may
// put anything there.
func FuzzDecodeLease(f *testing.F) {
	f.Add(encodeLease(leaseRecord{V: 1, Holder: "abc", Until: 1764331200000}))
	f.Add(encodeLease(leaseRecord{V: 1, Holder: "abc", Until: 1, Err: "invalid_grant"}))
	f.Add([]byte(`{"v":1,"h":"","u":1}`))
	f.Add([]byte(`{"v":2,"h":"x","u":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := decodeLease(data)
		if err != nil {
			return
		}
		if l.V != leaseVersion || l.Holder == "" || l.Until <= 0 {
			t.Fatalf("accepted an invalid lease: %+v", l)
		}
		again, err := decodeLease(encodeLease(l))
		if err != nil || again != l {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}

func FuzzDecodeRotation(f *testing.F) {
	h := refreshHash("rt")
	f.Add(encodeRotation(&rotationRecord{V: 1, T: tokenRecord{Refresh: []byte{1, 2}, Expiry: 5}, Cur: h, Prev: []string{refreshHash("old")}, At: 1}))
	f.Add([]byte(`{"v":1,"t":{"r":"AQI="},"cur":"short","at":1}`))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRotation(data)
		if err != nil {
			return
		}
		if !isRefreshHash(r.Cur) || len(r.Prev) > maxPrev || len(r.T.Refresh) == 0 {
			t.Fatalf("accepted an invalid rotation record: %+v", r)
		}
		again, err := decodeRotation(encodeRotation(r))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if diff := cmp.Diff(r, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
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
