package stepup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stepupauth/stepup/auth0test"
)

// dropMFAIDToken is a transport that removes the id_token from the tenant's
// answers to MFA API grants (as a tenant may, or an attacker in the path).
type dropMFAIDToken struct {
	base http.RoundTripper
	n    *atomic.Int64 // answers rewritten
}

func (d dropMFAIDToken) RoundTrip(r *http.Request) (*http.Response, error) {
	isMFA := false
	if r.Body != nil && r.URL.Path == "/oauth/token" {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		isMFA = bytes.Contains(b, []byte("grant-type%2Fmfa-"))
	}
	resp, err := d.base.RoundTrip(r)
	if err != nil || !isMFA || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "id_token")
	if b, err = json.Marshal(m); err != nil {
		return nil, err
	}
	d.n.Add(1)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return resp, nil
}

// CompleteMFA fails closed: it accepts only an mfa_token that a refresh of
// the named session and audience received, and only an answer with an ID
// token of the session's user. Otherwise nothing is recorded.
func TestCompleteMFABoundToSession(t *testing.T) {
	var demand atomic.Bool
	e := newWkEnv(t, wkOpts{action: func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
		if ev.Protocol == auth0test.ProtocolRefreshToken && demand.Load() {
			api.RequireMFA()
		}
	}})
	var dropped atomic.Int64
	c := e.client(nil, func(cfg *Config) {
		hc := *cfg.HTTPClient
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		hc.Transport = dropMFAIDToken{base: base, n: &dropped}
		cfg.HTTPClient = &hc
	})
	ctx := context.Background()
	login := func(email, password string) *Session {
		t.Helper()
		ar, err := c.AuthorizeURL(ctx, AuthorizeOptions{Policy: Login})
		if err != nil {
			t.Fatal(err)
		}
		cb, err := e.tn.Login(ctx, ar.URL, auth0test.Credentials{Email: email, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Exchange(ctx, cb.Query(), ar.Transaction)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.StartSession(ctx, res, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	victim := login(auth0test.BobEmail, auth0test.BobPassword)
	attacker := login(auth0test.AliceEmail, auth0test.AlicePassword)
	e.clock.Advance(wkAccessLifetime)
	demand.Store(true)
	_, err := c.TokenSource(ctx, attacker.Handle, TokenSourceOptions{Audience: wkAPI}).Token()
	var me *MFARequiredError
	if !errors.As(err, &me) {
		t.Fatalf("attacker's refresh: got %v, want *MFARequiredError", err)
	}
	stepped := func(handle string) bool {
		s, err := c.Session(ctx, handle)
		if err != nil {
			t.Fatal(err)
		}
		return !s.StepUpAt.IsZero() || c.CheckSession(s, MFA) == nil
	}

	// The attacker's mfa_token, presented for the victim's session.
	forged := &MFARequiredError{Handle: victim.Handle, Audience: wkAPI, MFAToken: me.MFAToken}
	_, err = c.CompleteMFA(ctx, forged, MFAProof{OTP: e.tn.OTP(auth0test.AliceEmail)})
	if !errors.Is(err, ErrMFATokenUnbound) {
		t.Errorf("foreign mfa_token: got %v, want ErrMFATokenUnbound", err)
	}
	// The right session, another audience.
	other := &MFARequiredError{Handle: attacker.Handle, Audience: "", MFAToken: me.MFAToken}
	if _, err := c.CompleteMFA(ctx, other, MFAProof{OTP: e.tn.OTP(auth0test.AliceEmail)}); !errors.Is(err, ErrMFATokenUnbound) {
		t.Errorf("mfa_token of another audience: got %v, want ErrMFATokenUnbound", err)
	}
	if dropped.Load() != 0 {
		t.Errorf("the tenant was called %d times with an unbound mfa_token", dropped.Load())
	}
	if stepped(victim.Handle) {
		t.Fatal("the victim's session satisfies MFA after another user's mfa_token")
	}

	// The session's own mfa_token, but the answer has no ID token.
	_, err = c.CompleteMFA(ctx, me, MFAProof{OTP: e.tn.OTP(auth0test.AliceEmail)})
	if !errors.Is(err, ErrMissingIDToken) {
		t.Errorf("MFA answer without an ID token: got %v, want ErrMissingIDToken", err)
	}
	if dropped.Load() != 1 {
		t.Errorf("MFA answers without an ID token: %d, want 1", dropped.Load())
	}
	if stepped(attacker.Handle) {
		t.Error("an MFA answer without an ID token was recorded as a step-up")
	}
}
