package stepup

import (
	"bytes"
	"crypto/subtle"
	"sync"
)

// sessionCache remembers, per session handle, the session record a page
// load last opened: the sealed bytes exactly as the store returned them, the
// record they decode to, and the cookie secret that was checked against the
// record's secret hash. A later load whose store read returns the same bytes
// and whose cookie carries the same secret and end gets the same answer
// without opening the seal, hashing the secret or decoding the record: the
// answer is a function of those inputs only (the key ring is fixed for the
// Client's life), so a hit can only give what a miss would have given.
//
// It never replaces the store read: every page load still costs its one
// GetEx, which moves the idle deadline and sees a logout, a step-up or a
// rotation written by any replica (the bytes then differ: a miss). An entry
// whose secret does not match is left alone and the load takes the full
// path, so a wrong cookie never evicts the right one nor learns anything
// from the comparison (constant time, and both are fixed-length tokens).
//
// The records are immutable once cached: a Session made from an entry gets
// its own copy of the evidence lists (the only mutable parts a caller sees);
// Session.rec points at the cached record, which the package only reads
// (StartSession copies it, with its evidence lists, before it changes it).
//
// It is bounded by Config.SessionCacheSize entries, each at most about 5 KB
// (records sealed larger than maxCachedSessionBytes are not cached; a
// typical entry is about 1 KB). When full, an insert first drops the
// entries past their absolute end among a bounded sample, then an
// arbitrary one. It holds cookie secrets and the session's profile fields
// in process memory, as the requests that carried them did; Client.Close
// empties it.
type sessionCache struct {
	max int

	mu sync.RWMutex // guards m
	m  map[string]*sessionCacheEntry
}

type sessionCacheEntry struct {
	key    string // the record's store key
	sealed []byte // the store's bytes, before opening
	secret string // the cookie secret that matched rec.SecretHash
	rec    *sessionRecord
	tmpl   Session // fillSession of rec (no secret, no IdleExpiresAt)
}

// DefaultSessionCacheSize is the default of Config.SessionCacheSize.
const DefaultSessionCacheSize = 4096

// maxCachedSessionBytes bounds the sealed records the cache keeps (a
// typical one is 370 bytes; the largest a session can be, about 13 KB).
const maxCachedSessionBytes = 2048

func newSessionCache(max int) *sessionCache {
	return &sessionCache{max: max, m: make(map[string]*sessionCacheEntry, min(max, 1024))}
}

// lookup returns the entry of handle, nil if none. It may answer a load
// only if it matches what the store returns (matches).
func (c *sessionCache) lookup(handle string) *sessionCacheEntry {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.m[handle]
	c.mu.RUnlock()
	return e
}

// matches reports whether e was made from exactly sealed and, for a
// cookie's load (secret not ""), with the same secret.
func (e *sessionCacheEntry) matches(sealed []byte, secret string) bool {
	return bytes.Equal(e.sealed, sealed) && e.secretMatches(secret)
}

// secretMatches reports whether e was made for a cookie with secret (any
// secret for a read by handle, secret "").
func (e *sessionCacheEntry) secretMatches(secret string) bool {
	if secret == "" {
		return true
	}
	if len(secret) != len(e.secret) {
		return false
	}
	// Copies on the stack: a conversion of a 43-byte string allocates.
	var a, b [randomTokenLen]byte
	return subtle.ConstantTimeCompare(a[:copy(a[:], e.secret)], b[:copy(b[:], secret)]) == 1
}

// put remembers e for handle; nowMS is the current time (unix ms), to find
// entries past their end when the cache is full.
func (c *sessionCache) put(handle string, e *sessionCacheEntry, nowMS int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[handle]; !ok && len(c.m) >= c.max {
		evicted := false
		n := 0
		for k, old := range c.m {
			if nowMS >= old.rec.Expires {
				delete(c.m, k)
				evicted = true
			}
			if n++; n >= 16 {
				break
			}
		}
		if !evicted {
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
	}
	c.m[handle] = e
}

// drop forgets handle (its record changed or ended).
func (c *sessionCache) drop(handle string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, handle)
	c.mu.Unlock()
}

// clear drops every entry.
func (c *sessionCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// len returns the number of entries (tests).
func (c *sessionCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// sessionAMRInline is how many evidence methods (amr values of the login
// and of the step-up together) a Session made from the cache carries in the
// same allocation as itself.
const sessionAMRInline = 4

// cachedSession is a Session and room for its evidence lists, in one
// allocation.
type cachedSession struct {
	s   Session
	amr [sessionAMRInline]string
}

// session returns a Session made from e: the template with its own copy of
// the evidence lists (a caller that changes them changes only its copy).
func (e *sessionCacheEntry) session() *Session {
	cs := &cachedSession{s: e.tmpl}
	s := &cs.s
	a, b := len(s.Authentication.AMR), len(s.StepUp.AMR)
	if a+b > 0 {
		amr := cs.amr[:]
		if a+b > len(amr) {
			amr = make([]string, a+b)
		}
		copy(amr, s.Authentication.AMR)
		copy(amr[a:], s.StepUp.AMR)
		if a > 0 {
			s.Authentication.AMR = amr[:a:a]
		}
		if b > 0 {
			s.StepUp.AMR = amr[a : a+b : a+b]
		}
	}
	return s
}
