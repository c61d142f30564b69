package stepup

import (
	"testing"
)

// FuzzDecodeSession: the same for session records.
func FuzzDecodeSession(f *testing.F) {
	good, _ := encodeSession(&sessionRecord{
		V: sessionVersion, SecretHash: secretHash(randomToken()), Subject: "auth0|1", SID: "s",
		Auth:   evidence{ACR: ACRMultiFactor, AMR: []string{"mfa"}, AuthTime: 1},
		StepUp: &evidence{ACR: ACRMultiFactor}, StepUpAt: 5, Created: 1, Expires: 10, Idle: 5,
		Tokens: map[string]*tokenRecord{"": {Access: []byte{1, 2}, Expiry: 3}},
	})
	f.Add(good)
	f.Add([]byte(`{"v":1,"t":{"a":null}}`))
	f.Add([]byte(`{"v":1,"sat":5}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeSession(data)
		if err != nil {
			return
		}
		if r.Subject == "" || len(r.SecretHash) != 32 || r.Expires < r.Created {
			t.Fatalf("accepted an invalid record: %+v", r)
		}
		for _, tok := range r.Tokens {
			if tok == nil {
				t.Fatal("accepted a nil token record")
			}
		}
		again, err := encodeSession(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeSession(again); err != nil {
			t.Fatalf("re-encoded record rejected: %v", err)
		}
	})
}
