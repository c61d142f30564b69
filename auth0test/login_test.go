package auth0test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDiscoveryAndJWKS(t *testing.T) {
	tn := NewTenant(t, Config{})
	resp, err := tn.Client().Get(tn.URL() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if got, want := d["issuer"], "https://"+tn.Domain()+"/"; got != want {
		t.Errorf("issuer = %v, want %v", got, want)
	}
	if got, want := d["jwks_uri"], tn.Issuer()+".well-known/jwks.json"; got != want {
		t.Errorf("jwks_uri = %v, want %v", got, want)
	}
	// Auth0 publishes these only when enabled (fidelity_test.go has the sources).
	for _, k := range []string{"acr_values_supported", "end_session_endpoint", "pushed_authorization_request_endpoint",
		"backchannel_authentication_endpoint", "backchannel_logout_supported"} {
		if v, ok := d[k]; ok {
			t.Errorf("default tenant advertises %s = %v", k, v)
		}
	}
	resp2, err := tn.Client().Get(tn.URL() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var set struct{ Keys []map[string]any }
	if err := json.NewDecoder(resp2.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	cur, next, prev := tn.SigningKeys()
	if prev != nil {
		t.Errorf("previous key before any rotation: %v", prev.KID)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k["kid"].(string))
		// x5c is the key's certificate, as in Auth0's JWKS.
		x5c, _ := k["x5c"].([]any)
		if len(x5c) != 1 {
			t.Fatalf("x5c = %v", k["x5c"])
		}
		der, _ := base64.StdEncoding.DecodeString(x5c[0].(string))
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := cert.PublicKey.(*rsa.PublicKey)
		if pub == nil || b64(pub.N.Bytes()) != k["n"] {
			t.Errorf("x5c certificate does not hold the key %v", k["kid"])
		}
	}
	if want := []string{cur.KID, next.KID}; !cmp.Equal(kids, want) {
		t.Errorf("JWKS kids = %v, want current+next %v", kids, want)
	}
	// A client that does not trust the CA must fail.
	if _, err := http.Get(tn.URL() + "/.well-known/jwks.json"); err == nil {
		t.Error("default client trusted the tenant's private CA")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	tn, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tn.Close()
	tn.Close()
	if _, err := tn.Client().Get(tn.URL() + "/.well-known/jwks.json"); err == nil {
		t.Error("tenant still serving after Close")
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no client id", Config{Applications: []Application{{Name: "x"}}}},
		{"dup client", Config{Applications: []Application{DefaultApplication(), DefaultApplication()}}},
		{"bad auth method", Config{Applications: []Application{{ClientID: "a", TokenEndpointAuthMethod: "tls"}}}},
		{"hs256 without secret", Config{Applications: []Application{{ClientID: "a", IDTokenAlg: "HS256"}}}},
		{"user without email", Config{Users: []User{{ID: "auth0|x"}}}},
		{"bad totp secret", Config{Users: []User{{ID: "auth0|x", Email: "x@y", TOTPSecret: "!!!"}}}},
		{"unknown connection", Config{Users: []User{{ID: "auth0|x", Email: "x@y", Connection: "nope"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn, err := Start(tc.cfg)
			if err == nil {
				tn.Close()
				t.Fatal("Start succeeded, want an error")
			}
		})
	}
}

func TestLoginCodeFlow(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now})
	b := tn.NewBrowser()
	cb, err := b.Login(context.Background(), authorizeURL(tn, nil), alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != DefaultApplication().CallbackURLs[0] {
		t.Errorf("callback = %s", got)
	}
	if cb.Query().Get("state") != "state-123" || cb.Query().Get("iss") != "" {
		t.Errorf("callback query = %v", cb.Query())
	}
	if !cmp.Equal(b.Pages, []string{"login"}) {
		t.Errorf("pages = %v, want [login]", b.Pages)
	}
	m := exchange(t, tn, cb.Query().Get("code"))
	if m["token_type"] != "Bearer" || m["expires_in"] != float64(86400) || m["refresh_token"] == nil {
		t.Errorf("token response = %v", m)
	}
	id := verifiedClaims(t, tn, m["id_token"].(string))
	want := map[string]any{
		"iss": tn.Issuer(), "sub": "auth0|alice", "aud": DefaultApplication().ClientID, "nonce": "nonce-456",
		"iat": float64(clk.Now().Unix()), "exp": float64(clk.Now().Add(36000 * time.Second).Unix()),
		"email": AliceEmail, "email_verified": true,
	}
	if v, ok := id["auth_time"]; ok {
		t.Errorf("auth_time = %v without max_age or prompt=login", v)
	}
	for k, v := range want {
		if id[k] != v {
			t.Errorf("id_token %s = %v, want %v", k, id[k], v)
		}
	}
	if _, ok := id["amr"]; ok {
		t.Errorf("amr without MFA: %v", id["amr"])
	}
	if _, ok := id["acr"]; ok {
		t.Errorf("acr without request: %v", id["acr"])
	}
	if id["sid"] == nil {
		t.Error("no sid")
	}
	// No audience: an opaque access token, good for /userinfo.
	if tok := m["access_token"].(string); strings.Count(tok, ".") == 2 || !tn.IsOpaque(tok) {
		t.Errorf("access token without audience = %q, want an opaque token", tok)
	}
	// /userinfo answers for it.
	req, _ := http.NewRequest(http.MethodGet, tn.URL()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+m["access_token"].(string))
	resp, err := tn.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	json.NewDecoder(resp.Body).Decode(&ui)
	resp.Body.Close()
	if ui["sub"] != "auth0|alice" || ui["email"] != AliceEmail {
		t.Errorf("userinfo = %v", ui)
	}
	// The code is single use.
	if st, m := post(t, tn, "/oauth/token", codeForm(cb.Query().Get("code"))); st != 403 || m["error"] != "invalid_grant" {
		t.Errorf("replayed code: %d %v", st, m)
	}
}

func TestStepUpWithSSO(t *testing.T) {
	for _, remember := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowRememberBrowser=%v", remember), func(t *testing.T) {
			clk := newClock()
			tn := NewTenant(t, Config{Now: clk.Now, AllowRememberBrowser: remember})
			b := tn.NewBrowser()
			// 1. plain login with max_age: no MFA, auth_time present.
			login(t, b, authorizeURL(tn, map[string]string{"max_age": "3600"}), alice)
			// 2. SSO: no page at all; auth_time only because max_age was sent.
			clk.Advance(time.Minute)
			code := login(t, b, authorizeURL(tn, map[string]string{"max_age": "3600"}), alice)
			if len(b.Pages) != 0 {
				t.Errorf("SSO login showed pages %v", b.Pages)
			}
			id := claimsOf(t, exchange(t, tn, code)["id_token"].(string))
			if id["auth_time"] != float64(clk.Now().Add(-time.Minute).Unix()) {
				t.Errorf("SSO auth_time = %v, want the first login's", id["auth_time"])
			}
			// 3. step-up: acr_values forces the OTP page even with the SSO session.
			clk.Advance(time.Minute)
			code = login(t, b, authorizeURL(tn, map[string]string{"acr_values": MFAACR, "max_age": "3600"}), alice)
			if !cmp.Equal(b.Pages, []string{"otp"}) {
				t.Errorf("step-up pages = %v, want [otp]", b.Pages)
			}
			m := exchange(t, tn, code)
			id = verifiedClaims(t, tn, m["id_token"].(string))
			if id["acr"] != MFAACR || !cmp.Equal(id["amr"], []any{"mfa"}) {
				t.Errorf("step-up acr=%v amr=%v", id["acr"], id["amr"])
			}
			if id["auth_time"] != float64(clk.Now().Add(-2*time.Minute).Unix()) {
				t.Errorf("step-up auth_time = %v, want the password login's", id["auth_time"])
			}
			// 4. a step-up without max_age: no auth_time (Auth0 documents it only
			// with max_age / prompt=login).
			code = login(t, b, authorizeURL(tn, map[string]string{"acr_values": MFAACR}), alice)
			wantPages := []string{"otp"} // allowRememberBrowser:false: MFA each time
			if remember {
				wantPages = nil
			}
			if !cmp.Equal(b.Pages, wantPages) {
				t.Errorf("second step-up pages = %v, want %v", b.Pages, wantPages)
			}
			id = claimsOf(t, exchange(t, tn, code)["id_token"].(string))
			if id["acr"] != MFAACR {
				t.Errorf("second step-up acr = %v", id["acr"])
			}
			if v, ok := id["auth_time"]; ok {
				t.Errorf("step-up without max_age: auth_time = %v", v)
			}
			// 5. prompt=login re-authenticates fully: password and OTP again.
			login(t, b, authorizeURL(tn, map[string]string{"acr_values": MFAACR, "prompt": "login"}), alice)
			if !cmp.Equal(b.Pages, []string{"login", "otp"}) {
				t.Errorf("prompt=login pages = %v", b.Pages)
			}
		})
	}
}

func TestAlwaysIncludeAuthTime(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now, AlwaysIncludeAuthTime: true})
	id := claimsOf(t, exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["id_token"].(string))
	if id["auth_time"] != float64(clk.Now().Unix()) {
		t.Errorf("auth_time = %v, want the login's", id["auth_time"])
	}
}

func TestStepUpRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		cfg     Config
		creds   Credentials
		params  map[string]string
		wantErr error
		wantCB  string // error in the callback
		wantACR bool
	}{
		{name: "skip otp", creds: Credentials{Email: AliceEmail, Password: AlicePassword, SkipOTP: true},
			params: map[string]string{"acr_values": MFAACR}, wantErr: ErrMFARequired},
		{name: "wrong otp", creds: Credentials{Email: AliceEmail, Password: AlicePassword, OTP: "000000"},
			params: map[string]string{"acr_values": MFAACR}, wantErr: ErrOTPRejected},
		{name: "wrong password", creds: Credentials{Email: AliceEmail, Password: "nope"}, wantErr: ErrLoginFailed},
		{name: "user without factor", creds: Credentials{Email: BobEmail, Password: BobPassword},
			params: map[string]string{"acr_values": MFAACR}, wantCB: "access_denied"},
		{name: "ignored acr", cfg: Config{IgnoreACRValues: true}, creds: alice,
			params: map[string]string{"acr_values": MFAACR}},
		{name: "unsupported acr", cfg: Config{ACRValuesSupported: []string{"urn:other"}}, creds: alice,
			params: map[string]string{"acr_values": MFAACR}},
		{name: "blocked", cfg: Config{Users: []User{{ID: "auth0|z", Email: "z@x", Password: "p", Blocked: true}}},
			creds: Credentials{Email: "z@x", Password: "p"}, wantCB: "unauthorized"},
	}
	shared := NewTenant(t, Config{}) // for the cases with the default configuration
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := shared
			if !reflect.ValueOf(tc.cfg).IsZero() {
				tn = NewTenant(t, tc.cfg)
			}
			cb, err := tn.Login(ctx, authorizeURL(tn, tc.params), tc.creds)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cb.Query().Get("error"); got != tc.wantCB {
				t.Fatalf("callback error = %q (%s), want %q", got, cb.Query().Get("error_description"), tc.wantCB)
			}
			if tc.wantCB != "" {
				return
			}
			id := claimsOf(t, exchange(t, tn, cb.Query().Get("code"))["id_token"].(string))
			if _, ok := id["acr"]; ok {
				t.Errorf("acr = %v from a tenant that did not perform MFA", id["acr"])
			}
			if _, ok := id["amr"]; ok {
				t.Errorf("amr = %v from a tenant that did not perform MFA", id["amr"])
			}
		})
	}
}

func TestPromptNone(t *testing.T) {
	tn := NewTenant(t, Config{})
	b := tn.NewBrowser()
	ctx := context.Background()
	none := map[string]string{"prompt": "none"}
	cb, err := b.Login(ctx, authorizeURL(tn, none), alice)
	if err != nil || cb.Query().Get("error") != "login_required" || cb.Query().Get("state") != "state-123" {
		t.Fatalf("no session: %v %v", cb, err)
	}
	login(t, b, authorizeURL(tn, nil), alice)
	code := login(t, b, authorizeURL(tn, none), alice)
	if len(b.Pages) != 0 {
		t.Errorf("prompt=none showed %v", b.Pages)
	}
	exchange(t, tn, code)
	cb, err = b.Login(ctx, authorizeURL(tn, map[string]string{"prompt": "none", "acr_values": MFAACR}), alice)
	if err != nil || cb.Query().Get("error") != "interaction_required" {
		t.Fatalf("MFA with prompt=none: %v %v", cb, err)
	}
	// After a step-up, prompt=none with acr_values still needs the OTP page
	// (allowRememberBrowser:false)...
	login(t, b, authorizeURL(tn, map[string]string{"acr_values": MFAACR}), alice)
	cb, err = b.Login(ctx, authorizeURL(tn, map[string]string{"prompt": "none", "acr_values": MFAACR}), alice)
	if err != nil || cb.Query().Get("error") != "interaction_required" {
		t.Fatalf("MFA with prompt=none after a step-up: %v %v", cb, err)
	}
	// ...and succeeds on a tenant that remembers the browser, but silent ID
	// tokens carry no amr.
	tn = NewTenant(t, Config{AllowRememberBrowser: true})
	b = tn.NewBrowser()
	login(t, b, authorizeURL(tn, map[string]string{"acr_values": MFAACR}), alice)
	code = login(t, b, authorizeURL(tn, map[string]string{"prompt": "none", "acr_values": MFAACR}), alice)
	id := claimsOf(t, exchange(t, tn, code)["id_token"].(string))
	if _, ok := id["amr"]; ok {
		t.Errorf("silent authentication returned amr %v", id["amr"])
	}
}

func TestMaxAge(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now})
	b := tn.NewBrowser()
	login(t, b, authorizeURL(tn, nil), alice)
	first := clk.Now()
	clk.Advance(4 * time.Minute)
	code := login(t, b, authorizeURL(tn, map[string]string{"max_age": "300"}), alice)
	if len(b.Pages) != 0 {
		t.Errorf("within max_age: pages %v", b.Pages)
	}
	if id := claimsOf(t, exchange(t, tn, code)["id_token"].(string)); id["auth_time"] != float64(first.Unix()) {
		t.Errorf("auth_time = %v, want %d", id["auth_time"], first.Unix())
	}
	// max_age=0 always re-authenticates, even when the clock has not moved.
	login(t, b, authorizeURL(tn, map[string]string{"max_age": "0"}), alice)
	if !cmp.Equal(b.Pages, []string{"login"}) {
		t.Errorf("max_age=0: pages %v, want [login]", b.Pages)
	}
	clk.Advance(6 * time.Minute)
	cb, err := b.Login(context.Background(), authorizeURL(tn, map[string]string{"max_age": "300", "prompt": "none"}), alice)
	if err != nil || cb.Query().Get("error") != "login_required" {
		t.Errorf("max_age exceeded with prompt=none: %v %v", cb, err)
	}
	code = login(t, b, authorizeURL(tn, map[string]string{"max_age": "300"}), alice)
	if !cmp.Equal(b.Pages, []string{"login"}) {
		t.Errorf("max_age exceeded: pages %v, want [login]", b.Pages)
	}
	if id := claimsOf(t, exchange(t, tn, code)["id_token"].(string)); id["auth_time"] != float64(clk.Now().Unix()) {
		t.Errorf("auth_time after re-login = %v, want %d", id["auth_time"], clk.Now().Unix())
	}
}

func TestSocialConnection(t *testing.T) {
	tn := NewTenant(t, Config{})
	b := tn.NewBrowser()
	code := login(t, b, authorizeURL(tn, map[string]string{"connection": GoogleConnection}), Credentials{Email: CarolEmail})
	if !cmp.Equal(b.Pages, []string{"social"}) {
		t.Errorf("pages = %v", b.Pages)
	}
	id := claimsOf(t, exchange(t, tn, code)["id_token"].(string))
	if id["sub"] != "google-oauth2|108000000000000000001" {
		t.Errorf("sub = %v", id["sub"])
	}
	// A database user cannot come through the social page.
	_, err := tn.Login(context.Background(), authorizeURL(tn, map[string]string{"connection": GoogleConnection}), alice)
	if !errors.Is(err, ErrLoginFailed) {
		t.Errorf("database user on the social page: %v", err)
	}
	// Step-up works for social users too.
	code = login(t, b, authorizeURL(tn, map[string]string{"connection": GoogleConnection, "acr_values": MFAACR}), Credentials{Email: CarolEmail})
	if !cmp.Equal(b.Pages, []string{"otp"}) {
		t.Errorf("social step-up pages = %v", b.Pages)
	}
	if id := claimsOf(t, exchange(t, tn, code)["id_token"].(string)); id["acr"] != MFAACR {
		t.Errorf("social step-up acr = %v", id["acr"])
	}
}

func TestAPIStepUpAndAction(t *testing.T) {
	const aud = "https://api.fabrikam.example"
	var mu sync.Mutex // the Action runs on the tenant's handler goroutines
	var seen []ActionEvent
	tn := NewTenant(t, Config{
		APIs: []API{{Identifier: aud, Scopes: []string{"read:payroll", "read:salaries"}, MFAScopes: []string{"read:salaries"}}},
		Action: func(ev *ActionEvent, api *ActionAPI) {
			mu.Lock()
			seen = append(seen, *ev)
			mu.Unlock()
			api.SetAccessTokenClaim("https://fabrikam.example/auth_level", ev.ACRValues)
			api.SetAccessTokenClaim("amr", []string{"mfa"}) // restricted: ignored
			api.SetIDTokenClaim("https://fabrikam.example/roles", []string{"hr"})
		},
	})
	b := tn.NewBrowser()
	code := login(t, b, authorizeURL(tn, map[string]string{"audience": aud, "scope": "openid read:payroll read:salaries bogus"}), alice)
	if !cmp.Equal(b.Pages, []string{"login", "otp"}) {
		t.Errorf("MFA scope pages = %v", b.Pages)
	}
	m := exchange(t, tn, code)
	if m["scope"] != "openid read:payroll read:salaries" {
		t.Errorf("scope = %v", m["scope"])
	}
	at := verifiedClaims(t, tn, m["access_token"].(string))
	if !cmp.Equal(at["aud"], []any{aud, tn.Issuer() + "userinfo"}) {
		t.Errorf("aud = %v", at["aud"])
	}
	if _, ok := at["amr"]; ok {
		t.Error("the Action put amr into an access token")
	}
	if _, ok := at["https://fabrikam.example/auth_level"]; !ok {
		t.Error("namespaced claim missing from the access token")
	}
	id := claimsOf(t, m["id_token"].(string))
	if !cmp.Equal(id["amr"], []any{"mfa"}) || !cmp.Equal(id["https://fabrikam.example/roles"], []any{"hr"}) {
		t.Errorf("id token = %v", id)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].Protocol != ProtocolOIDC || seen[0].Audience != aud || !slices.Contains(seen[0].AuthenticationMethods, "pwd") {
		t.Errorf("action events = %+v", seen)
	}
}

func TestActionDenyAndRequireMFA(t *testing.T) {
	tn := NewTenant(t, Config{Action: func(ev *ActionEvent, api *ActionAPI) {
		if ev.User.Email == BobEmail {
			api.Deny("bob is on leave")
		}
		api.RequireMFA()
	}})
	cb, err := tn.Login(context.Background(), authorizeURL(tn, nil), Credentials{Email: BobEmail, Password: BobPassword})
	if err != nil || cb.Query().Get("error") != "access_denied" || cb.Query().Get("error_description") != "bob is on leave" {
		t.Errorf("denied login: %v %v", cb, err)
	}
	b := tn.NewBrowser()
	login(t, b, authorizeURL(tn, nil), alice)
	if !cmp.Equal(b.Pages, []string{"login", "otp"}) {
		t.Errorf("RequireMFA pages = %v", b.Pages)
	}
}

func TestIssuerInAuthorizationResponse(t *testing.T) {
	tn := NewTenant(t, Config{IssuerInAuthorizationResponse: true})
	cb, err := tn.Login(context.Background(), authorizeURL(tn, nil), alice)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Query().Get("iss") != tn.Issuer() {
		t.Errorf("iss = %q", cb.Query().Get("iss"))
	}
	cb, _ = tn.Login(context.Background(), authorizeURL(tn, map[string]string{"prompt": "none"}), alice)
	if cb.Query().Get("iss") != tn.Issuer() || cb.Query().Get("error") != "login_required" {
		t.Errorf("error redirect = %v", cb)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	tests := []struct {
		name     string
		params   map[string]string
		wantPage string // error page code
		wantCB   string // callback error
	}{
		{"unknown client", map[string]string{"client_id": "nope"}, "unauthorized_client", ""},
		{"missing client", map[string]string{"client_id": ""}, "invalid_request", ""},
		{"callback mismatch", map[string]string{"redirect_uri": "https://evil.example/cb"}, "unauthorized_client", ""},
		{"bad response_type", map[string]string{"response_type": "token"}, "", "unsupported_response_type"},
		{"bad challenge method", map[string]string{"code_challenge_method": "S512"}, "", "invalid_request"},
		{"short challenge", map[string]string{"code_challenge": "abc"}, "", "invalid_request"},
		{"unknown audience", map[string]string{"audience": "https://nope"}, "", "access_denied"},
		{"unknown connection", map[string]string{"connection": "nope"}, "", "invalid_request"},
		{"bad max_age", map[string]string{"max_age": "-1"}, "", "invalid_request"},
		{"bad prompt", map[string]string{"prompt": "sometimes"}, "", "invalid_request"},
		{"none with login", map[string]string{"prompt": "none login"}, "", "invalid_request"},
		{"form_post", map[string]string{"response_mode": "form_post"}, "", "invalid_request"},
		{"organization", map[string]string{"organization": "org_123"}, "", "invalid_request"},
	}
	tn := NewTenant(t, Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb, err := tn.Login(context.Background(), authorizeURL(tn, tc.params), alice)
			if tc.wantPage != "" {
				var pe *PageError
				if !errors.As(err, &pe) || pe.Code != tc.wantPage || pe.Status != http.StatusBadRequest {
					t.Fatalf("got %v, %v; want error page %s", cb, err, tc.wantPage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cb.Query().Get("error"); got != tc.wantCB || cb.Query().Get("state") != "state-123" {
				t.Errorf("callback %v, want error %s", cb, tc.wantCB)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	tn := NewTenant(t, Config{})
	ctx := context.Background()
	b := tn.NewBrowser()
	code := login(t, b, authorizeURL(tn, nil), alice)
	idt := exchange(t, tn, code)["id_token"].(string)
	if !b.HasSession() {
		t.Fatal("no session after login")
	}
	// returnTo must be allowed.
	var pe *PageError
	if _, err := b.Logout(ctx, tn.URL()+"/v2/logout?client_id=stepup-demo-client&returnTo=https://evil.example/"); !errors.As(err, &pe) {
		t.Errorf("unlisted returnTo: %v", err)
	}
	if !b.HasSession() {
		t.Error("refused logout ended the session")
	}
	u, err := b.Logout(ctx, tn.URL()+"/v2/logout?client_id=stepup-demo-client&returnTo="+DefaultApplication().LogoutURLs[0])
	if err != nil || u.String() != DefaultApplication().LogoutURLs[0] {
		t.Fatalf("logout: %v %v", u, err)
	}
	if b.HasSession() {
		t.Error("session survived /v2/logout")
	}
	cb, _ := b.Login(ctx, authorizeURL(tn, map[string]string{"prompt": "none"}), alice)
	if cb.Query().Get("error") != "login_required" {
		t.Errorf("after logout, prompt=none: %v", cb)
	}
	// OIDC logout with id_token_hint and state: the old session's hint is not
	// this session: the tenant asks first.
	hint := func(idt string) string {
		return tn.URL() + "/oidc/logout?id_token_hint=" + idt + "&post_logout_redirect_uri=" + DefaultApplication().LogoutURLs[0] + "&state=xyz"
	}
	exchange(t, tn, login(t, b, authorizeURL(tn, nil), alice)) // a new session; idt names the one /v2/logout ended
	if err := b.DeclineLogout(ctx, hint(idt)); !errors.Is(err, ErrLogoutDeclined) || !b.HasSession() {
		t.Fatalf("declined logout: %v, session %v", err, b.HasSession())
	}
	u, err = b.Logout(ctx, hint(idt))
	if err != nil || u.Query().Get("state") != "xyz" || !cmp.Equal(b.Pages, []string{"logout-confirm"}) {
		t.Fatalf("oidc logout with a stale hint: %v %v pages %v", u, err, b.Pages)
	}
	if b.HasSession() {
		t.Error("session survived a confirmed /oidc/logout")
	}
	// The session's own hint: no confirmation.
	login(t, b, authorizeURL(tn, nil), alice)
	fresh := exchange(t, tn, login(t, b, authorizeURL(tn, nil), alice))["id_token"].(string)
	u, err = b.Logout(ctx, hint(fresh))
	if err != nil || u.Query().Get("state") != "xyz" || len(b.Pages) != 0 {
		t.Fatalf("oidc logout: %v %v pages %v", u, err, b.Pages)
	}
	if b.HasSession() {
		t.Error("session survived /oidc/logout")
	}
}

func TestTOTPVectors(t *testing.T) {
	// RFC 6238 appendix B (SHA-1), truncated to 6 digits.
	secret := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"
	for _, tc := range []struct {
		at   int64
		want string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}} {
		if got := TOTP(secret, time.Unix(tc.at, 0)); got != tc.want {
			t.Errorf("TOTP(%d) = %s, want %s", tc.at, got, tc.want)
		}
	}
	if TOTP("not base32!", time.Now()) != "" {
		t.Error("invalid secret gave a code")
	}
	now := time.Unix(1234567890, 0)
	if !checkTOTP(secret, TOTP(secret, now.Add(-30*time.Second)), now) || checkTOTP(secret, TOTP(secret, now.Add(-90*time.Second)), now) {
		t.Error("checkTOTP window is not ±1 step")
	}
}

func TestSSOWithClockInThePast(t *testing.T) {
	// The session cookie must not depend on the real clock: a tenant clock years
	// behind it still gives SSO.
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	tn := NewTenant(t, Config{Now: func() time.Time { return past }})
	b := tn.NewBrowser()
	login(t, b, authorizeURL(tn, nil), alice)
	login(t, b, authorizeURL(tn, nil), alice)
	if len(b.Pages) != 0 {
		t.Errorf("second login showed %v: the SSO cookie was lost", b.Pages)
	}
}

func TestAddCallbackURL(t *testing.T) {
	tn := NewTenant(t, Config{})
	const cb = "http://127.0.0.1:9999/auth/callback"
	var pe *PageError
	if _, err := tn.Login(context.Background(), authorizeURL(tn, map[string]string{"redirect_uri": cb}), alice); !errors.As(err, &pe) {
		t.Fatalf("unregistered callback: %v", err)
	}
	if err := tn.AddCallbackURL(DefaultApplication().ClientID, cb); err != nil {
		t.Fatal(err)
	}
	if err := tn.AddCallbackURL("nope", cb); err == nil {
		t.Error("AddCallbackURL for an unknown application succeeded")
	}
	got, err := tn.Login(context.Background(), authorizeURL(tn, map[string]string{"redirect_uri": cb}), alice)
	if err != nil || got.Path != "/auth/callback" || got.Query().Get("code") == "" {
		t.Fatalf("registered callback: %v %v", got, err)
	}
	if app, _ := tn.Application(DefaultApplication().ClientID); !slices.Contains(app.CallbackURLs, cb) {
		t.Errorf("Application().CallbackURLs = %v", app.CallbackURLs)
	}
}

func TestLoginHintPrefillsEmail(t *testing.T) {
	tn := NewTenant(t, Config{})
	c := tn.NewBrowser().Client()
	resp, err := c.Get(authorizeURL(tn, map[string]string{"login_hint": "hint@fabrikam.example"}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	resp, err = c.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if p := parsePage(string(body)); p.name != "login" || p.form == nil || p.form.values.Get("username") != "hint@fabrikam.example" {
		t.Errorf("login page = %+v", p)
	}
}
