package stepup

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// An access token whose auth_time lies in the future satisfied any MaxAge
// until it expired (issue 15); ID tokens refuse it, and so do access tokens
// now, with the standard and the namespaced claim alike.
func TestAccessTokenAuthTimeInFuture(t *testing.T) {
	f := newAPIFixture(t, nil)
	ctx := context.Background()
	future := f.clock.Now().Add(24 * time.Hour).Unix()
	for _, name := range []string{"auth_time", testNamespace + "auth_time"} {
		raw := f.sign(t, func(h, c map[string]any) {
			c[name] = future
			c[testNamespace+"acr"] = ACRMultiFactor
		})
		if _, err := f.v.Verify(ctx, raw); !errors.Is(err, ErrTokenAuthTime) || !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s in the future: got %v, want ErrTokenAuthTime", name, err)
		}
		// Through the middleware: a 401 invalid_token, never the protected handler.
		h := f.v.Require(MFA.WithMaxAge(5 * time.Minute))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("%s in the future reached the handler", name)
		}))
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s in the future: %d, want 401", name, w.Code)
		}
	}
	// Within the leeway it is clock skew, and accepted.
	raw := f.sign(t, func(h, c map[string]any) { c["auth_time"] = f.clock.Now().Add(30 * time.Second).Unix() })
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Errorf("auth_time 30 s ahead (within the leeway): %v", err)
	}
}

// Verify decodes only the registered claims; Claims builds the whole map on
// demand, a fresh one per call.
func TestAccessTokenClaimsOnDemand(t *testing.T) {
	f := newAPIFixture(t, nil)
	raw := f.sign(t, func(h, c map[string]any) {
		c["https://app.example/roles"] = []string{"admin"}
		c["https://app.example/profile"] = map[string]any{"dept": "R&D", "level": 3}
	})
	tok, err := f.v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	m := tok.Claims()
	if m["sub"] != "auth0|alice" || m["gty"] != "authorization_code" {
		t.Errorf("Claims() = %v", m)
	}
	if p, _ := m["https://app.example/profile"].(map[string]any); p["dept"] != "R&D" || p["level"] != float64(3) {
		t.Errorf("nested claim: %v", m["https://app.example/profile"])
	}
	m["sub"] = "changed"
	if tok.Claims()["sub"] != "auth0|alice" {
		t.Error("Claims() returned a shared map")
	}
	if len(tok.Scopes) != 4 || tok.Scopes[3] != "read:salaries" || len(tok.Audience) != 2 || len(tok.Permissions) != 1 {
		t.Errorf("fields: scopes %q, aud %q, permissions %q", tok.Scopes, tok.Audience, tok.Permissions)
	}
	// Appending to one list never overwrites another (they share one arena).
	_ = append(tok.Audience, "x")
	if tok.Scopes[0] != "openid" {
		t.Errorf("appending to Audience changed Scopes: %q", tok.Scopes)
	}
}

// A repeated member name is refused, for registered and custom claims alike,
// and however many members precede it (the fast path keeps the first names
// on its stack, then a map).
func TestAccessTokenRepeatedClaim(t *testing.T) {
	f := newAPIFixture(t, nil)
	head := []byte(`{"alg":"RS256","typ":"at+jwt","kid":"` + f.keys[0].kid + `"}`)
	now := f.clock.Now().Unix()
	base := `"iss":"` + testIssuer + `","sub":"auth0|alice","aud":"` + testAudience + `","exp":` + itoa(now+3600)
	many := ""
	for i := 0; i < 100; i++ {
		many += `,"c` + itoa(int64(i)) + `":1`
	}
	for name, payload := range map[string]string{
		"iss twice":            `{` + base + `,"iss":"https://evil.example/"}`,
		"custom twice":         `{` + base + `,"x":1,"x":2}`,
		"escaped twin":         `{` + base + `,"x":1,"\u0078":2}`,
		"after 100 members":    `{` + base + many + `,"c7":2}`,
		"sub twice, 100 later": `{` + base + many + `,"sub":"auth0|mallory"}`,
	} {
		raw := signRaw(t, head, []byte(payload), "RS256", f.keys[0].priv, nil)
		if _, err := f.v.Verify(context.Background(), raw); !errors.Is(err, ErrTokenMalformed) {
			t.Errorf("%s: got %v, want ErrTokenMalformed", name, err)
		}
	}
	raw := signRaw(t, head, []byte(`{`+base+many+`}`), "RS256", f.keys[0].priv, nil)
	if _, err := f.v.Verify(context.Background(), raw); err != nil {
		t.Errorf("100 distinct members: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
