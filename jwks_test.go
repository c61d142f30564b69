package stepup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func newTestKeySet(t testing.TB, srv *jwksServer, clock *testClock) *keySet {
	t.Helper()
	ks := newKeySet(srv.jwksURL(), srv.Client(), clock.Now)
	t.Cleanup(func() { _ = ks.Close() })
	return ks
}

func TestKeySetLazyAndCached(t *testing.T) {
	keys := testKeys(t, 1)
	srv := newJWKSServer(t, keys[0])
	ks := newTestKeySet(t, srv, newTestClock())
	if got := srv.hits.Load(); got != 0 {
		t.Fatalf("construction fetched the JWKS %d times, want 0", got)
	}
	for i := 0; i < 5; i++ {
		got, err := ks.candidates(context.Background(), keys[0].kid, "RS256")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].kid != keys[0].kid {
			t.Fatalf("got %d keys, want the key %q", len(got), keys[0].kid)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", got)
	}
}

func TestKeySetUnknownKIDFloodIsOneFetchPerInterval(t *testing.T) {
	keys := testKeys(t, 2)
	srv := newJWKSServer(t, keys[0])
	clock := newTestClock()
	ks := newTestKeySet(t, srv, clock)
	ctx := context.Background()
	if _, err := ks.current(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour) // the first fetch no longer limits the refetch

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ks.candidates(ctx, fmt.Sprintf("random-%d", i), "RS256")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrTokenUnknownKey) || !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("got %v, want ErrTokenUnknownKey", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times for a flood of 200 random kids, want 2 (first use + one refetch)", got)
	}
	// Within the interval, more random kids cost nothing.
	clock.Advance(defaultMinRefetchInterval / 2)
	for i := 0; i < 50; i++ {
		if _, err := ks.candidates(ctx, fmt.Sprintf("again-%d", i), "RS256"); !errors.Is(err, ErrTokenUnknownKey) {
			t.Fatalf("got %v, want ErrTokenUnknownKey", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want still 2", got)
	}
	// After the interval, one more.
	clock.Advance(defaultMinRefetchInterval)
	for i := 0; i < 50; i++ {
		_, _ = ks.candidates(ctx, fmt.Sprintf("later-%d", i), "RS256")
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", got)
	}
}

func TestKeySetRotation(t *testing.T) {
	keys := testKeys(t, 2)
	srv := newJWKSServer(t, keys[0])
	clock := newTestClock()
	ks := newTestKeySet(t, srv, clock)
	ctx := context.Background()
	if _, err := ks.candidates(ctx, keys[0].kid, "RS256"); err != nil {
		t.Fatal(err)
	}
	srv.setKeys(keys[0], keys[1]) // the tenant publishes the next key
	clock.Advance(defaultMinRefetchInterval)
	got, err := ks.candidates(ctx, keys[1].kid, "RS256")
	if err != nil {
		t.Fatalf("unknown kid after rotation: %v", err)
	}
	if len(got) != 1 || got[0].kid != keys[1].kid {
		t.Fatalf("got %v, want key %q", got, keys[1].kid)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
}

func TestKeySetFailClosed(t *testing.T) {
	keys := testKeys(t, 1)
	srv := newJWKSServer(t, keys[0])
	srv.setStatus(http.StatusServiceUnavailable)
	clock := newTestClock()
	ks := newTestKeySet(t, srv, clock)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		_, err := ks.candidates(ctx, keys[0].kid, "RS256")
		if !errors.Is(err, ErrTenantUnavailable) {
			t.Fatalf("got %v, want ErrTenantUnavailable", err)
		}
		if errors.Is(err, ErrInvalidToken) {
			t.Fatalf("an unreachable JWKS must not read as an invalid token: %v", err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times during the failure backoff, want 1", n)
	}
	srv.setStatus(http.StatusOK)
	clock.Advance(defaultFailureBackoff)
	if _, err := ks.candidates(ctx, keys[0].kid, "RS256"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}

	// With keys known and the tenant down during a rotation, an unknown kid
	// is a 503 (tenant unavailable), never "unknown key"; the tenant is asked
	// again after the failure backoff, not after the refetch interval.
	clock.Advance(time.Hour)
	srv.setStatus(http.StatusInternalServerError)
	before := srv.hits.Load()
	for i := 0; i < 10; i++ {
		_, err := ks.candidates(ctx, fmt.Sprintf("down-%d", i), "RS256")
		if !errors.Is(err, ErrTenantUnavailable) || errors.Is(err, ErrTokenUnknownKey) || ErrorStatus(err) != http.StatusServiceUnavailable {
			t.Fatalf("refetch %d during an outage: got %v (status %d), want ErrTenantUnavailable (503)", i, err, ErrorStatus(err))
		}
		clock.Advance(defaultFailureBackoff / 2)
	}
	// Ten attempts, half a backoff apart: one fetch per backoff.
	if n := srv.hits.Load() - before; n != 5 {
		t.Fatalf("JWKS fetched %d times during an outage of 5 backoffs, want 5", n)
	}
	if _, err := ks.candidates(ctx, keys[0].kid, "RS256"); err != nil {
		t.Fatalf("known kid during the outage: %v", err)
	}
	// The tenant is back with the rotated key: served after the backoff,
	// although an unknown-kid fetch was tried less than an interval ago.
	next := testKeys(t, 2)[1]
	srv.setKeys(keys[0], next)
	srv.setStatus(http.StatusOK)
	clock.Advance(defaultFailureBackoff)
	if _, err := ks.candidates(ctx, next.kid, "RS256"); err != nil {
		t.Fatalf("rotated key after the outage: %v", err)
	}

	// Unusable documents fail closed too.
	for _, doc := range []any{map[string]any{"keys": []any{}}, "not a set", map[string]any{"keys": []any{map[string]any{"kty": "oct", "k": "c2VjcmV0"}}}} {
		srv2 := newJWKSServer(t)
		srv2.setDoc(doc)
		ks2 := newTestKeySet(t, srv2, clock)
		if _, err := ks2.current(ctx); !errors.Is(err, ErrTenantUnavailable) {
			t.Fatalf("JWKS %v: got %v, want ErrTenantUnavailable", doc, err)
		}
	}
}

func TestKeySetWithoutKID(t *testing.T) {
	keys := testKeys(t, 2)
	ctx := context.Background()

	one := newJWKSServer(t)
	noKID := *keys[0]
	noKID.kid = ""
	one.setDoc(map[string]any{"keys": []any{noKID.jwkJSON("")}})
	ks := newTestKeySet(t, one, newTestClock())
	got, err := ks.candidates(ctx, "", "RS256")
	if err != nil || len(got) != 1 {
		t.Fatalf("one key, no kid: got %d keys, %v; want the single key", len(got), err)
	}

	two := newJWKSServer(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	ec := map[string]any{"kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig", "alg": "ES256",
		"x": base64.RawURLEncoding.EncodeToString(pt[1:33]), "y": base64.RawURLEncoding.EncodeToString(pt[33:])}
	two.setDoc(map[string]any{"keys": []any{keys[0].jwkJSON("RS256"), ec, keys[1].jwkJSON("PS256")}})
	ks2 := newTestKeySet(t, two, newTestClock())
	got, err = ks2.candidates(ctx, "", "PS256")
	if err != nil || len(got) != 2 || got[0].kid != keys[0].kid || got[1].kid != keys[1].kid {
		t.Fatalf("several keys, no kid: got %d keys, %v; want the two RSA keys", len(got), err)
	}
	got, err = ks2.candidates(ctx, "", "ES256")
	if err != nil || len(got) != 1 || got[0].kid != "ec" {
		t.Fatalf("several keys, no kid, ES256: got %d keys, %v; want the EC key", len(got), err)
	}
}

func TestKeySetClose(t *testing.T) {
	keys := testKeys(t, 1)
	srv := newJWKSServer(t, keys[0])
	ks := newKeySet(srv.jwksURL(), srv.Client(), nil)
	if _, err := ks.current(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ks.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Known keys stay usable; a refetch is refused.
	if _, err := ks.candidates(context.Background(), keys[0].kid, "RS256"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.candidates(context.Background(), "other", "RS256"); !errors.Is(err, ErrTenantUnavailable) {
		t.Fatalf("refetch after Close: got %v, want ErrTenantUnavailable", err)
	}
	// Close of a never-used set is fine.
	if err := newKeySet("https://example.invalid/jwks", nil, nil).Close(); err != nil {
		t.Fatal(err)
	}
}

// A rotation one second after start-up: the next token with the new kid is
// served, with one refetch (the first fetch does not count against the
// refetch interval).
func TestKeySetRotationRightAfterStartup(t *testing.T) {
	keys := testKeys(t, 2)
	srv := newJWKSServer(t, keys[0])
	clock := newTestClock()
	ks := newTestKeySet(t, srv, clock)
	ctx := context.Background()
	if _, err := ks.candidates(ctx, keys[0].kid, "RS256"); err != nil {
		t.Fatal(err)
	}
	srv.setKeys(keys[1], keys[0])
	clock.Advance(time.Second)
	if _, err := ks.candidates(ctx, keys[1].kid, "RS256"); err != nil {
		t.Fatalf("new kid 1 s after start-up: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (start-up + one refetch)", n)
	}
}

// 2,000 random kids over 31 s cost at most two fetches after start-up; a kid
// still unknown after its refetch is remembered, even across a background
// refresh, while a new unknown kid after that refresh is refetched at once.
func TestKeySetRandomKIDFloodOver31s(t *testing.T) {
	keys := testKeys(t, 1)
	srv := newJWKSServer(t, keys[0])
	clock := newTestClock()
	ks := newTestKeySet(t, srv, clock)
	ctx := context.Background()
	if _, err := ks.current(ctx); err != nil {
		t.Fatal(err)
	}
	start := srv.hits.Load()
	step := 31 * time.Second / 2000
	for i := 0; i < 2000; i++ {
		if _, err := ks.candidates(ctx, fmt.Sprintf("random-%d", i), "RS256"); !errors.Is(err, ErrTokenUnknownKey) {
			t.Fatalf("kid %d: got %v, want ErrTokenUnknownKey", i, err)
		}
		clock.Advance(step)
	}
	if n := srv.hits.Load() - start; n > 2 || n < 1 {
		t.Fatalf("JWKS fetched %d times for 2,000 random kids over 31 s, want 1 or 2", n)
	}

	// After the interval, a kid is refetched and, still unknown, remembered;
	// then a background refresh (jwx's cache) makes a new snapshot.
	clock.Advance(defaultMinRefetchInterval)
	before := srv.hits.Load()
	if _, err := ks.candidates(ctx, "remembered", "RS256"); !errors.Is(err, ErrTokenUnknownKey) {
		t.Fatal(err)
	}
	if n := srv.hits.Load() - before; n != 1 {
		t.Fatalf("a new unknown kid after the interval cost %d fetches, want 1", n)
	}
	if _, err := ks.cache.Refresh(ctx, ks.url); err != nil {
		t.Fatal(err)
	}
	before = srv.hits.Load()
	if _, err := ks.candidates(ctx, "remembered", "RS256"); !errors.Is(err, ErrTokenUnknownKey) {
		t.Fatalf("remembered kid: %v", err)
	}
	if n := srv.hits.Load() - before; n != 0 {
		t.Fatalf("a kid remembered as unknown cost %d fetches, want 0", n)
	}
	if _, err := ks.candidates(ctx, "fresh-after-refresh", "RS256"); !errors.Is(err, ErrTokenUnknownKey) {
		t.Fatalf("fresh kid: %v", err)
	}
	if n := srv.hits.Load() - before; n != 1 {
		t.Fatalf("the first unknown kid after a background refresh cost %d fetches, want 1", n)
	}
}

// A rotation during a flood of random kids: the new key is served within one
// refetch interval of the rotation.
func TestKeySetRotationDuringFlood(t *testing.T) {
	keys := testKeys(t, 2)
	srv := newJWKSServer(t, keys[0])
	clock := newTestClock()
	ks := newTestKeySet(t, srv, clock)
	ctx := context.Background()
	if _, err := ks.current(ctx); err != nil {
		t.Fatal(err)
	}
	step := 10 * time.Millisecond
	for i := 0; i < 500; i++ { // 5 s of flood: the interval is running
		_, _ = ks.candidates(ctx, fmt.Sprintf("flood-%d", i), "RS256")
		clock.Advance(step)
	}
	srv.setKeys(keys[0], keys[1])
	rotated := clock.Now()
	for i := 0; ; i++ {
		_, _ = ks.candidates(ctx, fmt.Sprintf("more-%d", i), "RS256")
		if _, err := ks.candidates(ctx, keys[1].kid, "RS256"); err == nil {
			break
		} else if !errors.Is(err, ErrTokenUnknownKey) {
			t.Fatal(err)
		}
		if clock.Now().Sub(rotated) > defaultMinRefetchInterval {
			t.Fatalf("the new key was not served within %v of the rotation", defaultMinRefetchInterval)
		}
		clock.Advance(step)
	}
	if d := clock.Now().Sub(rotated); d > defaultMinRefetchInterval {
		t.Fatalf("new key served %v after the rotation, want within %v", d, defaultMinRefetchInterval)
	}
}
