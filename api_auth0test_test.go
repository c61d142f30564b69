package stepup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
)

const jwksPath = "/.well-known/jwks.json"

// TestVerifierOnAuth0test runs the access-token verifier against the dev
// tenant: verification, an unknown-kid flood counted on the tenant's JWKS
// endpoint, key rotation, and a tenant whose JWKS is down.
func TestVerifierOnAuth0test(t *testing.T) {
	tenant := auth0test.NewTenant(t, auth0test.Config{})
	clock := newTestClock()
	ctx := context.Background()
	v, err := NewVerifier(ctx, VerifierConfig{Issuer: tenant.Issuer(), Audience: testAudience, HTTPClient: tenant.Client(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if n := tenant.Calls(jwksPath); n != 0 {
		t.Fatalf("NewVerifier fetched the JWKS %d times", n)
	}
	claims := func() map[string]any {
		now := clock.Now().Unix()
		return map[string]any{"iss": tenant.Issuer(), "sub": "auth0|bob", "aud": testAudience, "iat": now, "exp": now + 3600, "scope": "read:salaries"}
	}
	if _, err := v.Verify(ctx, tenant.Sign(map[string]any{"typ": "at+jwt"}, claims())); err != nil {
		t.Fatal(err)
	}

	// A flood of tokens with random kids: one JWKS fetch.
	clock.Advance(time.Hour)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(ctx, tenant.Sign(map[string]any{"kid": fmt.Sprintf("random-%d", i)}, claims()))
			if !errors.Is(err, ErrTokenUnknownKey) {
				t.Errorf("got %v, want ErrTokenUnknownKey", err)
			}
		}()
	}
	wg.Wait()
	if n := tenant.Calls(jwksPath); n != 2 {
		t.Fatalf("JWKS fetched %d times after a flood of 100 random kids, want 2", n)
	}

	// Rotation to a key published after our last fetch: one refetch, then success.
	tenant.RotateKeys()
	tenant.RotateKeys()
	clock.Advance(time.Minute)
	if _, err := v.Verify(ctx, tenant.Sign(nil, claims())); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := tenant.Calls(jwksPath); n != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", n)
	}

	// A tenant whose JWKS is down: the API answers 503, not 401.
	tenant.InjectFault(jwksPath, auth0test.Fault{Status: http.StatusServiceUnavailable})
	fresh, err := NewVerifier(ctx, VerifierConfig{Issuer: tenant.Issuer(), Audience: testAudience, HTTPClient: tenant.Client(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	r := httptest.NewRequest("GET", "/api", nil)
	r.Header.Set("Authorization", "Bearer "+tenant.Sign(nil, claims()))
	w := httptest.NewRecorder()
	fresh.Require(Login)(http.NotFoundHandler()).ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("JWKS down: status %d, want 503", w.Code)
	}
}
