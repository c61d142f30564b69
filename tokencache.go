package stepup

import (
	"sync"
	"sync/atomic"
	"time"
)

// tokenCache remembers verified access tokens, keyed by the SHA-256 of the
// token, so that an API that sees the same token many times skips the RSA
// work. An entry is served until the token's exp (plus leeway) and only while
// the key that verified it is still in the JWKS. It holds no token text.
type tokenCache struct {
	max int

	mu sync.RWMutex // guards m
	m  map[[32]byte]*tokenCacheEntry
}

type tokenCacheEntry struct {
	tok     *AccessToken
	until   time.Time // exp + leeway
	kid     string
	keyFP   [32]byte
	seenGen atomic.Uint64 // the last key-set generation the key was found in
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[[32]byte]*tokenCacheEntry, min(max, 1024))}
}

// get returns the token cached under sum, if it is still valid at now and
// its key is still in snap.
func (c *tokenCache) get(sum *[32]byte, now time.Time, snap *keySnapshot) (*AccessToken, bool) {
	c.mu.RLock()
	e := c.m[*sum]
	c.mu.RUnlock()
	if e == nil {
		return nil, false
	}
	if !now.Before(e.until) || snap == nil {
		c.drop(sum, e)
		return nil, false
	}
	if e.seenGen.Load() != snap.gen {
		if !snap.has(e.kid, &e.keyFP) {
			c.drop(sum, e)
			return nil, false
		}
		e.seenGen.Store(snap.gen)
	}
	return e.tok, true
}

func (c *tokenCache) drop(sum *[32]byte, e *tokenCacheEntry) {
	c.mu.Lock()
	if c.m[*sum] == e {
		delete(c.m, *sum)
	}
	c.mu.Unlock()
}

// put caches tok under sum until until; now is the current time. When the cache is full, it first
// drops expired entries among a bounded sample, then an arbitrary one.
func (c *tokenCache) put(sum *[32]byte, tok *AccessToken, until, now time.Time, key *verificationKey) {
	e := &tokenCacheEntry{tok: tok, until: until, kid: key.kid, keyFP: key.fingerprint}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[*sum]; !ok && len(c.m) >= c.max {
		makeRoom(c.m, func(old *tokenCacheEntry) bool { return !now.Before(old.until) })
	}
	c.m[*sum] = e
}

// makeRoom drops from a full cache the entries that ended among a bounded
// sample of 16 (map order), or, when none had, an arbitrary one.
func makeRoom[K comparable, V any](m map[K]V, ended func(V) bool) {
	evicted := false
	n := 0
	for k, old := range m {
		if ended(old) {
			delete(m, k)
			evicted = true
		}
		if n++; n >= 16 {
			break
		}
	}
	if !evicted {
		for k := range m {
			delete(m, k)
			break
		}
	}
}

// len returns the number of entries (tests).
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
