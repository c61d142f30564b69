package stepup

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecodeSession: the same for session records (the binary layout,
// opened from its seal: the fuzzer plays a writer who has the keys, or a
// bug).
func FuzzDecodeSession(f *testing.F) {
	var err error
	full := &sessionRecord{
		SecretHash: string(secretHash(randomToken())), Subject: "auth0|1", SID: "s", Connection: "google-oauth2", ConnSent: true,
		Email: "a@b.example", Name: "Ané", OrgID: "org_1",
		Auth:      evidence{ACR: ACRMultiFactor, AMR: []string{"pwd", "mfa"}, AuthTime: 1},
		HasStepUp: true, StepUp: evidence{ACR: ACRMultiFactor, AMR: []string{"mfa"}, AuthTime: 4}, StepUpAt: 5,
		Created: 1, Expires: 10, OrgName: "acme",
	}
	if full.Claims, err = encodeClaims(map[string]string{"role": "admin", "team": "payroll"}); err != nil {
		f.Fatal(err)
	}
	good, err := encodeSession(full)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	noOrgName := *full
	noOrgName.OrgName, noOrgName.Claims = "", ""
	older, _ := encodeSession(&noOrgName) // the layout before org_name and claims
	f.Add(older)
	bare, _ := encodeSession(&sessionRecord{SecretHash: full.SecretHash, Subject: "x", Created: 1, Expires: 1})
	f.Add(bare)
	f.Add(good[:len(good)-1])
	f.Add(append(append([]byte{}, good...), 0))
	f.Add([]byte(`{"v":1,"t":{"a":null}}`)) // the previous version's JSON
	f.Add([]byte{sessionVersion, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r sessionRecord
		if err := decodeSession(data, &r); err != nil {
			return
		}
		if r.Subject == "" || len(r.SecretHash) != 32 || r.Expires < r.Created || r.Created <= 0 || !r.validFields() ||
			(r.HasStepUp != (r.StepUpAt > 0)) {
			t.Fatalf("accepted an invalid record: %+v", r)
		}
		// Its custom claims read back whole, and each is found by name.
		s := &Session{rec: &r}
		for k, v := range s.Claims() {
			if got, ok := s.Claim(k); !ok || got != v {
				t.Fatalf("Claim(%q) = %q, %v; Claims has %q", k, got, ok, v)
			}
		}
		if r.Claims != "" && s.Claims() == nil {
			t.Fatal("accepted claims that do not read")
		}
		again, err := encodeSession(&r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("the encoding is not canonical:\n%x\n%x", data, again)
		}
		var r2 sessionRecord
		if err := decodeSession(again, &r2); err != nil {
			t.Fatalf("re-encoded record rejected: %v", err)
		}
		if diff := cmp.Diff(r, r2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeToken: token records (tokens, chain, the ID token).
func FuzzDecodeToken(f *testing.F) {
	f.Add(encodeToken(&tokenRecord{Subject: "auth0|1", SessExp: 9, Type: "Bearer", Scope: "openid offline_access", Expiry: 5,
		Access: "a.b.c", Refresh: "rt", Prev: []string{refreshHash("old")}, At: 1}))
	f.Add(encodeToken(&tokenRecord{Subject: "auth0|1", SessExp: 9, IDToken: "x.y.z"}))
	f.Add([]byte{tokenVersion, 1, 'x', 2, 0, 0, 0, 0, 0, 0, 17})
	f.Add([]byte(`{"v":1,"t":{"r":"AQI="},"cur":"short","at":1}`)) // the previous rotation record
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeToken(data)
		if err != nil {
			return
		}
		if r.Subject == "" || r.SessExp <= 0 || len(r.Prev) > maxPrev || r.Expiry < 0 || r.At < 0 {
			t.Fatalf("accepted an invalid token record: %+v", r)
		}
		for _, p := range r.Prev {
			if !isRefreshHash(p) {
				t.Fatalf("accepted a chain entry %q", p)
			}
		}
		again, err := decodeToken(encodeToken(r))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if diff := cmp.Diff(r, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
