package auth0test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func loginHint(tn *Tenant, sub string) string {
	b, _ := json.Marshal(map[string]string{"format": "iss_sub", "iss": tn.Issuer(), "sub": sub})
	return string(b)
}

func cibaForm(tn *Tenant, kv ...string) url.Values {
	app := DefaultApplication()
	f := url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "scope": {"openid offline_access"},
		"binding_message": {"Approve payroll export #42"}, "login_hint": {loginHint(tn, "auth0|alice")}}
	return with(f, kv...)
}

func pollForm(id string) url.Values {
	app := DefaultApplication()
	return url.Values{"grant_type": {GrantCIBA}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "auth_req_id": {id}}
}

func TestCIBAFlow(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now})
	st, m := post(t, tn, "/bc-authorize", cibaForm(tn))
	if st != 200 || m["expires_in"] != float64(300) || m["interval"] != float64(5) {
		t.Fatalf("bc-authorize: %d %v", st, m)
	}
	id := m["auth_req_id"].(string)
	poll := func() (int, map[string]any, http.Header) {
		resp, err := tn.Client().PostForm(tn.URL()+"/oauth/token", pollForm(id))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		decodeJSON(resp, &m)
		return resp.StatusCode, m, resp.Header
	}
	if st, m, _ := poll(); st != 400 || m["error"] != "authorization_pending" {
		t.Fatalf("first poll: %d %v", st, m)
	}
	st, m, h := poll()
	if st != 400 || m["error"] != "slow_down" || h.Get("Retry-After") != "10" {
		t.Fatalf("fast poll: %d %v %v", st, m, h)
	}
	clk.Advance(5 * time.Second) // the interval is now 10 s: still too fast
	if st, m, h := poll(); m["error"] != "slow_down" || h.Get("Retry-After") != "15" {
		t.Fatalf("poll at the old interval: %d %v %v", st, m, h)
	}
	clk.Advance(15 * time.Second)
	if _, m, _ := poll(); m["error"] != "authorization_pending" {
		t.Fatalf("poll after backing off: %v", m)
	}
	pend := tn.PendingCIBA()
	if len(pend) != 1 || pend[0].AuthReqID != id || pend[0].UserID != "auth0|alice" || pend[0].BindingMessage != "Approve payroll export #42" {
		t.Fatalf("PendingCIBA = %+v", pend)
	}
	if err := tn.ApproveCIBA(id); err != nil {
		t.Fatal(err)
	}
	if err := tn.DenyCIBA(id); !errors.Is(err, ErrNotPending) {
		t.Errorf("deny after approve: %v", err)
	}
	clk.Advance(15 * time.Second)
	st, m, _ = poll()
	if st != 200 || m["refresh_token"] == nil {
		t.Fatalf("approved poll: %d %v", st, m)
	}
	idc := verifiedClaims(t, tn, m["id_token"].(string))
	if idc["sub"] != "auth0|alice" || idc["auth_time"] != float64(clk.Now().Add(-15*time.Second).Unix()) {
		t.Errorf("CIBA id token = %v", idc)
	}
	clk.Advance(15 * time.Second)
	if st, m, _ := poll(); st != 400 || m["error"] != "invalid_grant" {
		t.Errorf("auth_req_id reused: %d %v", st, m)
	}
	if got := tn.GrantCalls(GrantCIBA); got != 6 {
		t.Errorf("GrantCalls(ciba) = %d, want 6", got)
	}
}

func TestCIBADenyAndExpiry(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now})
	start := func(kv ...string) string {
		st, m := post(t, tn, "/bc-authorize", cibaForm(tn, kv...))
		if st != 200 {
			t.Fatalf("bc-authorize: %d %v", st, m)
		}
		return m["auth_req_id"].(string)
	}
	denied := start()
	if err := tn.DenyCIBA(denied); err != nil {
		t.Fatal(err)
	}
	if st, m := post(t, tn, "/oauth/token", pollForm(denied)); st != 400 || m["error"] != "access_denied" {
		t.Errorf("denied: %d %v", st, m)
	}
	short := start("requested_expiry", "60")
	clk.Advance(61 * time.Second)
	if err := tn.ApproveCIBA(short); !errors.Is(err, ErrNotPending) {
		t.Errorf("approve after expiry: %v", err)
	}
	if st, m := post(t, tn, "/oauth/token", pollForm(short)); st != 400 || m["error"] != "access_denied" {
		t.Errorf("expired: %d %v", st, m)
	}
	if len(tn.PendingCIBA()) != 0 {
		t.Errorf("expired request still pending: %v", tn.PendingCIBA())
	}
}

func TestCIBAPage(t *testing.T) {
	tn := NewTenant(t, Config{})
	st, m := post(t, tn, "/bc-authorize", cibaForm(tn, "scope", "openid"))
	if st != 200 {
		t.Fatal(st, m)
	}
	id := m["auth_req_id"].(string)
	body := getBody(t, tn, "/auth0test/ciba")
	if !strings.Contains(string(body), "Approve payroll export #42") || !strings.Contains(string(body), id) {
		t.Fatalf("page does not list the request:\n%s", body)
	}
	resp := postNoRedirect(t, tn, "/auth0test/ciba", url.Values{"auth_req_id": {id}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("approve: status %d", resp.StatusCode)
	}
	st, m = post(t, tn, "/oauth/token", pollForm(id))
	if st != 200 || m["refresh_token"] != nil {
		t.Errorf("poll after page approval: %d %v (no offline_access: no refresh token)", st, m)
	}
}

func TestBCAuthorizeErrors(t *testing.T) {
	tn := NewTenant(t, Config{})
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
		wantDesc   string
	}{
		{"no openid", cibaForm(tn, "scope", "profile"), 400, "invalid_request", "openid scope must be requested"},
		{"unknown user", cibaForm(tn, "login_hint", loginHint(tn, "auth0|Random-ID")), 400, "unknown_user_id", "User ID is malformed or unknown"},
		{"other issuer", cibaForm(tn, "login_hint", `{"format":"iss_sub","iss":"https://other/","sub":"auth0|alice"}`), 400, "unknown_user_id", ""},
		{"hint not json", cibaForm(tn, "login_hint", "alice"), 400, "invalid_request", ""},
		{"no binding message", cibaForm(tn, "binding_message", ""), 400, "invalid_request", ""},
		{"bad binding message", cibaForm(tn, "binding_message", "<script>"), 400, "invalid_request", ""},
		{"long binding message", cibaForm(tn, "binding_message", strings.Repeat("a", 65)), 400, "invalid_request", ""},
		{"bad expiry", cibaForm(tn, "requested_expiry", "0"), 400, "invalid_request", ""},
		{"wrong secret", cibaForm(tn, "client_secret", "x"), 401, "invalid_client", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, m := post(t, tn, "/bc-authorize", tc.form)
			if st != tc.wantStatus || m["error"] != tc.wantError {
				t.Fatalf("got %d %v, want %d %s", st, m, tc.wantStatus, tc.wantError)
			}
			if tc.wantDesc != "" && m["error_description"] != tc.wantDesc {
				t.Errorf("description %q, want %q", m["error_description"], tc.wantDesc)
			}
		})
	}
}

func parForm(kv ...string) url.Values {
	app := DefaultApplication()
	f := url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "response_type": {"code"},
		"redirect_uri": {app.CallbackURLs[0]}, "scope": {"openid offline_access"}, "state": {"par-state"},
		"code_challenge": {s256(testVerifier)}, "code_challenge_method": {"S256"}, "acr_values": {MFAACR}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func TestPAR(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now})
	st, m := post(t, tn, "/oauth/par", parForm())
	if st != http.StatusCreated || m["expires_in"] != float64(30) || !strings.HasPrefix(m["request_uri"].(string), "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("par: %d %v", st, m)
	}
	authURL := tn.URL() + "/authorize?" + url.Values{"client_id": {DefaultApplication().ClientID}, "request_uri": {m["request_uri"].(string)}}.Encode()
	b := tn.NewBrowser()
	cb, err := b.Login(context.Background(), authURL, alice)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Query().Get("state") != "par-state" || !cmp.Equal(b.Pages, []string{"login", "otp"}) {
		t.Errorf("PAR login: %v pages %v", cb, b.Pages)
	}
	if id := claimsOf(t, exchange(t, tn, cb.Query().Get("code"))["id_token"].(string)); id["acr"] != MFAACR {
		t.Errorf("acr from pushed acr_values = %v", id["acr"])
	}
	// Single use.
	var pe *PageError
	if _, err := b.Login(context.Background(), authURL, alice); !errors.As(err, &pe) {
		t.Errorf("reused request_uri: %v", err)
	}
	// Expiry after 30 s.
	_, m = post(t, tn, "/oauth/par", parForm())
	clk.Advance(31 * time.Second)
	authURL = tn.URL() + "/authorize?" + url.Values{"client_id": {DefaultApplication().ClientID}, "request_uri": {m["request_uri"].(string)}}.Encode()
	if _, err := b.Login(context.Background(), authURL, alice); !errors.As(err, &pe) {
		t.Errorf("expired request_uri: %v", err)
	}
	// Another client cannot use it.
	_, m = post(t, tn, "/oauth/par", parForm())
	authURL = tn.URL() + "/authorize?" + url.Values{"client_id": {"other"}, "request_uri": {m["request_uri"].(string)}}.Encode()
	if _, err := b.Login(context.Background(), authURL, alice); !errors.As(err, &pe) {
		t.Errorf("request_uri of another client: %v", err)
	}
	for name, f := range map[string]url.Values{
		"bad redirect":  parForm("redirect_uri", "https://evil.example/"),
		"no secret":     parForm("client_secret", ""),
		"request_uri":   parForm("request_uri", "urn:x"),
		"response_type": parForm("response_type", ""),
	} {
		if st, m := post(t, tn, "/oauth/par", f); st < 400 || st >= 500 || m["error"] == nil {
			t.Errorf("%s: %d %v", name, st, m)
		}
	}
}

func TestMFAAPI(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now})
	app := DefaultApplication()
	tok, err := tn.NewMFAToken(app.ClientID, AliceEmail, "openid offline_access", "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, tn.URL()+"/mfa/authenticators", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := tn.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	decodeJSON(resp, &list)
	resp.Body.Close()
	var types []string
	for _, a := range list {
		types = append(types, a["authenticator_type"].(string))
	}
	if !cmp.Equal(types, []string{"otp", "oob", "recovery-code"}) {
		t.Errorf("authenticators = %v", list)
	}
	challenge := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, tn.URL()+"/mfa/challenge", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return do(t, tn, req)
	}
	js := func(kv map[string]string) string {
		m := map[string]string{"client_id": app.ClientID, "client_secret": app.ClientSecret, "mfa_token": tok}
		for k, v := range kv {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	if st, m := challenge(js(map[string]string{"challenge_type": "otp"})); st != 200 || m["challenge_type"] != "otp" {
		t.Errorf("otp challenge: %d %v", st, m)
	}
	grant := func(kv ...string) (int, map[string]any) {
		f := url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "mfa_token": {tok}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return post(t, tn, "/oauth/token", f)
	}
	if st, m := grant("grant_type", GrantMFAOTP, "otp", "000000"); st != 403 || m["error_description"] != "Invalid otp_code." {
		t.Errorf("wrong otp: %d %v", st, m)
	}
	// Push (oob): pending until approved.
	st, m := challenge(js(map[string]string{"challenge_type": "oob"}))
	oob, _ := m["oob_code"].(string)
	if st != 200 || oob == "" {
		t.Fatalf("oob challenge: %d %v", st, m)
	}
	if st, m := grant("grant_type", GrantMFAOOB, "oob_code", oob); st != 400 || m["error"] != "authorization_pending" {
		t.Errorf("oob pending: %d %v", st, m)
	}
	if p := tn.PendingOOB(); len(p) != 1 || p[0].OOBCode != oob || p[0].UserID != "auth0|alice" {
		t.Fatalf("PendingOOB = %+v", p)
	}
	body := getBody(t, tn, "/auth0test/ciba")
	if !strings.Contains(string(body), oob) {
		t.Errorf("the page does not list the push challenge")
	}
	resp = postNoRedirect(t, tn, "/auth0test/ciba", url.Values{"oob_code": {oob}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusSeeOther || len(tn.PendingOOB()) != 0 {
		t.Fatalf("approve from the page: %d, pending %v", resp.StatusCode, tn.PendingOOB())
	}
	if err := tn.ApproveOOB(oob); !errors.Is(err, ErrNotPending) {
		t.Errorf("second approval: %v", err)
	}
	st, m = grant("grant_type", GrantMFAOOB, "oob_code", oob)
	if st != 200 || m["refresh_token"] == nil {
		t.Fatalf("oob approved: %d %v", st, m)
	}
	// The mfa_token is single use.
	if st, _ := grant("grant_type", GrantMFAOTP, "otp", tn.OTP(AliceEmail)); st != 403 {
		t.Errorf("mfa_token reused: %d", st)
	}
	// Recovery code: answers a new one; the old one is spent.
	tok, _ = tn.NewMFAToken(app.ClientID, AliceEmail, "openid", "")
	st, m = grant("grant_type", GrantMFARecoveryCode, "recovery_code", AliceRecoveryCode)
	if st != 200 || m["recovery_code"] == nil || m["recovery_code"] == AliceRecoveryCode {
		t.Fatalf("recovery: %d %v", st, m)
	}
	tok, _ = tn.NewMFAToken(app.ClientID, AliceEmail, "openid", "")
	if st, _ := grant("grant_type", GrantMFARecoveryCode, "recovery_code", AliceRecoveryCode); st != 403 {
		t.Errorf("spent recovery code: %d", st)
	}
	// Denied push, and an expired mfa_token.
	_, m = challenge(js(map[string]string{"challenge_type": "oob"}))
	tn.DenyOOB(m["oob_code"].(string))
	if st, m := grant("grant_type", GrantMFAOOB, "oob_code", m["oob_code"].(string)); st != 400 || m["error"] != "access_denied" {
		t.Errorf("denied push: %d %v", st, m)
	}
	clk.Advance(11 * time.Minute)
	if st, m := grant("grant_type", GrantMFAOTP, "otp", tn.OTP(AliceEmail)); st != 403 || m["error"] != "expired_token" {
		t.Errorf("expired mfa_token: %d %v", st, m)
	}
	req, _ = http.NewRequest(http.MethodGet, tn.URL()+"/mfa/authenticators", nil)
	req.Header.Set("Authorization", "Bearer nope")
	if st, m := do(t, tn, req); st != 401 {
		t.Errorf("authenticators with a bad token: %d %v", st, m)
	}
}

func TestKeyRotation(t *testing.T) {
	tn := NewTenant(t, Config{})
	old := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["id_token"].(string)
	a, b, _ := tn.SigningKeys()
	tn.RotateKeys()
	cur, next, prev := tn.SigningKeys()
	if cur.KID != b.KID || prev == nil || prev.KID != a.KID || next.KID == a.KID || next.KID == b.KID {
		t.Fatalf("after rotation: current %s next %s previous %v (was %s, %s)", cur.KID, next.KID, prev, a.KID, b.KID)
	}
	fresh := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))["id_token"].(string)
	if headerOf(t, fresh)["kid"] != b.KID {
		t.Errorf("new token kid = %v, want %s", headerOf(t, fresh)["kid"], b.KID)
	}
	verifiedClaims(t, tn, old) // the previous key is still published
	verifiedClaims(t, tn, fresh)
	tn.RevokePreviousKey()
	_, _, prev = tn.SigningKeys()
	if prev != nil {
		t.Error("previous key survived RevokePreviousKey")
	}
	resp, err := tn.Client().Get(tn.URL() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), a.KID) {
		t.Error("revoked key still in the JWKS")
	}
}

func TestSignAndClaims(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now})
	u, ok := tn.User(AliceEmail)
	if !ok {
		t.Fatal("no alice")
	}
	claims := tn.IDTokenClaims("stepup-demo-client", u)
	claims["acr"] = MFAACR
	tok := tn.Sign(nil, claims)
	got := verifiedClaims(t, tn, tok)
	if got["sub"] != "auth0|alice" || got["iss"] != tn.Issuer() || got["acr"] != MFAACR || got["exp"] != float64(clk.Now().Add(10*time.Hour).Unix()) {
		t.Errorf("claims = %v", got)
	}
	cur, _, _ := tn.SigningKeys()
	if h := headerOf(t, tok); h["kid"] != cur.KID || h["alg"] != "RS256" {
		t.Errorf("header = %v", h)
	}
	// Headers are used as given.
	if h := headerOf(t, tn.Sign(map[string]any{"kid": "unknown", "typ": "at+jwt"}, claims)); h["kid"] != "unknown" || h["typ"] != "at+jwt" {
		t.Errorf("header = %v", h)
	}
	if h := headerOf(t, tn.Sign(map[string]any{"kid": nil}, claims)); len(h) != 1 || h["alg"] != "RS256" {
		t.Errorf("header with kid removed = %v", h)
	}
	none := tn.Sign(map[string]any{"alg": "none"}, claims)
	if !strings.HasSuffix(none, ".") {
		t.Errorf("alg none token has a signature: %s", none)
	}
	if _, _, err := tn.verifyJWT(tn.Sign(map[string]any{"alg": "HS256"}, claims), false); err == nil {
		t.Error("the tenant accepted an HS256 token keyed with its public key")
	}
	if _, _, err := tn.verifyJWT(tn.SignWith([]byte(DefaultApplication().ClientSecret), nil, claims), false); err != nil {
		t.Errorf("HS256 with the client secret: %v", err)
	}
	at := tn.AccessTokenClaims("stepup-demo-client", "https://api", u, "read")
	if at["aud"] != "https://api" || at["scope"] != "read" {
		t.Errorf("access token claims = %v", at)
	}
}

func TestFaultsAndCounters(t *testing.T) {
	tn := NewTenant(t, Config{})
	get := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tn.URL()+"/.well-known/jwks.json", nil)
		return tn.Client().Do(req)
	}
	tn.InjectFault("/.well-known/jwks.json", Fault{Status: 503, Times: 1})
	resp, err := get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	decodeJSON(resp, &m)
	resp.Body.Close()
	if resp.StatusCode != 503 || m["error"] != "server_error" {
		t.Errorf("fault: %d %v", resp.StatusCode, m)
	}
	resp, err = get(context.Background())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after Times: %v %v", resp, err)
	}
	resp.Body.Close()

	tn.InjectFault("/.well-known/jwks.json", Fault{Status: 429, RetryAfter: 3 * time.Second, Body: `{"error":"too_many_requests","error_description":"Global limit has been reached"}`})
	for i := 0; i < 2; i++ {
		resp, err = get(context.Background())
		if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
			t.Fatalf("429 #%d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	tn.ClearFaults()

	tn.InjectFault("/.well-known/jwks.json", Fault{Drop: true, Times: 1})
	if resp, err := get(context.Background()); err == nil {
		resp.Body.Close()
		t.Error("dropped connection answered")
	}
	tn.InjectFault("/.well-known/jwks.json", Fault{Delay: time.Hour, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		resp, err := get(ctx)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// Give up only once the request is held by the tenant (a slow machine may take
	// a while to get there).
	for deadline := time.Now().Add(20 * time.Second); tn.Calls("/.well-known/jwks.json") < 6; {
		if time.Now().After(deadline) {
			t.Fatal("the delayed request never reached the tenant")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("delayed request answered before the client gave up: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("delayed request answered")
	}
	if got := tn.Calls("/.well-known/jwks.json"); got != 6 {
		t.Errorf("Calls = %d, want 6", got)
	}
	tn.InjectFault("/oauth/token", Fault{Status: 500, Times: 1})
	if st, _ := post(t, tn, "/oauth/token", refreshForm("x")); st != 500 {
		t.Errorf("token fault: %d", st)
	}
	if got := tn.GrantCalls("refresh_token"); got != 1 {
		t.Errorf("faulted grant not counted: %d", got)
	}
	tn.ResetCounters()
	if tn.Calls("/oauth/token") != 0 || len(tn.Endpoints()) != 0 {
		t.Errorf("counters after reset: %v", tn.Endpoints())
	}
}

func TestForgeIDTokens(t *testing.T) {
	tn := NewTenant(t, Config{})
	tn.ForgeIDTokens(func(h, c map[string]any) {
		c["nonce"] = "forged"
		h["kid"] = "forged-kid"
	})
	m := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))
	if claimsOf(t, m["id_token"].(string))["nonce"] != "forged" || headerOf(t, m["id_token"].(string))["kid"] != "forged-kid" {
		t.Error("ForgeIDTokens had no effect")
	}
	tn.ForgeIDTokens(nil)
	m = exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))
	verifiedClaims(t, tn, m["id_token"].(string))
}

func TestGarbageKeepsServing(t *testing.T) {
	tn := NewTenant(t, Config{})
	for _, p := range []string{"/oauth/token", "/oauth/par", "/bc-authorize", "/mfa/challenge", "/oauth/revoke"} {
		for _, body := range []string{"%zz", strings.Repeat("a=b&", 20000), "\x00\xff", "grant_type=refresh_token&grant_type=x"} {
			resp, err := tn.Client().Post(tn.URL()+p, "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			decodeJSON(resp, &m)
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || m["error"] == nil {
				t.Errorf("%s %q: %d %v", p, body[:min(len(body), 20)], resp.StatusCode, m)
			}
		}
	}
	resp, err := tn.Client().Get(tn.URL() + "/authorize?%zz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("garbage authorize: %d", resp.StatusCode)
	}
}
