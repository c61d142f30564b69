package stepup

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeTx: a transaction record comes from the store, which whoever can
// write to it controls. decodeTx must never panic, and what it accepts must
// survive an encode/decode round trip unchanged.
func FuzzDecodeTx(f *testing.F) {
	good, _ := encodeTx(&txRecord{
		V: txVersion, Nonce: randomToken(), Verifier: randomToken(), BindingHash: bindingHash(randomToken()),
		Issuer: "https://t/", Policy: MFA.WithMaxAge(time.Minute), MaxAge: 60, Connection: "google-oauth2",
		ReturnTo: "/a?b=c", Audience: "https://api", Expires: 1,
	})
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":2,"n":"x"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"v":1,"r":"//evil"}`))
	f.Add(bytes.Replace(good, []byte(`"r":"/a?b=c"`), []byte(`"r":"/\\evil"`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeTx(data)
		if err != nil {
			return
		}
		if checkReturnTo(r.ReturnTo) != nil || !isRandomToken(r.Nonce) || len(r.BindingHash) != 32 {
			t.Fatalf("accepted an invalid record: %+v", r)
		}
		again, err := encodeTx(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeTx(again)
		if err != nil {
			t.Fatalf("re-encoded record rejected: %v", err)
		}
		b2, _ := encodeTx(r2)
		if !bytes.Equal(again, b2) {
			t.Fatalf("round trip changed the record:\n%s\n%s", again, b2)
		}
	})
}

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
