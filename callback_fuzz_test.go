package stepup

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// unreachable is a transport for fuzzing: the tenant never answers, so no
// callback can complete a login, whatever its parameters.
type unreachable struct{}

func (unreachable) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("fuzz: tenant unreachable")
}

func newFuzzClient(f *testing.F) *Client {
	c, err := New(context.Background(), Config{
		Domain:       "tenant.example",
		ClientID:     "client",
		ClientSecret: "secret",
		RedirectURL:  "https://app.example/callback",
		HTTPClient:   &http.Client{Transport: unreachable{}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	return c
}

// FuzzCallback: the callback's query comes from whoever sends the browser to
// it, and the transaction cookie from the browser. In the fuzzed query,
// STATE stands for the state of a live transaction; in the fuzzed cookie, TX
// for that transaction's cookie value and OTHER for another transaction's,
// so the fuzzer reaches the checks past the cookie's seal. Exchange must
// never panic, never succeed (the tenant is unreachable), and always say why
// with one of its documented errors; and whatever fails before the code is
// tried writes nothing to the store.
func FuzzCallback(f *testing.F) {
	c := newFuzzClient(f)
	for _, s := range []struct{ query, tx string }{
		{"state=STATE&code=abc", "TX"},
		{"state=STATE&code=abc&iss=https%3A%2F%2Ftenant.example%2F", "TX"},
		{"state=STATE&code=abc&iss=https%3A%2F%2Fevil.example%2F", "TX"},
		{"state=STATE&iss=a&iss=b", "TX"},
		{"state=STATE&error=access_denied&error_description=nope", "TX"},
		{"state=STATE&code=abc", "OTHER"},
		{"state=STATE&code=abc", "TXx"},
		{"state=STATE&code=abc", "1.TX"},
		{"state=STATE&code=abc", ""},
		{"state=STATE&state=STATE", "TX"},
		{"code=abc", "TX"},
		{"state=%ZZ", ""},
		{"state=" + strings.Repeat("A", 43), "TX"},
	} {
		f.Add(s.query, s.tx)
	}
	f.Fuzz(func(t *testing.T, query, txValue string) {
		ctx := context.Background()
		ar, err := c.AuthorizeURL(ctx, AuthorizeOptions{Policy: MFA})
		if err != nil {
			t.Fatal(err)
		}
		other, err := c.AuthorizeURL(ctx, AuthorizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		query = strings.ReplaceAll(query, "STATE", ar.State)
		txValue = strings.ReplaceAll(strings.ReplaceAll(txValue, "OTHER", other.Transaction), "TX", ar.Transaction)
		q, err := url.ParseQuery(query)
		if err != nil {
			return // net/http would not hand such a query to the handler either
		}
		login, err := c.Exchange(ctx, q, txValue)
		if err == nil {
			t.Fatalf("Exchange(%q, %q) succeeded with an unreachable tenant: %+v", query, txValue, login)
		}
		var ae *AuthorizeError
		var te *TenantError
		switch {
		case errors.Is(err, ErrInvalidCallback), errors.Is(err, ErrTransactionNotFound),
			errors.Is(err, ErrStateMismatch), errors.Is(err, ErrIssuerMismatch),
			errors.As(err, &ae), errors.As(err, &te):
		default:
			t.Fatalf("Exchange(%q, %q): undocumented error %v", query, txValue, err)
		}
		if st := ErrorStatus(err); st < 400 {
			t.Fatalf("ErrorStatus(%v) = %d, want an error status", err, st)
		}
		if txValue != ar.Transaction || q.Get("state") != ar.State {
			// Not this transaction's own browser: the store must not have been touched.
			if _, err := c.store.Get(ctx, c.usedKey(q.Get("state"), q.Get("code"))); err == nil {
				t.Fatalf("Exchange(%q, %q) wrote a marker without the transaction's cookie", query, txValue)
			}
		}
		if ae != nil && (len(ae.Code) > maxAuthorizeErrorCode+len("…") || len(ae.Description) > maxAuthorizeErrorDescr+len("…")) {
			t.Fatalf("AuthorizeError not bounded: %d, %d bytes", len(ae.Code), len(ae.Description))
		}
	})
}

// FuzzSessionCookie: the session cookie comes from the browser. Only the
// exact cookie issued for a session may load it.
func FuzzSessionCookie(f *testing.F) {
	c := newFuzzClient(f)
	now := time.Now()
	s, err := c.StartSession(context.Background(), &LoginResult{
		IDToken: &IDToken{Subject: "auth0|fuzz", AuthTime: now, ACR: ACRMultiFactor, AMR: []string{"mfa"}},
		Token:   (&oauth2.Token{AccessToken: "at", RefreshToken: "rt", Expiry: now.Add(time.Hour)}),
		Policy:  MFA,
		At:      now,
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	valid := c.SessionCookie(s).Value
	f.Add(valid)
	f.Add(s.Handle + ".")
	f.Add(s.Handle + "." + strings.Repeat("A", 43))
	f.Add("." + valid)
	f.Add(valid + ".x")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := c.LoadSession(context.Background(), v)
		if v == valid {
			if err != nil || got.Handle != s.Handle {
				t.Fatalf("the issued cookie does not load its session: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("cookie %q loaded session %s", v, got.Handle)
		}
		if !errors.Is(err, ErrNoSession) {
			t.Fatalf("cookie %q: got %v, want ErrNoSession", v, err)
		}
	})
}

// FuzzOpenSealed: sealed blobs come back from the store, which whoever can
// write to it controls. open must never panic and must accept only a blob
// sealed by the ring for that same additional data. (Each fuzzing worker
// seals its own seeds with fresh nonces, so the check is on what open
// returns, not on the blob's bytes.)
func FuzzOpenSealed(f *testing.F) {
	old := bytes.Repeat([]byte{1}, 32)
	cur := bytes.Repeat([]byte{2}, 32)
	ring, err := newKeyRing([][]byte{cur, old})
	if err != nil {
		f.Fatal(err)
	}
	oldRing, err := newKeyRing([][]byte{old})
	if err != nil {
		f.Fatal(err)
	}
	aad := []byte("handle|aud|refresh")
	secret := []byte("a refresh token")
	genuine := [][]byte{ring.seal(secret, aad), oldRing.seal(secret, aad)}
	for _, g := range genuine {
		f.Add(g, aad)
		f.Add(g, []byte("other|aud|refresh"))
		f.Add(g[:len(g)-1], aad)
	}
	f.Add([]byte{}, aad)
	f.Fuzz(func(t *testing.T, blob, ad []byte) {
		pt, err := ring.open(blob, ad)
		if err != nil {
			return
		}
		if !bytes.Equal(ad, aad) || !bytes.Equal(pt, secret) {
			t.Fatalf("open accepted a blob it did not seal (aad %q, plaintext %q)", ad, pt)
		}
	})
}
