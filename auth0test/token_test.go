package auth0test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTokenEndpointErrors(t *testing.T) {
	clk := newClock()
	public := Application{ClientID: "spa", CallbackURLs: []string{"http://127.0.0.1:8080/callback"}, TokenEndpointAuthMethod: "none"}
	basic := Application{ClientID: "basic", ClientSecret: "basic-secret", CallbackURLs: []string{"http://127.0.0.1:8080/callback"},
		TokenEndpointAuthMethod: "client_secret_basic"}
	noCC := Application{ClientID: "nocc", ClientSecret: "s", GrantTypes: []string{GrantAuthorizationCode}}
	tn := NewTenant(t, Config{Now: clk.Now, Applications: []Application{DefaultApplication(), public, basic, noCC},
		APIs: []API{{Identifier: "https://api", Scopes: []string{"read"}}}})
	app := DefaultApplication()
	newCode := func() string {
		return login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice)
	}
	tests := []struct {
		name       string
		form       func() url.Values
		basicAuth  [2]string
		jsonBody   string
		wantStatus int
		wantError  string
		wantDesc   string
	}{
		{name: "no grant_type", form: func() url.Values { return url.Values{"client_id": {app.ClientID}} },
			wantStatus: 400, wantError: "invalid_request", wantDesc: "Missing required parameter: grant_type"},
		{name: "unsupported grant", form: func() url.Values { return url.Values{"grant_type": {"password"}} },
			wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "unknown client", form: func() url.Values { return with(codeForm("x"), "client_id", "nope") },
			wantStatus: 401, wantError: "invalid_client"},
		{name: "wrong secret", form: func() url.Values { return with(codeForm("x"), "client_secret", "wrong") },
			wantStatus: 401, wantError: "invalid_client"},
		{name: "missing secret", form: func() url.Values { return with(codeForm("x"), "client_secret", "") },
			wantStatus: 401, wantError: "invalid_client"},
		{name: "post for a basic client", form: func() url.Values {
			return with(codeForm("x"), "client_id", "basic", "client_secret", "basic-secret")
		}, wantStatus: 401, wantError: "invalid_client"},
		{name: "basic for a basic client, bad code", form: func() url.Values { return with(codeForm("x"), "client_id", "", "client_secret", "") },
			basicAuth: [2]string{"basic", "basic-secret"}, wantStatus: 403, wantError: "invalid_grant"},
		{name: "grant not allowed", form: func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "client_id": {"nocc"}, "client_secret": {"s"}, "audience": {"https://api"}}
		}, wantStatus: 403, wantError: "unauthorized_client", wantDesc: "Grant type 'client_credentials' not allowed for the client."},
		{name: "missing code", form: func() url.Values { return with(codeForm(""), "code", "") },
			wantStatus: 400, wantError: "invalid_request"},
		{name: "unknown code", form: func() url.Values { return codeForm("nope") },
			wantStatus: 403, wantError: "invalid_grant", wantDesc: "Invalid authorization code"},
		{name: "wrong verifier", form: func() url.Values {
			return with(codeForm(newCode()), "code_verifier", strings.Repeat("a", 43))
		}, wantStatus: 403, wantError: "invalid_grant", wantDesc: "Failed to verify code verifier"},
		{name: "missing verifier", form: func() url.Values { return with(codeForm(newCode()), "code_verifier", "") },
			wantStatus: 403, wantError: "invalid_grant", wantDesc: "Failed to verify code verifier"},
		{name: "wrong redirect_uri", form: func() url.Values {
			return with(codeForm(newCode()), "redirect_uri", app.CallbackURLs[1])
		}, wantStatus: 403, wantError: "invalid_grant"},
		{name: "redirect_uri left out", form: func() url.Values {
			return with(codeForm(newCode()), "redirect_uri", "")
		}, wantStatus: 403, wantError: "invalid_grant"},
		{name: "code of another client", form: func() url.Values {
			return with(codeForm(newCode()), "client_id", "nocc", "client_secret", "s")
		}, wantStatus: 403, wantError: "invalid_grant", wantDesc: "Invalid authorization code"},
		{name: "expired code", form: func() url.Values {
			f := codeForm(newCode())
			clk.Advance(11 * time.Minute)
			return f
		}, wantStatus: 403, wantError: "invalid_grant", wantDesc: "Invalid authorization code"},
		{name: "unknown refresh token", form: func() url.Values { return refreshForm("nope") },
			wantStatus: 403, wantError: "invalid_grant", wantDesc: "Unknown or invalid refresh token."},
		{name: "missing refresh token", form: func() url.Values { return refreshForm("") },
			wantStatus: 400, wantError: "invalid_request"},
		{name: "client credentials without audience", form: func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
		}, wantStatus: 403, wantError: "access_denied"},
		{name: "client credentials unknown audience", form: func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "audience": {"https://x"}}
		}, wantStatus: 403, wantError: "access_denied", wantDesc: "Service not found: https://x"},
		{name: "duplicate parameter", form: func() url.Values {
			f := codeForm("x")
			f.Add("code", "y")
			return f
		}, wantStatus: 400, wantError: "invalid_request"},
		{name: "public client without PKCE verifier", form: func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "client_id": {"spa"}, "code": {"x"}}
		}, wantStatus: 403, wantError: "invalid_grant"},
		{name: "malformed json", jsonBody: `{"grant_type":`, wantStatus: 400, wantError: "invalid_request"},
		{name: "json array", jsonBody: `[1,2]`, wantStatus: 400, wantError: "invalid_request"},
		{name: "mfa grant unknown token", form: func() url.Values {
			return url.Values{"grant_type": {GrantMFAOTP}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "mfa_token": {"x"}, "otp": {"123456"}}
		}, wantStatus: 403, wantError: "invalid_grant", wantDesc: "Malformed mfa_token"},
		{name: "ciba unknown auth_req_id", form: func() url.Values {
			return url.Values{"grant_type": {GrantCIBA}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "auth_req_id": {"x"}}
		}, wantStatus: 400, wantError: "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req *http.Request
			if tc.jsonBody != "" {
				req, _ = http.NewRequest(http.MethodPost, tn.URL()+"/oauth/token", strings.NewReader(tc.jsonBody))
				req.Header.Set("Content-Type", "application/json")
			} else {
				req, _ = http.NewRequest(http.MethodPost, tn.URL()+"/oauth/token", strings.NewReader(tc.form().Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.basicAuth[0] != "" {
				req.SetBasicAuth(tc.basicAuth[0], tc.basicAuth[1])
			}
			st, m := do(t, tn, req)
			if st != tc.wantStatus || m["error"] != tc.wantError {
				t.Fatalf("got %d %v, want %d %s", st, m, tc.wantStatus, tc.wantError)
			}
			if tc.wantDesc != "" && m["error_description"] != tc.wantDesc {
				t.Errorf("error_description = %q, want %q", m["error_description"], tc.wantDesc)
			}
			if _, ok := m["error_description"].(string); !ok {
				t.Errorf("no error_description in %v", m)
			}
		})
	}
}

func TestRedirectURIOmitted(t *testing.T) {
	tn := NewTenant(t, Config{})
	cb, err := tn.Login(context.Background(), authorizeURL(tn, map[string]string{"redirect_uri": ""}), alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != DefaultApplication().CallbackURLs[0] {
		t.Errorf("default callback = %s", got)
	}
	f := codeForm(cb.Query().Get("code"))
	f.Del("redirect_uri")
	if st, m := post(t, tn, "/oauth/token", f); st != 200 {
		t.Errorf("exchange without redirect_uri after an authorize without it: %d %v", st, m)
	}
}

func TestPublicClientAndJSONBody(t *testing.T) {
	public := Application{ClientID: "spa", CallbackURLs: []string{"http://127.0.0.1:8080/callback"}, TokenEndpointAuthMethod: "none"}
	tn := NewTenant(t, Config{Applications: []Application{public}})
	// Without PKCE a public client is refused at /authorize.
	cb, err := tn.Login(context.Background(), authorizeURL(tn, map[string]string{"client_id": "spa", "code_challenge": "", "code_challenge_method": ""}), alice)
	if err != nil || cb.Query().Get("error") != "invalid_request" {
		t.Fatalf("public client without PKCE: %v %v", cb, err)
	}
	code := login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{"client_id": "spa"}), alice)
	body := `{"grant_type":"authorization_code","client_id":"spa","code":"` + code + `","code_verifier":"` + testVerifier +
		`","redirect_uri":"http://127.0.0.1:8080/callback"}`
	req, _ := http.NewRequest(http.MethodPost, tn.URL()+"/oauth/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	st, m := do(t, tn, req)
	if st != 200 || m["access_token"] == nil {
		t.Fatalf("JSON code exchange: %d %v", st, m)
	}
}

func TestHS256Application(t *testing.T) {
	app := DefaultApplication()
	app.IDTokenAlg = "HS256"
	tn := NewTenant(t, Config{Applications: []Application{app}})
	m := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))
	idt := m["id_token"].(string)
	hdr := headerOf(t, idt)
	if hdr["alg"] != "HS256" || hdr["kid"] != nil {
		t.Errorf("header = %v", hdr)
	}
	claims := claimsOf(t, idt)
	if want := tn.SignWith([]byte(app.ClientSecret), hdr, claims); want != idt {
		t.Errorf("HS256 ID token is not signed with the client secret")
	}
}

func TestRefreshWithoutRotation(t *testing.T) {
	tn := NewTenant(t, Config{})
	// max_age: the login's ID token has auth_time, and so do the refreshed ones.
	m := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{"acr_values": MFAACR, "max_age": "600"}), alice))
	rt := m["refresh_token"].(string)
	for i := 0; i < 2; i++ {
		st, r := post(t, tn, "/oauth/token", refreshForm(rt))
		if st != 200 {
			t.Fatalf("refresh %d: %d %v", i, st, r)
		}
		if _, ok := r["refresh_token"]; ok {
			t.Errorf("non-rotating exchange returned a refresh token")
		}
		id := claimsOf(t, r["id_token"].(string))
		if _, ok := id["amr"]; ok {
			t.Errorf("refreshed ID token carries amr %v", id["amr"])
		}
		if _, ok := id["acr"]; ok {
			t.Errorf("refreshed ID token carries acr %v", id["acr"])
		}
		if id["auth_time"] == nil || id["nonce"] != nil {
			t.Errorf("refreshed ID token = %v", id)
		}
	}
	if got := tn.GrantCalls("refresh_token"); got != 2 {
		t.Errorf("GrantCalls(refresh_token) = %d, want 2", got)
	}
}

func kinds(log []RefreshEvent) []string {
	var out []string
	for _, e := range log {
		out = append(out, e.Kind)
	}
	return out
}

func TestRefreshRotationAndReuse(t *testing.T) {
	clk := newClock()
	var logs syncBuffer
	tn := NewTenant(t, Config{Now: clk.Now, RefreshTokenRotation: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	rt0 := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
	st, r := post(t, tn, "/oauth/token", refreshForm(rt0))
	if st != 200 {
		t.Fatalf("first refresh: %d %v", st, r)
	}
	rt1 := r["refresh_token"].(string)
	if rt1 == rt0 {
		t.Fatal("rotation returned the same token")
	}
	// Reusing rt0 is a breach: the whole family dies, rt1 included.
	st, r = post(t, tn, "/oauth/token", refreshForm(rt0))
	if st != 403 || r["error"] != "invalid_grant" || r["error_description"] != "Unknown or invalid refresh token." {
		t.Fatalf("reuse: %d %v", st, r)
	}
	if st, r = post(t, tn, "/oauth/token", refreshForm(rt1)); st != 403 {
		t.Fatalf("family member after reuse: %d %v", st, r)
	}
	if got, want := kinds(tn.RefreshLog()), []string{"issued", "rotated", "reused", "revoked"}; !cmp.Equal(got, want) {
		t.Errorf("refresh log = %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "reuse detected") || strings.Contains(logs.String(), rt0) {
		t.Errorf("log lacks the reuse detection, or leaks the token:\n%s", logs.String())
	}
	fam := tn.RefreshFamily(rt1)
	for _, e := range tn.RefreshLog() {
		if e.Family != fam {
			t.Errorf("event %v not in family %s", e, fam)
		}
	}
}

func TestRefreshRotationOverlap(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now, RefreshTokenRotation: true, RotationOverlap: 10 * time.Second})
	rt0 := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
	refresh := func(rt string) (int, string) {
		st, r := post(t, tn, "/oauth/token", refreshForm(rt))
		s, _ := r["refresh_token"].(string)
		return st, s
	}
	st, rt1 := refresh(rt0)
	if st != 200 {
		t.Fatal(st)
	}
	clk.Advance(5 * time.Second)
	// Within the overlap, the previous token is accepted again (a racing replica).
	st, rt1b := refresh(rt0)
	if st != 200 || rt1b == "" || rt1b == rt1 {
		t.Fatalf("overlap reuse: %d %q", st, rt1b)
	}
	st, rt2 := refresh(rt1)
	if st != 200 {
		t.Fatalf("rotate rt1: %d", st)
	}
	// rt0 is now two rotations back: breach, even within 10 s of its use.
	if st, _ := refresh(rt0); st != 403 {
		t.Fatalf("token before the previous: %d", st)
	}
	if st, _ := refresh(rt2); st != 403 {
		t.Fatalf("family survived the breach: %d", st)
	}
	if got, want := kinds(tn.RefreshLog()), []string{"issued", "rotated", "overlap", "rotated", "reused", "revoked"}; !cmp.Equal(got, want) {
		t.Errorf("refresh log = %v, want %v", got, want)
	}

	// Past the overlap, reusing the previous token is a breach.
	rt0 = exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
	if st, _ := refresh(rt0); st != 200 {
		t.Fatal(st)
	}
	clk.Advance(11 * time.Second)
	if st, _ := refresh(rt0); st != 403 {
		t.Fatalf("reuse after the overlap: %d", st)
	}
}

func TestRefreshLifetimes(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now, RefreshTokenRotation: true,
		RefreshTokenLifetime: 10 * time.Hour, RefreshTokenIdleLifetime: 2 * time.Hour})
	rt := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
	for i := 0; i < 4; i++ { // each exchange renews the idle lifetime: 4 × 1.5 h
		clk.Advance(90 * time.Minute)
		st, r := post(t, tn, "/oauth/token", refreshForm(rt))
		if st != 200 {
			t.Fatalf("exchange %d: %d %v", i, st, r)
		}
		rt = r["refresh_token"].(string)
	}
	clk.Advance(4*time.Hour + time.Second) // past the absolute 10 h
	if st, _ := post(t, tn, "/oauth/token", refreshForm(rt)); st != 403 {
		t.Errorf("refresh past the absolute lifetime: %d", st)
	}
	rt = exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
	clk.Advance(2*time.Hour + time.Second)
	if st, _ := post(t, tn, "/oauth/token", refreshForm(rt)); st != 403 {
		t.Errorf("refresh past the idle lifetime: %d", st)
	}
}

func TestReplayedCodeRevokesFamily(t *testing.T) {
	tn := NewTenant(t, Config{RefreshTokenRotation: true})
	code := login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice)
	rt := exchange(t, tn, code)["refresh_token"].(string)
	if st, _ := post(t, tn, "/oauth/token", codeForm(code)); st != 403 {
		t.Fatal(st)
	}
	if st, _ := post(t, tn, "/oauth/token", refreshForm(rt)); st != 403 {
		t.Errorf("refresh token of a replayed code still works: %d", st)
	}
}

func TestRevoke(t *testing.T) {
	tn := NewTenant(t, Config{RefreshTokenRotation: true})
	rt := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
	app := DefaultApplication()
	for _, tok := range []string{"unknown", rt} {
		resp, err := tn.Client().PostForm(tn.URL()+"/oauth/revoke", url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.ContentLength > 0 {
			t.Errorf("revoke %s: status %d, length %d", tok, resp.StatusCode, resp.ContentLength)
		}
		resp.Body.Close()
	}
	if st, _ := post(t, tn, "/oauth/token", refreshForm(rt)); st != 403 {
		t.Errorf("revoked token still works: %d", st)
	}
	if st, m := post(t, tn, "/oauth/revoke", url.Values{"client_id": {app.ClientID}, "client_secret": {"bad"}, "token": {rt}}); st != 401 || m["error"] != "invalid_client" {
		t.Errorf("revoke with a bad secret: %d %v", st, m)
	}
}

func TestClientCredentials(t *testing.T) {
	tn := NewTenant(t, Config{APIs: []API{{Identifier: "https://api", Scopes: []string{"read", "write"}, AccessTokenLifetime: time.Hour}}})
	app := DefaultApplication()
	st, m := post(t, tn, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "audience": {"https://api"}, "scope": {"read"}})
	if st != 200 || m["id_token"] != nil || m["refresh_token"] != nil || m["expires_in"] != float64(3600) {
		t.Fatalf("%d %v", st, m)
	}
	at := verifiedClaims(t, tn, m["access_token"].(string))
	if at["sub"] != app.ClientID+"@clients" || at["gty"] != "client-credentials" || at["scope"] != "read" || at["aud"] != "https://api" {
		t.Errorf("claims = %v", at)
	}
}

func TestRefreshActionMFARequired(t *testing.T) {
	tn := NewTenant(t, Config{Action: func(ev *ActionEvent, api *ActionAPI) {
		if ev.Protocol == ProtocolRefreshToken {
			api.RequireMFA()
		}
	}})
	rt := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
	st, m := post(t, tn, "/oauth/token", refreshForm(rt))
	if st != 403 || m["error"] != "mfa_required" || m["mfa_token"] == nil || m["mfa_requirements"] == nil {
		t.Fatalf("%d %v", st, m)
	}
	app := DefaultApplication()
	st, m = post(t, tn, "/oauth/token", url.Values{"grant_type": {GrantMFAOTP}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "mfa_token": {m["mfa_token"].(string)}, "otp": {tn.OTP(AliceEmail)}})
	if st != 200 {
		t.Fatalf("mfa-otp: %d %v", st, m)
	}
	if id := claimsOf(t, m["id_token"].(string)); id["amr"] != nil {
		t.Errorf("MFA API ID token carries amr %v", id["amr"])
	}
}

func do(t *testing.T, tn *Tenant, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := tn.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := decodeJSON(resp, &m); err != nil {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, m
}

// Racing replicas: the same refresh token presented concurrently. Without an
// overlap period exactly one exchange wins and the others are reuse (the family
// dies); with one, every racer gets tokens.
func TestConcurrentRefresh(t *testing.T) {
	for _, tc := range []struct {
		name    string
		overlap time.Duration
		wantOK  int
	}{{"no overlap", 0, 1}, {"overlap", time.Minute, 8}} {
		t.Run(tc.name, func(t *testing.T) {
			tn := NewTenant(t, Config{RefreshTokenRotation: true, RotationOverlap: tc.overlap})
			rt := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
			client := tn.Client()
			results := make(chan int, 8)
			start := make(chan struct{})
			for i := 0; i < 8; i++ {
				go func() {
					<-start
					resp, err := client.PostForm(tn.URL()+"/oauth/token", refreshForm(rt))
					if err != nil {
						results <- 0
						return
					}
					resp.Body.Close()
					results <- resp.StatusCode
				}()
			}
			close(start)
			ok := 0
			for i := 0; i < 8; i++ {
				switch st := <-results; st {
				case 200:
					ok++
				case 403:
				default:
					t.Errorf("status %d", st)
				}
			}
			if ok != tc.wantOK {
				t.Errorf("%d exchanges succeeded, want %d", ok, tc.wantOK)
			}
			if got := tn.GrantCalls("refresh_token"); got != 8 {
				t.Errorf("GrantCalls = %d, want 8", got)
			}
		})
	}
}
