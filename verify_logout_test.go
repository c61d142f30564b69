package stepup

import (
	"context"
	"errors"
	"testing"
	"time"
)

// logoutClaims are the claims of a logout token as Auth0 sends one.
func (f *idFixture) logoutClaims() map[string]any {
	now := f.clock.Now().Unix()
	return map[string]any{
		"iss":    testIssuer,
		"sub":    "auth0|alice",
		"aud":    testClientID,
		"iat":    now,
		"exp":    now + 120,
		"jti":    "jti-1",
		"sid":    "sid-1",
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
	}
}

func (f *idFixture) signLogout(t testing.TB, mutate func(h, c map[string]any)) string {
	t.Helper()
	h := map[string]any{"alg": "RS256", "typ": "logout+jwt", "kid": f.keys[0].kid}
	c := f.logoutClaims()
	if mutate != nil {
		mutate(h, c)
	}
	return signJWT(t, h, c, f.keys[0].priv, nil)
}

func TestLogoutTokenValid(t *testing.T) {
	f := newIDFixture(t)
	ctx := context.Background()
	lt, err := f.v.verifyLogout(ctx, f.signLogout(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if lt.Issuer != testIssuer || lt.Subject != "auth0|alice" || lt.SessionID != "sid-1" || lt.JTI != "jti-1" ||
		!lt.IssuedAt.Equal(now.Truncate(time.Second)) || !lt.Expiry.Equal(now.Truncate(time.Second).Add(120*time.Second)) {
		t.Errorf("got %+v", lt)
	}
	for name, mutate := range map[string]func(h, c map[string]any){
		"typ JWT":       func(h, c map[string]any) { h["typ"] = "JWT" },
		"typ absent":    func(h, c map[string]any) { delete(h, "typ") },
		"media type":    func(h, c map[string]any) { h["typ"] = "application/logout+jwt" },
		"sid only":      func(h, c map[string]any) { delete(c, "sub") },
		"sub only":      func(h, c map[string]any) { delete(c, "sid") },
		"no exp, fresh": func(h, c map[string]any) { delete(c, "exp") },
		"aud list":      func(h, c map[string]any) { c["aud"] = []string{"other", testClientID} },
		"other events":  func(h, c map[string]any) { c["events"].(map[string]any)["urn:x"] = 1 },
		"event with data": func(h, c map[string]any) {
			c["events"] = map[string]any{backchannelLogoutEvent: map[string]any{"k": "v"}}
		},
	} {
		if _, err := f.v.verifyLogout(ctx, f.signLogout(t, mutate)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A table of forged logout tokens, each refused with its typed error.
func TestLogoutTokenForged(t *testing.T) {
	f := newIDFixture(t)
	ctx := context.Background()
	now := f.clock.Now()
	tests := []struct {
		name string
		raw  func() string
		want error
	}{
		{"signed by another key", func() string {
			h := map[string]any{"alg": "RS256", "typ": "logout+jwt", "kid": f.keys[0].kid}
			return signJWT(t, h, f.logoutClaims(), f.keys[1].priv, nil)
		}, ErrTokenSignature},
		{"alg none", func() string {
			return f.signLogout(t, func(h, c map[string]any) { h["alg"] = "none" })
		}, ErrTokenAlgorithm},
		{"HS256 without a configured secret", func() string {
			h := map[string]any{"alg": "HS256", "typ": "logout+jwt"}
			return signJWT(t, h, f.logoutClaims(), nil, []byte(testSecret))
		}, ErrTokenAlgorithm},
		{"wrong aud", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["aud"] = "another-client" })
		}, ErrTokenAudience},
		{"wrong azp", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["azp"] = "another-client" })
		}, ErrTokenAuthorizedParty},
		{"wrong iss", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["iss"] = "https://evil.example/" })
		}, ErrTokenIssuer},
		{"iss with another case", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["iss"] = "https://TENANT.example/" })
		}, ErrTokenIssuer},
		{"no events", func() string {
			return f.signLogout(t, func(h, c map[string]any) { delete(c, "events") })
		}, ErrTokenLogoutEvent},
		{"events not an object", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["events"] = []string{backchannelLogoutEvent} })
		}, ErrTokenLogoutEvent},
		{"events without the member", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} })
		}, ErrTokenLogoutEvent},
		{"member not an object", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["events"] = map[string]any{backchannelLogoutEvent: true} })
		}, ErrTokenLogoutEvent},
		{"member null", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["events"] = map[string]any{backchannelLogoutEvent: nil} })
		}, ErrTokenLogoutEvent},
		{"with nonce", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["nonce"] = "n" })
		}, ErrTokenNonce},
		{"with a null nonce", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["nonce"] = nil })
		}, ErrTokenNonce},
		{"an ID token (nonce, no events)", func() string {
			return f.sign(t, nil)
		}, ErrTokenNonce},
		{"neither sid nor sub", func() string {
			return f.signLogout(t, func(h, c map[string]any) { delete(c, "sid"); delete(c, "sub") })
		}, ErrTokenSubject},
		{"iat in the future", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() })
		}, ErrTokenIssuedAt},
		{"iat missing", func() string {
			return f.signLogout(t, func(h, c map[string]any) { delete(c, "iat") })
		}, ErrTokenIssuedAt},
		{"expired", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })
		}, ErrTokenExpired},
		{"no exp and old", func() string {
			return f.signLogout(t, func(h, c map[string]any) { delete(c, "exp"); c["iat"] = now.Add(-time.Hour).Unix() })
		}, ErrTokenExpired},
		{"missing jti", func() string {
			return f.signLogout(t, func(h, c map[string]any) { delete(c, "jti") })
		}, ErrTokenMalformed},
		{"jti not a string", func() string {
			return f.signLogout(t, func(h, c map[string]any) { c["jti"] = 7 })
		}, ErrTokenMalformed},
		{"bad typ", func() string {
			return f.signLogout(t, func(h, c map[string]any) { h["typ"] = "at+jwt" })
		}, ErrTokenType},
		{"unknown kid", func() string {
			return f.signLogout(t, func(h, c map[string]any) { h["kid"] = "not-a-key" })
		}, ErrTokenUnknownKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.verifyLogout(ctx, tc.raw())
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got %v, want %v (and ErrInvalidToken)", err, tc.want)
			}
		})
	}
}

// The Client's check runs on its key set: a logout token signed by a key the
// tenant rotated in is verified after one refetch, as ID tokens are.
func TestClientVerifyLogoutTokenRotation(t *testing.T) {
	f := newIDFixture(t)
	c := &Client{idv: f.v}
	ctx := context.Background()
	if _, err := c.verifyLogoutToken(ctx, f.signLogout(t, nil)); err != nil {
		t.Fatal(err)
	}
	f.srv.setKeys(f.keys[1], f.keys[0])
	f.clock.Advance(time.Second)
	h := map[string]any{"alg": "RS256", "typ": "logout+jwt", "kid": f.keys[1].kid}
	raw := signJWT(t, h, f.logoutClaims(), f.keys[1].priv, nil)
	if _, err := c.verifyLogoutToken(ctx, raw); err != nil {
		t.Fatalf("logout token signed by the rotated-in key: %v", err)
	}
	if n := f.srv.hits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

func FuzzVerifyLogoutToken(f *testing.F) {
	fx := newIDFixture(f)
	good := fx.signLogout(f, nil)
	f.Add(good)
	f.Add(fx.signLogout(f, func(h, c map[string]any) { c["nonce"] = "n" }))
	f.Add(fx.sign(f, nil))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, raw string) {
		lt, err := fx.v.verifyLogout(context.Background(), raw)
		if err == nil {
			if raw != good {
				t.Fatalf("accepted a token that was not signed here: %q", raw)
			}
			if lt.JTI == "" || (lt.Subject == "" && lt.SessionID == "") {
				t.Fatalf("accepted %+v", lt)
			}
			return
		}
		if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrTenantUnavailable) {
			t.Fatalf("error %v matches neither ErrInvalidToken nor ErrTenantUnavailable", err)
		}
	})
}
