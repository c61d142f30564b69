package stepup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	testAudience  = "https://api.example/"
	testNamespace = "https://stepup.example/"
)

type apiFixture struct {
	keys  []*testKey
	srv   *jwksServer
	clock *testClock
	v     *Verifier
}

func newAPIFixture(t testing.TB, mutate func(*VerifierConfig)) *apiFixture {
	t.Helper()
	f := &apiFixture{keys: testKeys(t, 2), clock: newTestClock()}
	f.srv = newJWKSServer(t, f.keys[0])
	cfg := VerifierConfig{
		Domain:         "tenant.example",
		Audience:       testAudience,
		JWKSURL:        f.srv.jwksURL(),
		HTTPClient:     f.srv.Client(),
		Now:            f.clock.Now,
		ClaimNamespace: testNamespace,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	f.v = v
	return f
}

// claims returns a typical Auth0 access token's claims.
func (f *apiFixture) claims() map[string]any {
	now := f.clock.Now().Unix()
	return map[string]any{
		"iss":         testIssuer,
		"sub":         "auth0|alice",
		"aud":         []string{testAudience, testIssuer + "userinfo"},
		"iat":         now,
		"exp":         now + 86400,
		"azp":         "client-123",
		"scope":       "openid profile email read:salaries",
		"permissions": []string{"read:employees"},
		"gty":         "authorization_code",
	}
}

func (f *apiFixture) sign(t testing.TB, mutate func(h, c map[string]any)) string {
	t.Helper()
	h := map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": f.keys[0].kid}
	c := f.claims()
	if mutate != nil {
		mutate(h, c)
	}
	return signJWT(t, h, c, f.keys[0].priv, []byte(testSecret))
}

func TestAccessTokenValid(t *testing.T) {
	f := newAPIFixture(t, nil)
	now := f.clock.Now()
	tok, err := f.v.Verify(context.Background(), f.sign(t, func(h, c map[string]any) {
		c[testNamespace+"acr"] = ACRMultiFactor
		c[testNamespace+"amr"] = []string{"mfa", "pwd"}
		c[testNamespace+"auth_time"] = now.Unix() - 30
	}))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Subject != "auth0|alice" || tok.Issuer != testIssuer || len(tok.Audience) != 2 || tok.AuthorizedParty != "client-123" ||
		strings.Join(tok.Scopes, " ") != "openid profile email read:salaries" || strings.Join(tok.Permissions, " ") != "read:employees" ||
		!tok.Expiry.Equal(now.Add(86400*time.Second)) || !tok.IssuedAt.Equal(now) {
		t.Fatalf("unexpected token %+v", tok)
	}
	if !tok.HasScope("read:salaries") || !tok.HasScope("read:employees") || tok.HasScope("write:salaries") {
		t.Fatal("HasScope")
	}
	p := MFA.WithMaxAge(5 * time.Minute)
	if err := p.Check(tok.Authentication, now); err != nil {
		t.Fatalf("namespaced authentication: %v", err)
	}
	// Standard claims, as RFC 9068 issuers send them; aud as a string; typ JWT; PS256.
	tok, err = f.v.Verify(context.Background(), f.sign(t, func(h, c map[string]any) {
		h["typ"], h["alg"] = "JWT", "PS256"
		c["aud"] = testAudience
		c["acr"], c["amr"], c["auth_time"] = "urn:acr:gold", []string{"otp"}, now.Unix()
	}))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Authentication.ACR != "urn:acr:gold" || tok.Authentication.AMR[0] != "otp" || !tok.Authentication.AuthTime.Equal(now) {
		t.Fatalf("standard authentication claims: %+v", tok.Authentication)
	}
}

func TestAccessTokenForged(t *testing.T) {
	f := newAPIFixture(t, nil)
	now := f.clock.Now().Unix()
	mut := func(m func(h, c map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string { return f.sign(t, m) }
	}
	cases := []struct {
		name  string
		token func(t *testing.T) string
		want  error
	}{
		{"alg none", mut(func(h, c map[string]any) { h["alg"] = "none" }), ErrTokenAlgorithm},
		{"HS256 is never accepted", func(t *testing.T) string {
			return signJWT(t, map[string]any{"alg": "HS256", "kid": f.keys[0].kid}, f.claims(), nil, []byte("secret"))
		}, ErrTokenAlgorithm},
		{"signed by another key", func(t *testing.T) string {
			return signJWT(t, map[string]any{"alg": "RS256", "kid": f.keys[0].kid}, f.claims(), f.keys[1].priv, nil)
		}, ErrTokenSignature},
		{"PS256 header over an RS256 signature", func(t *testing.T) string {
			raw := f.sign(t, nil)
			ps := f.sign(t, func(h, c map[string]any) { h["alg"] = "PS256" })
			return ps[:strings.LastIndexByte(ps, '.')] + raw[strings.LastIndexByte(raw, '.'):]
		}, ErrTokenSignature},
		{"unknown kid", mut(func(h, c map[string]any) { h["kid"] = "other" }), ErrTokenUnknownKey},
		{"typ of an ID token's cousin", mut(func(h, c map[string]any) { h["typ"] = "dpop+jwt" }), ErrTokenType},
		{"wrong iss", mut(func(h, c map[string]any) { c["iss"] = "https://evil.example/" }), ErrTokenIssuer},
		{"wrong aud", mut(func(h, c map[string]any) { c["aud"] = []string{"https://other.example/"} }), ErrTokenAudience},
		{"ID token for the client", mut(func(h, c map[string]any) { c["aud"] = "client-123" }), ErrTokenAudience},
		{"expired", mut(func(h, c map[string]any) { c["exp"] = now - 61 }), ErrTokenExpired},
		{"no exp", mut(func(h, c map[string]any) { delete(c, "exp") }), ErrTokenExpired},
		{"nbf future", mut(func(h, c map[string]any) { c["nbf"] = now + 120 }), ErrTokenNotYetValid},
		{"iat future", mut(func(h, c map[string]any) { c["iat"] = now + 120 }), ErrTokenIssuedAt},
		{"no sub", mut(func(h, c map[string]any) { delete(c, "sub") }), ErrTokenSubject},
		{"scope a number", mut(func(h, c map[string]any) { c["scope"] = 3 }), ErrTokenMalformed},
		{"permissions a string", mut(func(h, c map[string]any) { c["permissions"] = "read:all" }), ErrTokenMalformed},
		{"namespaced amr a string", mut(func(h, c map[string]any) { c[testNamespace+"amr"] = "mfa" }), ErrTokenMalformed},
		{"acr a number", mut(func(h, c map[string]any) { c["acr"] = 2 }), ErrTokenMalformed},
		{"garbage", func(t *testing.T) string { return "garbage" }, ErrTokenMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), c.token(t))
			var te *TokenError
			if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalidToken) || !errors.As(err, &te) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestNewVerifierConfig(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []VerifierConfig{
		{Audience: testAudience},
		{Domain: "tenant.example"},
		{Domain: "tenant.example/path", Audience: testAudience},
		{Issuer: "http://tenant.example/", Audience: testAudience},
		{Domain: "tenant.example", Audience: testAudience, Algorithms: []string{"HS256"}},
		{Domain: "tenant.example", Audience: testAudience, Algorithms: []string{"none"}},
	} {
		if _, err := NewVerifier(ctx, cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewVerifier(%+v): got %v, want ErrInvalidConfig", cfg, err)
		}
	}
	v, err := NewVerifier(ctx, VerifierConfig{Domain: "https://tenant.example/", Audience: testAudience})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.issuer != "https://tenant.example/" || v.keys.url != "https://tenant.example/.well-known/jwks.json" {
		t.Fatalf("issuer %q, JWKS %q", v.issuer, v.keys.url)
	}
}

func TestVerifierTenantDown(t *testing.T) {
	f := newAPIFixture(t, nil)
	f.srv.setStatus(http.StatusBadGateway)
	// NewVerifier succeeded (no I/O); verification fails closed.
	_, err := f.v.Verify(context.Background(), f.sign(t, nil))
	if !errors.Is(err, ErrTenantUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("got %v, want ErrTenantUnavailable", err)
	}
	if f.srv.hits.Load() != 1 {
		t.Fatalf("JWKS hits %d, want 1", f.srv.hits.Load())
	}
}

func TestRequireMatrix(t *testing.T) {
	f := newAPIFixture(t, nil)
	now := f.clock.Now().Unix()
	salaries := MFA.WithMaxAge(10 * time.Minute).Named("salaries")
	salaries.Scopes = []string{"read:salaries"}
	var seen *AccessToken
	h := f.v.Require(salaries)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := AccessTokenFromContext(r.Context())
		if !ok {
			t.Error("no access token in the context")
		}
		seen = tok
		_, _ = io.WriteString(w, "ok")
	}))
	stepped := func(h, c map[string]any) {
		c[testNamespace+"acr"] = ACRMultiFactor
		c[testNamespace+"amr"] = []string{"mfa"}
		c[testNamespace+"auth_time"] = now - 60
	}
	good := f.sign(t, stepped)
	cases := []struct {
		name       string
		auth       []string
		jwksDown   bool
		wantStatus int
		wantHeader string // exact WWW-Authenticate
	}{
		{"no token", nil, false, 401, `Bearer`},
		{"basic credentials", []string{"Basic YWxpY2U6c2VjcmV0"}, false, 401, `Bearer`},
		{"two authorization headers", []string{"Bearer " + good, "Bearer " + good}, false, 401, `Bearer error="invalid_token", error_description="The access token is invalid"`},
		{"empty bearer", []string{"Bearer"}, false, 401, `Bearer error="invalid_token", error_description="The access token is invalid"`},
		{"garbage token", []string{"Bearer abc.def.ghi"}, false, 401, `Bearer error="invalid_token", error_description="The access token is invalid"`},
		{"expired", []string{"Bearer " + f.sign(t, func(h, c map[string]any) { stepped(h, c); c["exp"] = now - 3600 })}, false, 401,
			`Bearer error="invalid_token", error_description="The access token expired"`},
		{"other API", []string{"Bearer " + f.sign(t, func(h, c map[string]any) { stepped(h, c); c["aud"] = "https://other/" })}, false, 401,
			`Bearer error="invalid_token", error_description="The access token is not for this API"`},
		{"missing scope", []string{"Bearer " + f.sign(t, func(h, c map[string]any) { stepped(h, c); c["scope"] = "openid" })}, false, 403,
			`Bearer error="insufficient_scope", error_description="the access token lacks a required scope", scope="read:salaries"`},
		{"no step-up", []string{"Bearer " + f.sign(t, nil)}, false, 401,
			`Bearer error="insufficient_user_authentication", error_description="A more recent or stronger authentication is required", acr_values="` + ACRMultiFactor + `", max_age="600"`},
		{"step-up too old", []string{"Bearer " + f.sign(t, func(h, c map[string]any) { stepped(h, c); c[testNamespace+"auth_time"] = now - 3600 })}, false, 401,
			`Bearer error="insufficient_user_authentication", error_description="A more recent or stronger authentication is required", acr_values="` + ACRMultiFactor + `", max_age="600"`},
		{"lowercase bearer scheme", []string{"bearer " + good}, false, 200, ""},
		{"stepped up", []string{"Bearer " + good}, false, 200, ""},
		{"JWKS down", []string{"Bearer " + good}, true, 503, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.jwksDown {
				// A fresh verifier whose tenant is down.
				f2 := newAPIFixture(t, nil)
				f2.srv.setStatus(http.StatusServiceUnavailable)
				h = f2.v.Require(salaries)(http.NotFoundHandler())
			}
			seen = nil
			r := httptest.NewRequest("GET", "/api/salaries", nil)
			for _, a := range c.auth {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", w.Code, c.wantStatus, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != c.wantHeader {
				t.Fatalf("WWW-Authenticate\n got %s\nwant %s", got, c.wantHeader)
			}
			if c.wantStatus == 200 && (seen == nil || seen.Subject != "auth0|alice") {
				t.Fatalf("handler saw token %+v", seen)
			}
			for _, a := range c.auth {
				for _, part := range strings.Split(strings.TrimPrefix(a, "Bearer "), ".") {
					if len(part) > 8 && (strings.Contains(w.Body.String(), part) || strings.Contains(w.Header().Get("WWW-Authenticate"), part)) {
						t.Fatal("the answer echoes token content")
					}
				}
			}
			if strings.Contains(w.Body.String(), "alice") || strings.Contains(w.Header().Get("WWW-Authenticate"), "alice") {
				t.Fatal("the answer echoes a claim")
			}
		})
	}
}

func TestRequireChallengeRoundTrip(t *testing.T) {
	f := newAPIFixture(t, nil)
	p := MFA.WithMaxAge(5 * time.Minute)
	srv := httptest.NewServer(f.v.Require(p)(http.NotFoundHandler()))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+f.sign(t, nil))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c, err := ParseChallenge(resp)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Policy()
	if c.Error != ErrorInsufficientUserAuthentication || strings.Join(got.ACR, " ") != p.ACRValues() || got.MaxAge != p.MaxAge {
		t.Fatalf("challenge %+v gives policy %+v, want acr %q max age %s", c, got, p.ACRValues(), p.MaxAge)
	}
}

func FuzzVerifyAccessToken(f *testing.F) {
	fx := newAPIFixture(f, func(c *VerifierConfig) { c.CacheSize = 4 })
	f.Add(fx.sign(f, nil))
	f.Add(fx.sign(f, func(h, c map[string]any) { h["alg"] = "PS256"; c["scope"] = []string{"a"} }))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := fx.v.Verify(context.Background(), raw)
		if err == nil && tok.Subject == "" {
			t.Fatalf("accepted a token without sub: %q", raw)
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
