package stepup

import (
	"context"
	"errors"
	"github.com/stepupauth/stepup/store"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/auth0test"
)

// mfa_required on a refresh (an Action demanding MFA) → the MFA API
// through go-auth0 → the step-up recorded in the session and the new tokens
// used by the token source.
func TestMFARequiredOnRefresh(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    string // authenticator type to challenge
		deny    bool
		wantErr error
	}{
		{name: "otp", kind: "otp"},
		{name: "oob approved", kind: "oob"},
		{name: "oob denied", kind: "oob", deny: true, wantErr: ErrStepUpDenied},
		{name: "recovery code", kind: "recovery-code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var demand atomic.Bool
			e := newWkEnv(t, wkOpts{action: func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
				if ev.Protocol == auth0test.ProtocolRefreshToken && demand.Load() {
					api.RequireMFA()
				}
			}})
			c := e.client(nil, nil)
			s := e.login(c, Login)
			ctx := context.Background()
			e.clock.Advance(wkAccessLifetime)
			demand.Store(true)
			ts := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI})
			_, err := ts.Token()
			var me *MFARequiredError
			if !errors.As(err, &me) || !errors.Is(err, ErrMFARequired) || me.MFAToken == "" || me.Audience != wkAPI || me.Handle != s.Handle {
				t.Fatalf("Token: got %v, want *MFARequiredError with an mfa_token", err)
			}
			// A refused refresh releases the lease: another worker asks at
			// once and gets its own mfa_token.
			_, err = c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token()
			var me2 *MFARequiredError
			if !errors.As(err, &me2) || me2.MFAToken == me.MFAToken {
				t.Fatalf("second worker: got %v, want its own *MFARequiredError", err)
			}
			auths, err := c.MFAAuthenticators(ctx, me.MFAToken)
			if err != nil {
				t.Fatalf("MFAAuthenticators: %v", err)
			}
			var types []string
			var id string
			for _, a := range auths {
				types = append(types, a.Type)
				if a.Type == tc.kind {
					id = a.ID
				}
			}
			if diff := cmp.Diff([]string{"otp", "oob", "recovery-code"}, types); diff != "" {
				t.Fatalf("authenticator types (-want +got):\n%s", diff)
			}
			var proof MFAProof
			switch tc.kind {
			case "otp":
				ch, err := c.ChallengeMFA(ctx, me.MFAToken, id, "otp")
				if err != nil || ch.Type != "otp" {
					t.Fatalf("ChallengeMFA otp: %+v, %v", ch, err)
				}
				proof.OTP = e.tn.OTP(auth0test.AliceEmail)
			case "oob":
				ch, err := c.ChallengeMFA(ctx, me.MFAToken, id, "oob")
				if err != nil || ch.Type != "oob" || ch.OOBCode == "" {
					t.Fatalf("ChallengeMFA oob: %+v, %v", ch, err)
				}
				polls := 0
				proof = MFAProof{OOBCode: ch.OOBCode, PollInterval: time.Second, Wait: func(ctx context.Context, d time.Duration) error {
					polls++
					e.clock.Advance(d)
					if polls == 1 { // the user answers on their phone after the first poll
						if tc.deny {
							return e.tn.DenyOOB(ch.OOBCode)
						}
						return e.tn.ApproveOOB(ch.OOBCode)
					}
					return nil
				}}
			case "recovery-code":
				proof.RecoveryCode = auth0test.AliceRecoveryCode
			}
			res, err := c.CompleteMFA(ctx, me, proof)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("CompleteMFA: got %v, want %v", err, tc.wantErr)
				}
				if _, err := c.SessionFor(ctx, s.Handle, MFA); !errors.Is(err, ErrStepUpRequired) {
					t.Errorf("a denied MFA recorded a step-up: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CompleteMFA: %v", err)
			}
			if tc.kind == "recovery-code" && (res.RecoveryCode == "" || res.RecoveryCode == auth0test.AliceRecoveryCode) {
				t.Errorf("new recovery code %q, want a new one", res.RecoveryCode)
			}
			if _, err := c.SessionFor(ctx, s.Handle, MFA.WithMaxAge(5*time.Minute)); err != nil {
				t.Errorf("SessionFor(MFA within 5 min) after the MFA API: %v", err)
			}
			if diff := cmp.Diff(s.Authentication, res.Session.Authentication); diff != "" {
				t.Errorf("the login's evidence changed (-before +after):\n%s", diff)
			}
			refreshes := e.tn.GrantCalls(auth0test.GrantRefreshToken)
			tok, err := ts.Token()
			if err != nil || tok.AccessToken != res.Token.AccessToken {
				t.Fatalf("Token after MFA: %v (the MFA token: %v)", err, err == nil && tok.AccessToken == res.Token.AccessToken)
			}
			if got := e.tn.GrantCalls(auth0test.GrantRefreshToken); got != refreshes {
				t.Errorf("Token after MFA refreshed %d times, want 0", got-refreshes)
			}
			// The MFA grant's refresh token (a new family) serves the next expiry.
			demand.Store(false)
			e.clock.Advance(wkAccessLifetime)
			if _, err := ts.Token(); err != nil {
				t.Fatalf("next expiry: %v", err)
			}
			if ev := e.refreshEvents(); ev["reused"] != 0 || ev["rotated"] != 1 {
				t.Errorf("tenant refresh log: %v, want one rotation and no reuse", ev)
			}
		})
	}
}

func TestCompleteMFARejectsBadInput(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	s := e.login(c, Login)
	ctx := context.Background()
	if _, err := c.CompleteMFA(ctx, nil, MFAProof{OTP: "1"}); err == nil {
		t.Error("nil MFARequiredError accepted")
	}
	if _, err := c.CompleteMFA(ctx, &MFARequiredError{Handle: s.Handle, MFAToken: "x"}, MFAProof{}); err == nil {
		t.Error("empty proof accepted")
	}
	tok, err := e.tn.NewMFAToken(auth0test.DefaultApplication().ClientID, auth0test.AliceEmail, "openid offline_access", wkAPI)
	if err != nil {
		t.Fatal(err)
	}
	// A tenant's mfa_token that no refresh of the session received.
	if _, err := c.CompleteMFA(ctx, &MFARequiredError{Handle: s.Handle, Audience: wkAPI, MFAToken: tok}, MFAProof{OTP: e.tn.OTP(auth0test.AliceEmail)}); !errors.Is(err, ErrMFATokenUnbound) {
		t.Errorf("unbound mfa_token: got %v, want ErrMFATokenUnbound", err)
	}
	if err := c.bindMFAToken(ctx, s.Handle, wkAPI, tok); err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMFA(ctx, &MFARequiredError{Handle: s.Handle, Audience: wkAPI, MFAToken: tok}, MFAProof{OTP: "000000"})
	var te *TenantError
	if !errors.As(err, &te) || te.Code != "invalid_grant" {
		t.Errorf("wrong OTP: got %v, want a *TenantError invalid_grant", err)
	}
}

// SessionFor checks each action's policy on its own.
func TestSessionForPerAction(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	// With max_age, so that the tenant sends auth_time (Auth0 does only then).
	s := e.login(c, MFA.WithMaxAge(10*time.Minute))
	ctx := context.Background()
	e.clock.Advance(6 * time.Minute)
	for _, tc := range []struct {
		name   string
		policy Policy
		reason Reason
	}{
		{"login", Login, ""},
		{"mfa within 10 min (pages)", MFA.WithMaxAge(10 * time.Minute), ""},
		{"mfa within 5 min (export salaries)", MFA.WithMaxAge(5 * time.Minute).Named("export-salaries"), ReasonTooOld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.SessionFor(ctx, s.Handle, tc.policy)
			if got == nil || got.Handle != s.Handle {
				t.Fatalf("session %v, err %v", got, err)
			}
			var se *StepUpError
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.reason != "" && (!errors.As(err, &se) || se.Reason != tc.reason):
				t.Fatalf("got %v, want a *StepUpError %q", err, tc.reason)
			}
		})
	}
	if _, err := c.SessionFor(ctx, "no-such-handle", Login); !errors.Is(err, ErrNoSession) {
		t.Errorf("unknown handle: got %v, want ErrNoSession", err)
	}
}

// Logout revokes the refresh token at the tenant and deletes the session and
// its token records.
func TestWorkerLogout(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	s := e.login(c, Login)
	ctx := context.Background()
	ts := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI})
	e.clock.Advance(wkAccessLifetime)
	if _, err := ts.Token(); err != nil { // a rotation record now exists
		t.Fatal(err)
	}
	if err := c.Logout(ctx, s.Handle); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 1, "revoked": 1}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
	if _, err := c.Session(ctx, s.Handle); !errors.Is(err, ErrNoSession) {
		t.Errorf("Session after Logout: got %v, want ErrNoSession", err)
	}
	if _, err := ts.Token(); !errors.Is(err, ErrNoSession) {
		t.Errorf("Token after Logout: got %v, want ErrNoSession", err)
	}
	if _, err := e.store.Get(ctx, c.tokenKey(s.Handle, wkAPI)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token record after Logout: %v", err)
	}
	if err := c.Logout(ctx, s.Handle); err != nil {
		t.Errorf("second Logout: %v", err)
	}
}

// go-auth0 is created on first use (a Client starts while the tenant is
// down), a failed creation is retried at the next use, and the Client's
// *http.Client is not changed by go-auth0's WithClient.
func TestGoAuth0CreatedLazily(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	hc := e.tn.Client()
	transport := hc.Transport
	c := e.client(nil, func(cfg *Config) { cfg.HTTPClient = hc })
	e.login(c, Login) // our own JWKS cache is warm now
	tok, err := e.tn.NewMFAToken(auth0test.DefaultApplication().ClientID, auth0test.AliceEmail, "openid", wkAPI)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	jwks := e.tn.Calls("/.well-known/jwks.json")
	e.tn.InjectFault("/.well-known/jwks.json", auth0test.Fault{Status: 503, Times: 1})
	if _, err := c.MFAAuthenticators(ctx, tok); !errors.Is(err, ErrTenantUnavailable) {
		t.Fatalf("go-auth0 creation while the tenant fails: got %v, want ErrTenantUnavailable", err)
	}
	if _, err := c.MFAAuthenticators(ctx, tok); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := c.MFAAuthenticators(ctx, tok); err != nil {
		t.Fatalf("third call: %v", err)
	}
	if got := e.tn.Calls("/.well-known/jwks.json") - jwks; got != 2 {
		t.Errorf("go-auth0 fetched the JWKS %d times, want 2 (one failed creation, one success)", got)
	}
	if hc.Transport != transport {
		t.Error("the Client's *http.Client was changed by go-auth0")
	}
}
