package stepup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTokenCacheHitUntilExpiry(t *testing.T) {
	f := newAPIFixture(t, func(c *VerifierConfig) { c.CacheSize = 8; c.Leeway = -1 })
	ctx := context.Background()
	raw := f.sign(t, func(h, c map[string]any) { c["exp"] = f.clock.Now().Unix() + 60 })
	first, err := f.v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatal("second verification of the same token was not served from the cache")
	}
	f.clock.Advance(59 * time.Second)
	if tok, err := f.v.Verify(ctx, raw); err != nil || tok != first {
		t.Fatalf("before exp: %v, cached %v", err, tok == first)
	}
	f.clock.Advance(time.Second)
	if _, err := f.v.Verify(ctx, raw); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("at exp: got %v, want ErrTokenExpired", err)
	}
	if n := f.v.cache.len(); n != 0 {
		t.Fatalf("expired entry kept: %d entries", n)
	}
}

func TestTokenCacheDroppedWhenKeyLeavesJWKS(t *testing.T) {
	f := newAPIFixture(t, func(c *VerifierConfig) { c.CacheSize = 8 })
	ctx := context.Background()
	raw := f.sign(t, nil)
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	// The tenant revokes the key; a token with a new kid makes us refetch.
	f.srv.setKeys(f.keys[1])
	f.clock.Advance(time.Minute)
	next := signJWT(t, map[string]any{"alg": "RS256", "kid": f.keys[1].kid}, f.claims(), f.keys[1].priv, nil)
	if _, err := f.v.Verify(ctx, next); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, raw); !errors.Is(err, ErrTokenUnknownKey) {
		t.Fatalf("token of a revoked key: got %v, want ErrTokenUnknownKey", err)
	}
	if n := f.v.cache.len(); n != 1 {
		t.Fatalf("cache holds %d entries, want only the new token's", n)
	}
	// A refresh that keeps the key keeps the entry.
	f.srv.setKeys(f.keys[1], f.keys[0])
	f.clock.Advance(time.Minute)
	if _, err := f.v.Verify(ctx, raw); err != nil { // refetch: keys[0] is back
		t.Fatal(err)
	}
	if tok1, err := f.v.Verify(ctx, next); err != nil || f.v.cache.len() != 2 {
		t.Fatalf("entry of a key still published: %v, %v, %d entries", tok1, err, f.v.cache.len())
	}
}

func TestTokenCacheBounded(t *testing.T) {
	f := newAPIFixture(t, func(c *VerifierConfig) { c.CacheSize = 3 })
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		raw := f.sign(t, func(h, c map[string]any) { c["jti"] = fmt.Sprint(i) })
		if _, err := f.v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if n := f.v.cache.len(); n > 3 {
			t.Fatalf("cache holds %d entries, limit 3", n)
		}
	}
	// Invalid tokens are never cached.
	f2 := newAPIFixture(t, func(c *VerifierConfig) { c.CacheSize = 3 })
	bad := f2.sign(t, func(h, c map[string]any) { c["aud"] = "other" })
	for i := 0; i < 2; i++ {
		if _, err := f2.v.Verify(ctx, bad); !errors.Is(err, ErrTokenAudience) {
			t.Fatalf("got %v", err)
		}
	}
	if f2.v.cache.len() != 0 {
		t.Fatal("an invalid token was cached")
	}
}

func TestTokenCacheAllocations(t *testing.T) {
	f := newAPIFixture(t, func(c *VerifierConfig) { c.CacheSize = 8 })
	ctx := context.Background()
	raw := f.sign(t, nil)
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := f.v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("cached verification allocates %.0f times, want <= 2", allocs)
	}
}

// A token over maxTokenBytes is refused before the cache hashes it, with
// or without the cache.
func TestVerifyRefusesHugeTokens(t *testing.T) {
	for _, size := range []int{0, 8} {
		f := newAPIFixture(t, func(c *VerifierConfig) { c.CacheSize = size })
		huge := "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("A", maxTokenBytes) + ".sig"
		allocs := testing.AllocsPerRun(5, func() {
			if _, err := f.v.Verify(context.Background(), huge); !errors.Is(err, ErrTokenMalformed) {
				t.Fatalf("cache %d: a token of %d bytes: %v, want ErrTokenMalformed", size, len(huge), err)
			}
		})
		if allocs > 1 {
			t.Errorf("cache %d: refusing a huge token made %v allocations (a copy of it?), want at most 1", size, allocs)
		}
	}
}
