package auth0test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestActionEventAuthentication follows event.authentication.methods through a
// session: first factor, a step-up (the Action runs before its MFA), a later
// login whose Action sees the session's earlier MFA (and copies its time into
// an access-token claim) while the OTP page is shown again
// (allowRememberBrowser:false), a refresh, prompt=login, and an MFA API grant.
func TestActionEventAuthentication(t *testing.T) {
	const mfaTimeClaim = "https://stepup.example/mfa_time"
	clk := newClock()
	var (
		mu   sync.Mutex
		seen []ActionEvent
	)
	const audience = "https://api.example"
	tn := NewTenant(t, Config{Now: clk.Now, APIs: []API{{Identifier: audience}}, Action: func(ev *ActionEvent, api *ActionAPI) {
		mu.Lock()
		seen = append(seen, *ev)
		mu.Unlock()
		for _, m := range ev.Authentication {
			if m.Name == "mfa" {
				api.SetAccessTokenClaim(mfaTimeClaim, m.Timestamp.Unix())
			}
		}
	}})
	last := func(wantProtocol string) ActionEvent {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			t.Fatal("the Action did not run")
		}
		ev := seen[len(seen)-1]
		if ev.Protocol != wantProtocol {
			t.Fatalf("last Action event: protocol %q, want %q", ev.Protocol, wantProtocol)
		}
		return ev
	}
	atClaims := func(m map[string]any) map[string]any {
		t.Helper()
		return verifiedClaims(t, tn, m["access_token"].(string))
	}
	stepUp := map[string]string{"acr_values": MFAACR, "audience": audience}

	// 1. Password login: the first factor only.
	t0 := clk.Now()
	b := tn.NewBrowser()
	exchange(t, tn, login(t, b, authorizeURL(tn, nil), alice))
	if got, want := last(ProtocolOIDC).Authentication, []AuthMethod{{"pwd", t0}}; !cmp.Equal(got, want) {
		t.Errorf("password login: Authentication = %v, want %v", got, want)
	}

	// 2. Step-up in the same session: the Action runs before the OTP page, so
	// the event has no "mfa" element yet and the token no MFA time.
	clk.Advance(5 * time.Minute)
	t1 := clk.Now()
	m := exchange(t, tn, login(t, b, authorizeURL(tn, stepUp), alice))
	if got, want := last(ProtocolOIDC).Authentication, []AuthMethod{{"pwd", t0}}; !cmp.Equal(got, want) {
		t.Errorf("step-up login: Authentication = %v, want %v", got, want)
	}
	if _, ok := atClaims(m)[mfaTimeClaim]; ok {
		t.Errorf("step-up login: the access token has %s before any MFA was recorded", mfaTimeClaim)
	}

	// 3. A later login in the session: pwd at t0, mfa at t1; the Action copies t1.
	clk.Advance(5 * time.Minute)
	m = exchange(t, tn, login(t, b, authorizeURL(tn, stepUp), alice))
	if !cmp.Equal(b.Pages, []string{"otp"}) {
		t.Errorf("SSO step-up showed pages %v, want [otp]", b.Pages)
	}
	if got, want := last(ProtocolOIDC).Authentication, []AuthMethod{{"pwd", t0}, {"mfa", t1}}; !cmp.Equal(got, want) {
		t.Errorf("login after MFA: Authentication = %v, want %v", got, want)
	}
	if got := atClaims(m)[mfaTimeClaim]; got != float64(t1.Unix()) {
		t.Errorf("access token %s = %v, want %d", mfaTimeClaim, got, t1.Unix())
	}

	// 4. Refresh-token exchange: no authentication methods.
	st, r := post(t, tn, "/oauth/token", refreshForm(m["refresh_token"].(string)))
	if st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, r)
	}
	if got := last(ProtocolRefreshToken).Authentication; got != nil {
		t.Errorf("refresh: Authentication = %v, want nil", got)
	}

	// 5. prompt=login starts over: the new first factor, no earlier MFA.
	clk.Advance(5 * time.Minute)
	t3 := clk.Now()
	exchange(t, tn, login(t, b, authorizeURL(tn, map[string]string{"prompt": "login"}), alice))
	if got, want := last(ProtocolOIDC).Authentication, []AuthMethod{{"pwd", t3}}; !cmp.Equal(got, want) {
		t.Errorf("prompt=login: Authentication = %v, want %v", got, want)
	}

	// 6. MFA API grant: the MFA just performed.
	clk.Advance(time.Minute)
	t4 := clk.Now()
	app := DefaultApplication()
	tok, err := tn.NewMFAToken(app.ClientID, AliceEmail, "openid", "")
	if err != nil {
		t.Fatal(err)
	}
	st, r = post(t, tn, "/oauth/token", url.Values{"grant_type": {GrantMFAOTP}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "mfa_token": {tok}, "otp": {tn.OTP(AliceEmail)}})
	if st != http.StatusOK {
		t.Fatalf("mfa-otp grant: %d %v", st, r)
	}
	if got, want := last(ProtocolMFA).Authentication, []AuthMethod{{"mfa", t4}}; !cmp.Equal(got, want) {
		t.Errorf("MFA API: Authentication = %v, want %v", got, want)
	}
}
