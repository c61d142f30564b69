package stepup

import "sync"

// sessionCache remembers, per session handle, the session record a page
// load last opened: the sealed bytes exactly as the store returned them and
// the record they decode to. A later load whose store read returns the same
// bytes gets the same record without opening the seal or decoding it: the
// record is a function of those bytes only (the key ring is fixed for the
// Client's life), so a hit can only give what a miss would have given. The
// cookie's secret is checked against the record's hash on every load, hit
// or miss: the cache holds no secret.
//
// It never replaces the store read: every page load still costs its one
// GetEx, which moves the idle deadline and sees a logout, a step-up or a
// rotation written by any replica (the bytes then differ: a miss). Only
// cookie loads (LoadSession) use it; reads by handle take the full path.
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
// arbitrary one. It holds the sessions' profile fields in process memory,
// as the requests that carried them did; Client.Close empties it.
type sessionCache struct {
	size int

	mu sync.RWMutex // guards m
	m  map[string]*sessionCacheEntry
}

type sessionCacheEntry struct {
	key    string // the record's store key
	sealed []byte // the store's bytes, before opening
	rec    *sessionRecord
	tmpl   Session // fillSession of rec (no secret, no IdleExpiresAt)
}

// DefaultSessionCacheSize is the default of Config.SessionCacheSize.
const DefaultSessionCacheSize = 4096

// maxCachedSessionBytes bounds the sealed records the cache keeps (a
// typical one is 370 bytes; the largest a session can be, about 13 KB).
const maxCachedSessionBytes = 2048

func newSessionCache(size int) *sessionCache {
	return &sessionCache{size: size, m: make(map[string]*sessionCacheEntry, min(size, 1024))}
}

// lookup returns the entry of handle, nil if none. It may answer a load
// only if the store returned exactly its sealed bytes.
func (c *sessionCache) lookup(handle string) *sessionCacheEntry {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.m[handle]
	c.mu.RUnlock()
	return e
}

// put remembers e for handle; nowMS is the current time (unix ms), to find
// entries past their end when the cache is full.
func (c *sessionCache) put(handle string, e *sessionCacheEntry, nowMS int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[handle]; !ok && len(c.m) >= c.size {
		makeRoom(c.m, func(old *sessionCacheEntry) bool { return nowMS >= old.rec.Expires })
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
