package auth0test

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Fault is an injected failure of one endpoint.
type Fault struct {
	// Status, when not 0, is answered instead of the endpoint's own response, with
	// Body (default: an Auth0 error JSON whose error matches the status, e.g.
	// too_many_requests for 429, server_error for 5xx).
	Status int
	Body   string
	// RetryAfter sets the Retry-After header of a 429.
	RetryAfter time.Duration
	// Header is added to the fault's answer (with Status), e.g. Auth0's
	// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset on a 429
	// (RateLimitHeaders builds them).
	Header http.Header
	// Delay is waited before answering (or before the endpoint runs when Status is 0
	// and Drop is false). It ends early when the client gives up or the tenant closes.
	Delay time.Duration
	// Drop closes the connection without an answer.
	Drop bool
	// Times is how many requests the fault applies to; 0 means until ClearFaults.
	Times int
}

// InjectFault makes requests to endpoint (a path such as "/oauth/token") fail as f
// describes. It replaces any fault already set on that endpoint.
func (t *Tenant) InjectFault(endpoint string, f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults[endpoint] = &f
}

// ClearFaults removes every injected fault.
func (t *Tenant) ClearFaults() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.faults)
}

// ForgeIDTokens makes /oauth/token pass every ID token it issues through f before
// signing it; f may change the header and the claims (for example to test that a
// client rejects a wrong nonce, audience or issuer). A nil f stops forging.
func (t *Tenant) ForgeIDTokens(f func(header, claims map[string]any)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forge = f
}

// Calls returns how many requests reached endpoint (a path such as "/oauth/token"),
// faulted ones included.
func (t *Tenant) Calls(endpoint string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls[endpoint]
}

// GrantCalls returns how many /oauth/token requests carried that grant_type
// (e.g. "refresh_token", GrantCIBA), whatever their outcome.
func (t *Tenant) GrantCalls(grantType string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.grantCalls[grantType]
}

// ResetCounters sets every call counter to zero (the refresh log is kept).
func (t *Tenant) ResetCounters() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.calls)
	clear(t.grantCalls)
}

// Endpoints lists the paths that received at least one request, sorted.
func (t *Tenant) Endpoints() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(maps.Keys(t.calls))
}

// RateLimitHeaders returns Auth0's rate-limit headers for a Fault: limit,
// remaining, and reset (a UNIX time in seconds).
func RateLimitHeaders(limit, remaining int, reset time.Time) http.Header {
	return http.Header{
		"X-Ratelimit-Limit":     {strconv.Itoa(limit)},
		"X-Ratelimit-Remaining": {strconv.Itoa(remaining)},
		"X-Ratelimit-Reset":     {strconv.FormatInt(reset.Unix(), 10)},
	}
}
