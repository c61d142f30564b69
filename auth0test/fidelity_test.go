package auth0test

// Fidelity: each test asserts one documented Auth0 behaviour, with its source,
// so that a change that drifts from Auth0 fails here. Sources: [DOCS] Auth0's
// documentation (auth0.com/docs/...), [GA] github.com/auth0/go-auth0 and its
// recorded HTTP fixtures, [SPEC] the OpenID/IETF specification named. Facts
// and the audit they come from: ../shared/AUTH0-FACTS.md.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func discovery(t *testing.T, tn *Tenant) map[string]any {
	t.Helper()
	resp, err := tn.Client().Get(tn.URL() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := decodeJSON(resp, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// [DOCS secure/multi-factor-authentication/customize-mfa] With
// allowRememberBrowser: false, the user "is prompted for MFA each time".
// Remember-browser is the Action's choice: Config.AllowRememberBrowser.
func TestFidelityMFAEachTime(t *testing.T) {
	for _, tc := range []struct {
		cfg    Config
		action ActionFunc
		second []string
	}{
		{Config{}, nil, []string{"otp"}},
		{Config{AllowRememberBrowser: true}, nil, nil},
		{Config{AllowRememberBrowser: true}, StepUpAction, []string{"otp"}}, // the Action's own enable() never remembers
	} {
		tc.cfg.Action = tc.action
		tn := NewTenant(t, tc.cfg)
		b := tn.NewBrowser()
		stepUp := authorizeURL(tn, map[string]string{"acr_values": MFAACR})
		login(t, b, stepUp, alice)
		if !cmp.Equal(b.Pages, []string{"login", "otp"}) {
			t.Errorf("%+v: first step-up pages %v", tc.cfg.AllowRememberBrowser, b.Pages)
		}
		login(t, b, stepUp, alice)
		if !cmp.Equal(b.Pages, tc.second) {
			t.Errorf("remember %v, action %v: second step-up pages %v, want %v", tc.cfg.AllowRememberBrowser, tc.action != nil, b.Pages, tc.second)
		}
	}
}

// [DOCS authenticate/login/max-age-reauthentication] auth_time is returned with
// max_age / prompt=login; users report it absent otherwise (auth0-spa-js#719).
func TestFidelityAuthTimeOnlyWhenAsked(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now})
	for _, tc := range []struct {
		params map[string]string
		want   bool
	}{{nil, false}, {map[string]string{"acr_values": MFAACR}, false},
		{map[string]string{"max_age": "300"}, true}, {map[string]string{"prompt": "login"}, true}} {
		id := claimsOf(t, exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, tc.params), alice))["id_token"].(string))
		if _, got := id["auth_time"]; got != tc.want {
			t.Errorf("%v: auth_time present %v, want %v", tc.params, got, tc.want)
		}
	}
}

// [DOCS secure/tokens/json-web-tokens/json-web-key-sets] clients cache the JWKS
// (5–10 minutes) and refetch on an unknown kid: the endpoint is cacheable.
func TestFidelityJWKSCacheable(t *testing.T) {
	tn := NewTenant(t, Config{})
	resp, err := tn.Client().Get(tn.URL() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Cache-Control"); got != JWKSCacheControl || strings.Contains(got, "no-store") {
		t.Errorf("JWKS Cache-Control = %q, want %q", got, JWKSCacheControl)
	}
	if resp.Header.Get("Pragma") != "" {
		t.Errorf("JWKS Pragma = %q", resp.Header.Get("Pragma"))
	}
}

// [DOCS secure/tokens/access-tokens/access-token-profiles, get-access-tokens]
// Auth0's profile: iss, sub, aud [api, userinfo], azp, exp, iat, scope; no jti;
// gty for client-credentials and refresh_token grants; permissions with RBAC's
// "add permissions in the access token"; no audience: an opaque token.
func TestFidelityAccessTokenProfile(t *testing.T) {
	const api = "https://payroll.example"
	users := DefaultUsers()
	users[0].Permissions = map[string][]string{api: {"read:payroll"}}
	tn := NewTenant(t, Config{Users: users, APIs: []API{{Identifier: api, Scopes: []string{"read:payroll", "write:payroll"}, RBAC: true}}})
	m := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{
		"audience": api, "scope": "openid offline_access read:payroll write:payroll"}), alice))
	at := verifiedClaims(t, tn, m["access_token"].(string))
	if _, ok := at["jti"]; ok {
		t.Error("access token has a jti")
	}
	if _, ok := at["gty"]; ok {
		t.Errorf("authorization-code access token gty = %v", at["gty"])
	}
	if !cmp.Equal(at["aud"], []any{api, tn.Issuer() + "userinfo"}) || at["azp"] != DefaultApplication().ClientID {
		t.Errorf("aud %v azp %v", at["aud"], at["azp"])
	}
	// RBAC: scopes limited to the user's permissions, which the token lists.
	if at["scope"] != "openid offline_access read:payroll" || !cmp.Equal(at["permissions"], []any{"read:payroll"}) {
		t.Errorf("RBAC: scope %q permissions %v", at["scope"], at["permissions"])
	}
	_, r := post(t, tn, "/oauth/token", refreshForm(m["refresh_token"].(string)))
	if rat := claimsOf(t, r["access_token"].(string)); rat["gty"] != "refresh_token" {
		t.Errorf("refreshed access token gty = %v, want refresh_token", rat["gty"])
	}
	// No audience: opaque.
	m = exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))
	if tok := m["access_token"].(string); strings.Count(tok, ".") == 2 {
		t.Errorf("access token without audience is a JWT: %s", tok)
	}
	app := DefaultApplication()
	_, cc := post(t, tn, "/oauth/token", url.Values{"grant_type": {GrantClientCredentials}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "audience": {api}})
	if c := claimsOf(t, cc["access_token"].(string)); c["gty"] != "client-credentials" {
		t.Errorf("client-credentials gty = %v", c["gty"])
	}
}

// [DOCS api/authentication/multi-factor-authentication; GA recordings TestMFA*]
// challenge for an unenrolled user: 400; OOB rejection: 400 access_denied "MFA
// Authorization rejected."; mfa_required carries mfa_token and
// mfa_requirements [DOCS use-refresh-tokens], except in some Action flows
// (Auth0 support article): Config.MFARequiredWithoutToken.
func TestFidelityMFAAPI(t *testing.T) {
	tn := NewTenant(t, Config{})
	app := DefaultApplication()
	bobTok, _ := tn.NewMFAToken(app.ClientID, BobEmail, "openid", "")
	st, m := post(t, tn, "/mfa/challenge", url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"mfa_token": {bobTok}, "challenge_type": {"otp"}})
	if st != http.StatusBadRequest {
		t.Errorf("unenrolled challenge: %d %v, want 400", st, m)
	}
	tok, _ := tn.NewMFAToken(app.ClientID, AliceEmail, "openid", "")
	_, ch := post(t, tn, "/mfa/challenge", url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"mfa_token": {tok}, "challenge_type": {"oob"}})
	if err := tn.DenyOOB(ch["oob_code"].(string)); err != nil {
		t.Fatal(err)
	}
	st, m = post(t, tn, "/oauth/token", url.Values{"grant_type": {GrantMFAOOB}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "mfa_token": {tok}, "oob_code": {ch["oob_code"].(string)}})
	if st != 400 || m["error"] != "access_denied" || m["error_description"] != "MFA Authorization rejected." {
		t.Errorf("OOB rejected: %d %v", st, m)
	}
	for _, without := range []bool{false, true} {
		tn := NewTenant(t, Config{MFARequiredWithoutToken: without, Action: func(ev *ActionEvent, api *ActionAPI) {
			if ev.Protocol == ProtocolRefreshToken {
				api.RequireMFA()
			}
		}})
		rt := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["refresh_token"].(string)
		st, m := post(t, tn, "/oauth/token", refreshForm(rt))
		_, hasTok := m["mfa_token"]
		_, hasReq := m["mfa_requirements"]
		if st != 403 || m["error"] != "mfa_required" || hasTok == without || hasReq == without {
			t.Errorf("MFARequiredWithoutToken=%v: %d %v", without, st, m)
		}
	}
}

// [DOCS add-an-authenticator, manage-authenticator-factors-mfa-api; GA
// authentication/mfa.go] /mfa/associate → secret, barcode_uri, recovery_codes
// on the first enrollment; confirmed with the mfa-otp grant; DELETE → 204.
// (goauth0_test.go drives the same through go-auth0.)
func TestFidelityMFAEnrollment(t *testing.T) {
	tn := NewTenant(t, Config{})
	app := DefaultApplication()
	tok, _ := tn.NewMFAToken(app.ClientID, BobEmail, "openid", "")
	req, _ := http.NewRequest(http.MethodPost, tn.URL()+"/mfa/associate", strings.NewReader(
		`{"client_id":"`+app.ClientID+`","client_secret":"`+app.ClientSecret+`","authenticator_types":["otp"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := tn.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	decodeJSON(resp, &m)
	if resp.StatusCode != 200 || m["authenticator_type"] != "otp" || m["secret"] == nil || m["barcode_uri"] == nil || m["recovery_codes"] == nil {
		t.Fatalf("associate: %d %v", resp.StatusCode, m)
	}
	// Not confirmed yet: bob still has no factor.
	if u, _ := tn.User(BobEmail); u.TOTPSecret != "" {
		t.Error("associate enrolled without confirmation")
	}
	st, r := post(t, tn, "/oauth/token", url.Values{"grant_type": {GrantMFAOTP}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "mfa_token": {tok}, "otp": {TOTP(m["secret"].(string), tn.Now())}})
	if st != 200 || r["access_token"] == nil {
		t.Fatalf("confirm: %d %v", st, r)
	}
	// An enrolled user's mfa_token may no longer associate: Auth0 wants an
	// access token for the MFA API audience then.
	tok2, _ := tn.NewMFAToken(app.ClientID, BobEmail, "openid", "")
	req, _ = http.NewRequest(http.MethodPost, tn.URL()+"/mfa/associate", strings.NewReader(
		url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "authenticator_types": {"otp"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok2)
	resp, err = tn.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Error("an enrolled user's mfa_token associated another authenticator")
	}
}

// [DOCS configure-applications-with-oidc-discovery, log-users-out-of-auth0,
// back-channel-logout, authorization-code-flow-with-par] Discovery advertises
// end_session_endpoint, PAR, CIBA, back-channel logout and acr_values_supported
// only where enabled.
func TestFidelityDiscoveryOnlyWhenEnabled(t *testing.T) {
	keys := []string{"end_session_endpoint", "pushed_authorization_request_endpoint", "backchannel_authentication_endpoint",
		"backchannel_logout_supported", "acr_values_supported", "authorization_response_iss_parameter_supported"}
	tn := NewTenant(t, Config{})
	d := discovery(t, tn)
	for _, k := range keys {
		if _, ok := d[k]; ok {
			t.Errorf("default tenant advertises %s", k)
		}
	}
	// [DOCS configure-applications-with-oidc-discovery] issuer with a trailing slash.
	if d["issuer"] != "https://"+tn.Domain()+"/" {
		t.Errorf("issuer %v", d["issuer"])
	}
	app := DefaultApplication()
	app.BackChannelLogoutURLs = []string{"https://rp.example/bcl"}
	d = discovery(t, NewTenant(t, Config{EndSessionDiscovery: true, PAR: true, CIBA: true, ACRValuesSupported: []string{MFAACR},
		IssuerInAuthorizationResponse: true, Applications: []Application{app}}))
	for _, k := range keys {
		if _, ok := d[k]; !ok {
			t.Errorf("enabled tenant does not advertise %s", k)
		}
	}
}

// [DOCS authenticate/login/logout/redirect-users-after-logout] /v2/logout:
// returnTo checked against the application's Allowed Logout URLs with
// client_id, the tenant's without; no returnTo → the first allowed URL; query
// and hash ignored when matching.
func TestFidelityV2Logout(t *testing.T) {
	ctx := context.Background()
	tn := NewTenant(t, Config{LogoutURLs: []string{"https://tenant.example/bye"}})
	app := DefaultApplication()
	for _, tc := range []struct {
		query string
		want  string // "" : an error page
	}{
		{"client_id=" + app.ClientID, app.LogoutURLs[0]},
		{"client_id=" + app.ClientID + "&returnTo=" + url.QueryEscape(app.LogoutURLs[0]+"?x=1"), app.LogoutURLs[0] + "?x=1"},
		{"returnTo=" + url.QueryEscape("https://tenant.example/bye"), "https://tenant.example/bye"},
		{"", "https://tenant.example/bye"},
		{"returnTo=" + url.QueryEscape(app.LogoutURLs[0]), ""},                     // an app's URL, without client_id
		{"client_id=" + app.ClientID + "&returnTo=https://tenant.example/bye", ""}, // the tenant's, with client_id
	} {
		b := tn.NewBrowser()
		login(t, b, authorizeURL(tn, nil), alice)
		u, err := b.Logout(ctx, tn.URL()+"/v2/logout?"+tc.query)
		var pe *PageError
		switch {
		case tc.want == "" && !errors.As(err, &pe):
			t.Errorf("%s: %v %v, want an error page", tc.query, u, err)
		case tc.want == "" && !b.HasSession():
			t.Errorf("%s: a refused logout ended the session", tc.query)
		case tc.want != "" && (err != nil || u == nil || u.String() != tc.want || b.HasSession()):
			t.Errorf("%s: %v %v, want a redirect to %s and no session", tc.query, u, err, tc.want)
		}
	}
}

// [DOCS api/authentication/logout/oidc-logout] /oidc/logout: logout_hint must
// be the sid of id_token_hint and client_id its aud; post_logout_redirect_uri
// is checked against the application's Allowed Logout URLs; without a hint
// the user confirms.
func TestFidelityOIDCLogout(t *testing.T) {
	ctx := context.Background()
	app := DefaultApplication()
	other := Application{ClientID: "other", ClientSecret: "s", CallbackURLs: []string{"https://o.example/cb"}, LogoutURLs: []string{"https://o.example/"}}
	tn := NewTenant(t, Config{Applications: []Application{app, other}})
	b := tn.NewBrowser()
	idt := exchange(t, tn, login(t, b, authorizeURL(tn, nil), alice))["id_token"].(string)
	base := tn.URL() + "/oidc/logout?"
	for _, q := range []url.Values{
		{"id_token_hint": {idt}, "logout_hint": {"another-sid"}},
		{"id_token_hint": {idt}, "client_id": {"other"}},
		{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://evil.example/"}},
		{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://o.example/"}}, // another app's URL
		{"post_logout_redirect_uri": {app.LogoutURLs[0]}},                            // no application named
	} {
		var pe *PageError
		if _, err := b.Logout(ctx, base+q.Encode()); !errors.As(err, &pe) || !b.HasSession() {
			t.Errorf("%v: %v, want an error page and the session kept", q, err)
		}
	}
	// No hint: the confirmation page.
	u, err := b.Logout(ctx, base+url.Values{"client_id": {app.ClientID}, "post_logout_redirect_uri": {app.LogoutURLs[0]}}.Encode())
	if err != nil || !cmp.Equal(b.Pages, []string{"logout-confirm"}) || u.String() != app.LogoutURLs[0] || b.HasSession() {
		t.Errorf("no hint: %v %v pages %v", u, err, b.Pages)
	}
	// logout_hint = sid of id_token_hint, for the browser's session: no page.
	idt = exchange(t, tn, login(t, b, authorizeURL(tn, nil), alice))["id_token"].(string)
	sid := claimsOf(t, idt)["sid"].(string)
	u, err = b.Logout(ctx, base+url.Values{"id_token_hint": {idt}, "logout_hint": {sid}, "client_id": {app.ClientID}}.Encode())
	if err != nil || u != nil || len(b.Pages) != 1 || b.Pages[0] != "logout" || b.HasSession() {
		t.Errorf("matching hints: %v %v pages %v", u, err, b.Pages)
	}
}

// [DOCS get-started/authentication-and-authorization-flow/authorization-code-flow-with-par]
// PAR: confidential clients only; 201 with expires_in 30.
func TestFidelityPARConfidentialOnly(t *testing.T) {
	public := Application{ClientID: "spa", TokenEndpointAuthMethod: "none", CallbackURLs: []string{"https://spa.example/cb"}}
	tn := NewTenant(t, Config{Applications: []Application{DefaultApplication(), public}})
	st, m := post(t, tn, "/oauth/par", url.Values{"client_id": {"spa"}, "response_type": {"code"}, "redirect_uri": {"https://spa.example/cb"}})
	if st != http.StatusUnauthorized || m["error"] != "invalid_client" {
		t.Errorf("public client PAR: %d %v", st, m)
	}
	app := DefaultApplication()
	st, m = post(t, tn, "/oauth/par", url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"response_type": {"code"}, "redirect_uri": {app.CallbackURLs[0]}})
	if st != http.StatusCreated || m["expires_in"] != float64(30) || !strings.HasPrefix(m["request_uri"].(string), "urn:ietf:params:oauth:request_uri:") {
		t.Errorf("confidential client PAR: %d %v", st, m)
	}
}

// [DOCS api/authentication (rate limits), troubleshoot/customer-support/operational-policies/rate-limit-policy]
// 429 too_many_requests with X-RateLimit-Limit, -Remaining, -Reset.
func TestFidelityRateLimits(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now, RateLimits: map[string]RateLimit{"/userinfo": {Limit: 2, Window: time.Minute}}})
	get := func() *http.Response {
		resp, err := tn.Client().Get(tn.URL() + "/userinfo")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	reset := strconv.FormatInt(clk.Now().Add(time.Minute).Unix(), 10)
	for i, want := range []struct {
		status    int
		remaining string
	}{{401, "1"}, {401, "0"}, {429, "0"}} {
		resp := get()
		h := resp.Header
		if resp.StatusCode != want.status || h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != want.remaining || h.Get("X-RateLimit-Reset") != reset {
			t.Errorf("request %d: %d limit %q remaining %q reset %q, want %d %s %s", i, resp.StatusCode,
				h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"), want.status, want.remaining, reset)
		}
	}
	clk.Advance(time.Minute)
	if resp := get(); resp.StatusCode != 401 {
		t.Errorf("after the window: %d", resp.StatusCode)
	}
	// A fault sets the same headers.
	tn.InjectFault("/oauth/token", Fault{Status: 429, Times: 1, Header: RateLimitHeaders(100, 0, clk.Now().Add(time.Second))})
	resp, err := tn.Client().PostForm(tn.URL()+"/oauth/token", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Limit") != "100" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("fault: %d %v", resp.StatusCode, resp.Header)
	}
}

// [AUTH0-FACTS "Unknown client / callback URL mismatch"] an error page
// (unauthorized_client, "Callback URL mismatch"), never a redirect.
func TestFidelityAuthorizeErrorPage(t *testing.T) {
	tn := NewTenant(t, Config{})
	for _, p := range []map[string]string{{"client_id": "nope"}, {"redirect_uri": "https://evil.example/cb"}} {
		resp, err := tn.NewBrowser().Client().Get(authorizeURL(tn, p))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("%v: %d to %q, want an error page", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	_, err := tn.Login(context.Background(), authorizeURL(tn, map[string]string{"redirect_uri": "https://evil.example/cb"}), alice)
	var pe *PageError
	if !errors.As(err, &pe) || pe.Code != "unauthorized_client" || !strings.HasPrefix(pe.Description, "Callback URL mismatch") {
		t.Errorf("callback mismatch: %v", err)
	}
}

// [GA recordings TestRevokeRefreshToken, TestLoginWithAuthCode*; DOCS
// refresh-token-rotation] revoke 200 with an empty body; bad code 403
// invalid_grant "Invalid authorization code"; reused refresh token 403
// "Unknown or invalid refresh token."; a refreshed ID token has no amr [DOCS
// configure-step-up-authentication-for-web-apps, "AMR claim exceptions"].
func TestFidelityTokenEndpointErrors(t *testing.T) {
	tn := NewTenant(t, Config{RefreshTokenRotation: true})
	st, m := post(t, tn, "/oauth/token", codeForm("nope"))
	if st != 403 || m["error"] != "invalid_grant" || m["error_description"] != "Invalid authorization code" {
		t.Errorf("bad code: %d %v", st, m)
	}
	rt := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{"acr_values": MFAACR}), alice))["refresh_token"].(string)
	_, r := post(t, tn, "/oauth/token", refreshForm(rt))
	if _, ok := claimsOf(t, r["id_token"].(string))["amr"]; ok {
		t.Error("refreshed ID token has amr")
	}
	st, m = post(t, tn, "/oauth/token", refreshForm(rt))
	if st != 403 || m["error_description"] != "Unknown or invalid refresh token." {
		t.Errorf("reused refresh token: %d %v", st, m)
	}
	app := DefaultApplication()
	resp := postNoRedirect(t, tn, "/oauth/revoke", url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "token": {rt}})
	if resp.StatusCode != 200 || resp.ContentLength > 0 {
		t.Errorf("revoke: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
}

// [DOCS authenticate/login/logout/back-channel-logout; SPEC OpenID Connect
// Back-Channel Logout 1.0 §2.4] the logout token: iss, aud (client_id), iat,
// jti, events {backchannel-logout: {}}, sid, sub, never a nonce
// (backchannel_logout_test.go asserts the whole token and the initiators).
func TestFidelityLogoutToken(t *testing.T) {
	r := newRP(t)
	tn := bclTenant(t, r, revokedToo, nil)
	login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice)
	tn.EndSession(tn.SessionIDs(AliceEmail)[0])
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("%d logout tokens", len(got))
	}
	c := claimsOf(t, got[0])
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"aud", "events", "exp", "iat", "iss", "jti", "sid", "sub"}; !cmp.Equal(keys, want) {
		t.Errorf("logout token claims %v, want %v", keys, want)
	}
}

// [DOCS secure/tokens/access-tokens/management-api-access-tokens/get-management-api-access-tokens-for-production]
// client_credentials with audience https://{domain}/api/v2/ answers
// {access_token, expires_in: 86400, scope, token_type}; the scopes are the
// application's client grant, and an application without one is refused.
func TestFidelityManagementToken(t *testing.T) {
	tn := NewTenant(t, Config{Applications: []Application{mgmtApp(ScopeReadUsers)}})
	st, m := post(t, tn, "/oauth/token", ccForm(tn.Issuer()+"api/v2/", ""))
	if st != 200 || m["expires_in"] != 86400.0 || m["scope"] != ScopeReadUsers || m["token_type"] != "Bearer" || len(m) != 4 {
		t.Errorf("token: %d %v", st, m)
	}
	tn = NewTenant(t, Config{})
	if st, m := post(t, tn, "/oauth/token", ccForm(tn.Issuer()+"api/v2/", "")); st != 403 || m["error"] != "access_denied" {
		t.Errorf("no client grant: %d %v", st, m)
	}
}

// [DOCS api/management/v2 (each endpoint lists its scope; 401 invalid or
// expired token, 403 insufficient scope, 404 user not found)] Error bodies are
// {statusCode, error, message, errorCode}, e.g. 403 "Insufficient scope,
// expected any of: <scope>" with errorCode insufficient_scope, 404 "The user
// does not exist." with inexistent_user (the shape seen in public fixtures of
// Auth0 clients and in go-auth0's management error decoding, which keeps the
// body as is).
func TestFidelityManagementErrors(t *testing.T) {
	tn := NewTenant(t, Config{Applications: []Application{mgmtApp(ScopeReadUsers)}})
	tok := mgmtToken(t, tn)
	st, body := mgmt(t, tn, tok, "POST", "users/"+aliceID+"/recovery-code-regeneration", nil)
	if want := map[string]any{"statusCode": 403.0, "error": "Forbidden", "message": "Insufficient scope, expected any of: update:users",
		"errorCode": "insufficient_scope"}; st != 403 || !cmp.Equal(body, any(want)) {
		t.Errorf("insufficient scope: %d %v", st, body)
	}
	if st, body := mgmt(t, tn, tok, "GET", "users/auth0%7Cghost", nil); st != 404 || body.(map[string]any)["errorCode"] != "inexistent_user" {
		t.Errorf("unknown user: %d %v", st, body)
	}
	if st, _ := mgmt(t, tn, "", "GET", "users/"+aliceID, nil); st != 401 {
		t.Errorf("no token: %d", st)
	}
}

// [DOCS api/management/v2/users/get-authentication-methods; GA
// management.UserAuthenticationMethod] Each method has id, type (totp,
// recovery-code, ...), confirmed, created_at and last_auth_at once used;
// include_totals=true wraps the page in {start, limit, total, authenticators}.
func TestFidelityAuthenticationMethods(t *testing.T) {
	tn := NewTenant(t, Config{Applications: []Application{mgmtApp()}})
	tok := mgmtToken(t, tn)
	_, body := mgmt(t, tn, tok, "GET", "users/"+aliceID+"/authentication-methods?include_totals=true", nil)
	page := body.(map[string]any)
	if page["start"] != 0.0 || page["limit"] != 50.0 || page["total"] != 2.0 {
		t.Errorf("page %v", page)
	}
	var types []string
	for _, m := range page["authenticators"].([]any) {
		am := m.(map[string]any)
		types = append(types, am["type"].(string))
		if am["id"] == "" || am["confirmed"] != true || am["created_at"] == nil {
			t.Errorf("method %v", am)
		}
	}
	if !cmp.Equal(types, []string{"totp", "recovery-code"}) {
		t.Errorf("types %v", types)
	}
}

// [DOCS manage-users/user-accounts/metadata/manage-metadata-api] PATCH
// /api/v2/users/{id} merges user_metadata's top-level properties; a property
// set to null is deleted; nested objects are replaced, not merged.
func TestFidelityMetadataMerge(t *testing.T) {
	users := DefaultUsers()
	users[0].UserMetadata = map[string]any{"keep": 1.0, "drop": 2.0, "obj": map[string]any{"a": 1.0}}
	tn := NewTenant(t, Config{Users: users, Applications: []Application{mgmtApp()}})
	_, body := mgmt(t, tn, mgmtToken(t, tn), "PATCH", "users/"+aliceID,
		map[string]any{"user_metadata": map[string]any{"drop": nil, "obj": map[string]any{"b": 2.0}, "new": true}})
	if got, want := body.(map[string]any)["user_metadata"], map[string]any{"keep": 1.0, "obj": map[string]any{"b": 2.0}, "new": true}; !cmp.Equal(got, any(want)) {
		t.Errorf("merged %v, want %v", got, want)
	}
}

// [DOCS secure/multi-factor-authentication/reset-user-mfa] Regenerating the
// recovery code returns the new one (once) and invalidates the old one.
func TestFidelityRecoveryCodeRegeneration(t *testing.T) {
	tn := NewTenant(t, Config{Applications: []Application{mgmtApp()}})
	_, body := mgmt(t, tn, mgmtToken(t, tn), "POST", "users/"+aliceID+"/recovery-code-regeneration", nil)
	code := body.(map[string]any)["recovery_code"].(string)
	app := DefaultApplication()
	use := func(rc string) int {
		mt, _ := tn.NewMFAToken(app.ClientID, AliceEmail, "openid", "")
		st, _ := post(t, tn, "/oauth/token", url.Values{"grant_type": {GrantMFARecoveryCode}, "client_id": {app.ClientID},
			"client_secret": {app.ClientSecret}, "mfa_token": {mt}, "recovery_code": {rc}})
		return st
	}
	if use(AliceRecoveryCode) != 403 || use(code) != 200 {
		t.Error("the old code must fail and the new one work")
	}
}

// [DOCS secure/multi-factor-authentication/auth0-guardian/create-custom-enrollment-tickets]
// POST /api/v2/guardian/enrollments/ticket answers {ticket_id, ticket_url};
// the ticket enrolls the user once.
func TestFidelityEnrollmentTicket(t *testing.T) {
	tn := NewTenant(t, Config{Applications: []Application{mgmtApp()}})
	st, body := mgmt(t, tn, mgmtToken(t, tn), "POST", "guardian/enrollments/ticket", map[string]any{"user_id": "auth0|bob"})
	tk := body.(map[string]any)
	if st != 200 || len(tk) != 2 || tk["ticket_id"] == "" {
		t.Fatalf("ticket: %d %v", st, tk)
	}
	e, err := tn.NewBrowser().Enroll(t.Context(), tk["ticket_url"].(string), Credentials{})
	if err != nil || e.RecoveryCode == "" {
		t.Fatalf("enroll: %+v %v", e, err)
	}
	if _, err := tn.NewBrowser().Enroll(t.Context(), tk["ticket_url"].(string), Credentials{}); !errors.As(err, new(*PageError)) {
		t.Errorf("second use: %v", err)
	}
}

// [DOCS manage-users/organizations/using-tokens] With an organization, ID and
// access tokens carry org_id; org_name only when the tenant allows
// organization names in the Authentication API (which also lets the
// organization parameter be a name).
func TestFidelityOrganizationClaims(t *testing.T) {
	api := API{Identifier: "https://payroll.example", Scopes: []string{"read:payroll"}}
	for _, names := range []bool{false, true} {
		tn := NewTenant(t, Config{Organizations: []Organization{fabrikam}, OrganizationNames: names, APIs: []API{api},
			Applications: []Application{orgApp(OrganizationAllow)}})
		code, _, _ := orgCallback(t, tn, map[string]string{"organization": fabrikam.ID, "audience": api.Identifier}, alice)
		tok := exchange(t, tn, code)
		for _, c := range []map[string]any{verifiedClaims(t, tn, tok["id_token"].(string)), verifiedClaims(t, tn, tok["access_token"].(string))} {
			if c["org_id"] != fabrikam.ID || (c["org_name"] != nil) != names {
				t.Errorf("names %v: org_id %v org_name %v", names, c["org_id"], c["org_name"])
			}
		}
	}
}

// [DOCS manage-users/organizations/login-flows-for-organizations; the callback
// text users report: "user google-oauth2|… is not part of the org_… organization"]
// A user who is not a member is refused with access_denied at the callback.
// An application's organization_usage defaults to "deny".
func TestFidelityOrganizationMembership(t *testing.T) {
	tn := NewTenant(t, Config{Organizations: []Organization{fabrikam}, Applications: []Application{orgApp(OrganizationAllow)}})
	_, e, d := orgCallback(t, tn, map[string]string{"organization": fabrikam.ID, "connection": GoogleConnection}, SocialUser())
	if e != "access_denied" || d != "user google-oauth2|108000000000000000001 is not part of the org_fabrikam01 organization" {
		t.Errorf("non-member: %q %q", e, d)
	}
	if app, _ := NewTenant(t, Config{}).Application(DefaultApplication().ClientID); app.OrganizationUsage != OrganizationDeny {
		t.Errorf("default organization usage %q", app.OrganizationUsage)
	}
}

// [DOCS manage-users/organizations/configure-organizations/invite-members]
// An invitation link carries invitation and organization to /authorize; the
// invitee who accepts becomes a member; invitations expire after 7 days by
// default (ttl_sec 604800) and are accepted once.
func TestFidelityInvitation(t *testing.T) {
	clock := newClock()
	tn := NewTenant(t, Config{Now: clock.Now, Organizations: []Organization{fabrikam}, Applications: []Application{orgApp(OrganizationAllow)}})
	inv, _ := tn.Invite(fabrikam.ID, BobEmail)
	params := map[string]string{"organization": fabrikam.ID, "invitation": inv.ID}
	if code, _, _ := orgCallback(t, tn, params, UserWithoutMFA()); code == "" || !slices.Contains(tn.Members(fabrikam.ID), "auth0|bob") {
		t.Error("invitee not admitted")
	}
	if _, e, _ := orgCallback(t, tn, params, UserWithoutMFA()); e == "" {
		t.Error("invitation accepted twice")
	}
	late, _ := tn.Invite(fabrikam.ID, CarolEmail)
	clock.Advance(7*24*time.Hour + time.Second)
	if _, e, _ := orgCallback(t, tn, map[string]string{"organization": fabrikam.ID, "invitation": late.ID}, SocialUser()); e == "" {
		t.Error("expired invitation accepted")
	}
}

// [DOCS customize/actions/explore-triggers/signup-and-login-triggers/login-trigger/post-login-event-object;
// secure/tokens/refresh-tokens/manage-refresh-tokens-actions] The post-login
// Action runs on refresh-token exchanges with event.transaction.protocol
// "oauth2-refresh-token" and event.refresh_token populated. What
// event.authentication holds there is not documented (it is "Optional"):
// auth0test gives none unless Config.RefreshActionAuthentication.
func TestFidelityRefreshAction(t *testing.T) {
	var last ActionEvent
	tn := NewTenant(t, Config{Action: func(ev *ActionEvent, _ *ActionAPI) { last = *ev }})
	tok := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))
	post(t, tn, "/oauth/token", refreshForm(tok["refresh_token"].(string)))
	if last.Protocol != "oauth2-refresh-token" || last.RefreshToken == nil || last.Authentication != nil {
		t.Errorf("refresh event %+v", last)
	}
}

// [DOCS authenticate/login/logout/back-channel-logout/oidc-back-channel-logout-initiators]
// an application with a back-channel logout URL and no initiators configured
// is subscribed to RP- and IdP-initiated logout only ("rp-logout remains
// subscribed by default"; a password-change subscription needs rp-logout and
// idp-logout beside it): a revoked session or a password change sends it
// nothing, a sign-out at /v2/logout does.
func TestFidelityDefaultLogoutInitiators(t *testing.T) {
	r := newRP(t)
	tn := bclTenant(t, r, LogoutInitiators{}, nil)
	login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice)
	tn.EndSession(tn.SessionIDs(AliceEmail)[0])
	if err := tn.ChangePassword(AliceEmail, "a new password, long enough"); err != nil {
		t.Fatal(err)
	}
	if got := r.received(); len(got) != 0 {
		t.Fatalf("default initiators: %d logout tokens for session-revoked and password-changed, want none", len(got))
	}
	b := tn.NewBrowser()
	login(t, b, authorizeURL(tn, nil), Credentials{Email: AliceEmail, Password: "a new password, long enough"})
	app := DefaultApplication()
	resp, err := b.Client().Get(tn.URL() + "/v2/logout?" + url.Values{"client_id": {app.ClientID}, "returnTo": {app.LogoutURLs[0]}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := r.received(); len(got) != 1 {
		t.Fatalf("default initiators: %d logout tokens after /v2/logout (rp-logout), want 1", len(got))
	}
}
