package stepup

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	testIssuer   = "https://tenant.example/"
	testClientID = "client-123"
	testSecret   = "client-secret-of-at-least-32-bytes!!"
	testNonce    = "nonce-abc"
)

type idFixture struct {
	keys  []*testKey
	srv   *jwksServer
	clock *testClock
	ks    *keySet
	v     *idTokenVerifier
}

func newIDFixture(t testing.TB) *idFixture {
	t.Helper()
	f := &idFixture{keys: testKeys(t, 2), clock: newTestClock()}
	f.srv = newJWKSServer(t, f.keys[0])
	f.ks = newTestKeySet(t, f.srv, f.clock)
	f.v = newIDTokenVerifier(idTokenConfig{
		Issuer: testIssuer, ClientID: testClientID, Keys: f.ks, Now: f.clock.Now, Leeway: time.Minute,
	})
	return f
}

func (f *idFixture) claims() map[string]any {
	now := f.clock.Now().Unix()
	return map[string]any{
		"iss":       testIssuer,
		"sub":       "auth0|alice",
		"aud":       testClientID,
		"iat":       now,
		"exp":       now + 36000,
		"nonce":     testNonce,
		"sid":       "sid-1",
		"auth_time": now - 10,
		"acr":       ACRMultiFactor,
		"amr":       []string{"mfa"},
	}
}

func (f *idFixture) sign(t testing.TB, mutate func(h, c map[string]any)) string {
	t.Helper()
	h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": f.keys[0].kid}
	c := f.claims()
	if mutate != nil {
		mutate(h, c)
	}
	return signJWT(t, h, c, f.keys[0].priv, []byte(testSecret))
}

func TestIDTokenValid(t *testing.T) {
	f := newIDFixture(t)
	raw := f.sign(t, nil)
	tok, err := f.v.verify(context.Background(), raw, idTokenCheck{Nonce: testNonce, MaxAge: 5 * time.Minute, CheckMaxAge: true})
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if tok.Subject != "auth0|alice" || tok.Issuer != testIssuer || tok.Nonce != testNonce || tok.SessionID != "sid-1" ||
		tok.ACR != ACRMultiFactor || len(tok.AMR) != 1 || tok.AMR[0] != "mfa" || !tok.AuthTime.Equal(now.Add(-10*time.Second)) ||
		!tok.IssuedAt.Equal(now) || !tok.Expiry.Equal(now.Add(36000*time.Second)) || tok.Raw != raw {
		t.Fatalf("unexpected token: %+v", tok)
	}
	if err := MFA.Check(tok.Authentication(), now); err != nil {
		t.Fatalf("MFA policy: %v", err)
	}
	// PS256 too.
	ps := f.sign(t, func(h, c map[string]any) { h["alg"] = "PS256" })
	if _, err := f.v.verify(context.Background(), ps, idTokenCheck{Nonce: testNonce}); err != nil {
		t.Fatalf("PS256: %v", err)
	}
	// Several audiences with azp.
	multi := f.sign(t, func(h, c map[string]any) { c["aud"] = []string{testClientID, "other"}; c["azp"] = testClientID })
	if _, err := f.v.verify(context.Background(), multi, idTokenCheck{}); err != nil {
		t.Fatalf("aud array with azp: %v", err)
	}
	// Leeway: expired 30 s ago is still accepted with 60 s leeway.
	late := f.sign(t, func(h, c map[string]any) { c["exp"] = now.Unix() - 30 })
	if _, err := f.v.verify(context.Background(), late, idTokenCheck{}); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
}

func TestIDTokenForged(t *testing.T) {
	f := newIDFixture(t)
	now := f.clock.Now().Unix()
	pubDER, err := x509.MarshalPKIXPublicKey(&f.keys[0].priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	hsVerifier := newIDTokenVerifier(idTokenConfig{
		Issuer: testIssuer, ClientID: testClientID, ClientSecret: testSecret,
		Algorithms: []string{"RS256", "HS256"}, Keys: f.ks, Now: f.clock.Now, Leeway: time.Minute,
	})

	type tc struct {
		name  string
		token func(t *testing.T) string
		v     *idTokenVerifier
		check idTokenCheck
		want  error
	}
	mut := func(m func(h, c map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string { return f.sign(t, m) }
	}
	cases := []tc{
		{name: "bad signature", token: func(t *testing.T) string {
			raw := f.sign(t, nil)
			i := strings.LastIndexByte(raw, '.')
			sig := []byte(raw[i+1:])
			// Another base64url character (a flipped bit could make one
			// that is not, and the token would fail as malformed instead).
			if sig[10] == 'A' {
				sig[10] = 'B'
			} else {
				sig[10] = 'A'
			}
			return raw[:i+1] + string(sig)
		}, want: ErrTokenSignature},
		{name: "payload changed after signing", token: func(t *testing.T) string {
			raw := f.sign(t, nil)
			other := f.sign(t, func(h, c map[string]any) { c["sub"] = "auth0|mallory" })
			p := strings.Split(raw, ".")
			q := strings.Split(other, ".")
			return p[0] + "." + q[1] + "." + p[2]
		}, want: ErrTokenSignature},
		{name: "signed by another key with the known kid", token: func(t *testing.T) string {
			return signJWT(t, map[string]any{"alg": "RS256", "kid": f.keys[0].kid}, f.claims(), f.keys[1].priv, nil)
		}, want: ErrTokenSignature},
		{name: "alg none", token: mut(func(h, c map[string]any) { h["alg"] = "none" }), want: ErrTokenAlgorithm},
		{name: "alg None", token: mut(func(h, c map[string]any) { h["alg"] = "None" }), want: ErrTokenAlgorithm},
		{name: "alg missing", token: mut(func(h, c map[string]any) { delete(h, "alg") }), want: ErrTokenAlgorithm},
		{name: "alg not allowed", token: mut(func(h, c map[string]any) { h["alg"] = "RS512" }), want: ErrTokenAlgorithm},
		{name: "HS256 without a configured secret", token: func(t *testing.T) string {
			return signJWT(t, map[string]any{"alg": "HS256"}, f.claims(), nil, pubPEM)
		}, want: ErrTokenAlgorithm},
		{name: "HS256 signed with the RSA public key", v: hsVerifier, token: func(t *testing.T) string {
			return signJWT(t, map[string]any{"alg": "HS256", "kid": f.keys[0].kid}, f.claims(), nil, pubPEM)
		}, want: ErrTokenSignature},
		{name: "HS256 signed with another secret", v: hsVerifier, token: func(t *testing.T) string {
			return signJWT(t, map[string]any{"alg": "HS256"}, f.claims(), nil, []byte("guess"))
		}, want: ErrTokenSignature},
		{name: "unknown kid", token: mut(func(h, c map[string]any) { h["kid"] = "nope" }), want: ErrTokenUnknownKey},
		{name: "typ at+jwt", token: mut(func(h, c map[string]any) { h["typ"] = "at+jwt" }), want: ErrTokenType},
		{name: "crit header", token: mut(func(h, c map[string]any) { h["crit"] = []string{"exp"} }), want: ErrTokenMalformed},
		{name: "wrong iss", token: mut(func(h, c map[string]any) { c["iss"] = "https://evil.example/" }), want: ErrTokenIssuer},
		{name: "iss without trailing slash", token: mut(func(h, c map[string]any) { c["iss"] = strings.TrimSuffix(testIssuer, "/") }), want: ErrTokenIssuer},
		{name: "missing iss", token: mut(func(h, c map[string]any) { delete(c, "iss") }), want: ErrTokenIssuer},
		{name: "iss not a string", token: mut(func(h, c map[string]any) { c["iss"] = 42 }), want: ErrTokenMalformed},
		{name: "wrong aud", token: mut(func(h, c map[string]any) { c["aud"] = "other-client" }), want: ErrTokenAudience},
		{name: "missing aud", token: mut(func(h, c map[string]any) { delete(c, "aud") }), want: ErrTokenAudience},
		{name: "aud array without client", token: mut(func(h, c map[string]any) { c["aud"] = []string{"a", "b"} }), want: ErrTokenAudience},
		{name: "aud of wrong type", token: mut(func(h, c map[string]any) { c["aud"] = 7 }), want: ErrTokenMalformed},
		{name: "several aud, azp missing", token: mut(func(h, c map[string]any) { c["aud"] = []string{testClientID, "api"} }), want: ErrTokenAuthorizedParty},
		{name: "several aud, azp other", token: mut(func(h, c map[string]any) {
			c["aud"] = []string{testClientID, "api"}
			c["azp"] = "api"
		}), want: ErrTokenAuthorizedParty},
		{name: "single aud, azp other", token: mut(func(h, c map[string]any) { c["azp"] = "other" }), want: ErrTokenAuthorizedParty},
		{name: "missing sub", token: mut(func(h, c map[string]any) { delete(c, "sub") }), want: ErrTokenSubject},
		{name: "empty sub", token: mut(func(h, c map[string]any) { c["sub"] = "" }), want: ErrTokenSubject},
		{name: "missing iat", token: mut(func(h, c map[string]any) { delete(c, "iat") }), want: ErrTokenIssuedAt},
		{name: "iat in the future", token: mut(func(h, c map[string]any) { c["iat"] = now + 3600 }), want: ErrTokenIssuedAt},
		{name: "iat a string", token: mut(func(h, c map[string]any) { c["iat"] = "yesterday" }), want: ErrTokenMalformed},
		{name: "expired", token: mut(func(h, c map[string]any) { c["exp"] = now - 120 }), want: ErrTokenExpired},
		{name: "missing exp", token: mut(func(h, c map[string]any) { delete(c, "exp") }), want: ErrTokenExpired},
		{name: "nbf in the future", token: mut(func(h, c map[string]any) { c["nbf"] = now + 3600 }), want: ErrTokenNotYetValid},
		{name: "wrong nonce", token: mut(func(h, c map[string]any) { c["nonce"] = "other" }), check: idTokenCheck{Nonce: testNonce}, want: ErrTokenNonce},
		{name: "missing nonce", token: mut(func(h, c map[string]any) { delete(c, "nonce") }), check: idTokenCheck{Nonce: testNonce}, want: ErrTokenNonce},
		{name: "nonce prefix", token: mut(func(h, c map[string]any) { c["nonce"] = testNonce[:3] }), check: idTokenCheck{Nonce: testNonce}, want: ErrTokenNonce},
		{name: "auth_time missing with max_age", token: mut(func(h, c map[string]any) { delete(c, "auth_time") }), check: idTokenCheck{MaxAge: time.Minute, CheckMaxAge: true}, want: ErrTokenAuthTime},
		{name: "auth_time too old", token: mut(func(h, c map[string]any) { c["auth_time"] = now - 600 }), check: idTokenCheck{MaxAge: 5 * time.Minute, CheckMaxAge: true}, want: ErrTokenAuthTime},
		{name: "auth_time in the future", token: mut(func(h, c map[string]any) { c["auth_time"] = now + 3600 }), want: ErrTokenAuthTime},
		{name: "acr not a string", token: mut(func(h, c map[string]any) { c["acr"] = []string{ACRMultiFactor} }), want: ErrTokenMalformed},
		{name: "amr a string", token: mut(func(h, c map[string]any) { c["amr"] = "mfa" }), want: ErrTokenMalformed},
		{name: "amr with a number", token: mut(func(h, c map[string]any) { c["amr"] = []any{"mfa", 1} }), want: ErrTokenMalformed},
		{name: "payload not JSON", token: func(t *testing.T) string {
			return signRaw(t, []byte(`{"alg":"RS256","kid":"`+f.keys[0].kid+`"}`), []byte(`not json`), "RS256", f.keys[0].priv, nil)
		}, want: ErrTokenMalformed},
		{name: "payload a JSON array", token: func(t *testing.T) string {
			return signRaw(t, []byte(`{"alg":"RS256","kid":"`+f.keys[0].kid+`"}`), []byte(`[1]`), "RS256", f.keys[0].priv, nil)
		}, want: ErrTokenMalformed},
		{name: "alg not a string", token: mut(func(h, c map[string]any) { h["alg"] = 256 }), want: ErrTokenMalformed},
		{name: "alg repeated", token: func(t *testing.T) string {
			return signRaw(t, []byte(`{"alg":"none","alg":"RS256","kid":"`+f.keys[0].kid+`"}`), []byte(`{}`), "RS256", f.keys[0].priv, nil)
		}, want: ErrTokenMalformed},
		{name: "claim repeated", token: func(t *testing.T) string {
			return signRaw(t, []byte(`{"alg":"RS256","kid":"`+f.keys[0].kid+`"}`), []byte(`{"sub":"a","sub":"b"}`), "RS256", f.keys[0].priv, nil)
		}, want: ErrTokenMalformed},
		{name: "two parts", token: func(t *testing.T) string { return "a.b" }, want: ErrTokenMalformed},
		{name: "five parts (JWE)", token: func(t *testing.T) string { return "a.b.c.d.e" }, want: ErrTokenMalformed},
		{name: "header not base64", token: func(t *testing.T) string { return "!!!.b.c" }, want: ErrTokenMalformed},
		{name: "empty", token: func(t *testing.T) string { return "" }, want: ErrTokenMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.v
			if v == nil {
				v = f.v
			}
			tok, err := v.verify(context.Background(), c.token(t), c.check)
			if err == nil {
				t.Fatalf("accepted forged token: %+v", tok)
			}
			if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got %v, want %v matching ErrInvalidToken", err, c.want)
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Kind != c.want {
				t.Fatalf("got %#v, want a *TokenError of kind %v", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "stepup: ") {
				t.Fatalf("error %q does not start with stepup:", err)
			}
		})
	}
	// The HS256 verifier does accept a token MACed with the client secret.
	good := signJWT(t, map[string]any{"alg": "HS256"}, f.claims(), nil, []byte(testSecret))
	if _, err := hsVerifier.verify(context.Background(), good, idTokenCheck{Nonce: testNonce}); err != nil {
		t.Fatalf("HS256 with the client secret: %v", err)
	}
}

func TestIDTokenKeyRotation(t *testing.T) {
	f := newIDFixture(t)
	ctx := context.Background()
	if _, err := f.v.verify(ctx, f.sign(t, nil), idTokenCheck{}); err != nil {
		t.Fatal(err)
	}
	f.srv.setKeys(f.keys[1], f.keys[0])
	f.clock.Advance(time.Minute)
	raw := signJWT(t, map[string]any{"alg": "RS256", "kid": f.keys[1].kid}, f.claims(), f.keys[1].priv, nil)
	if _, err := f.v.verify(ctx, raw, idTokenCheck{}); err != nil {
		t.Fatalf("token signed by the rotated-in key: %v", err)
	}
	if n := f.srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
}

func TestIDTokenTenantDown(t *testing.T) {
	f := newIDFixture(t)
	f.srv.setStatus(503)
	_, err := f.v.verify(context.Background(), f.sign(t, nil), idTokenCheck{})
	if !errors.Is(err, ErrTenantUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("got %v, want ErrTenantUnavailable only", err)
	}
}

func FuzzVerifyIDToken(f *testing.F) {
	fx := newIDFixture(f)
	f.Add(fx.sign(f, nil))
	f.Add(fx.sign(f, func(h, c map[string]any) { h["alg"] = "HS256" }))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(`eyJhbGciOiJSUzI1NiIsImtpZCI6ImtleS1hIn0.eyJpc3MiOjF9.AAAA`)
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := fx.v.verify(context.Background(), raw, idTokenCheck{Nonce: "n", CheckMaxAge: true, MaxAge: time.Minute})
		if err == nil {
			t.Fatalf("accepted %q", raw)
		}
	})
}
