package auth0test

import (
	"net/http"
	"strconv"
	"time"
)

// rateWindow counts the requests of one rate-limited endpoint in a fixed window.
type rateWindow struct {
	start time.Time
	count int
}

// rateLimitLocked counts a request to path against Config.RateLimits and sets
// Auth0's X-RateLimit-* headers on h. It reports whether the request is within
// the limit. Called with t.mu held.
func (t *Tenant) rateLimitLocked(path string, h http.Header, now time.Time) bool {
	lim, ok := t.cfg.RateLimits[path]
	if !ok || lim.Limit <= 0 {
		return true
	}
	window := lim.Window
	if window <= 0 {
		window = time.Second
	}
	rw := t.limits[path]
	if rw == nil || !now.Before(rw.start.Add(window)) {
		rw = &rateWindow{start: now}
		t.limits[path] = rw
	}
	allowed := rw.count < lim.Limit
	if allowed {
		rw.count++
	}
	reset := rw.start.Add(window)
	h.Set("X-RateLimit-Limit", strconv.Itoa(lim.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(lim.Limit-rw.count))
	// Auth0 sends the reset as a UNIX timestamp in seconds.
	h.Set("X-RateLimit-Reset", strconv.FormatInt((reset.UnixNano()+int64(time.Second)-1)/int64(time.Second), 10))
	if !allowed {
		secs := int(reset.Sub(now).Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	return allowed
}
