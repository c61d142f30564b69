package stepup

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stepupauth/stepup/auth0test"
)

// A redemption the tenant did not answer, or answered with 429/5xx, may have
// left the code valid: the callback's single-use marker is released, so a
// reload of the same callback logs the user in (security review finding).
func TestCallbackRetryAfterRetryableRedemptionFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault auth0test.Fault
	}{
		{"503", auth0test.Fault{Status: http.StatusServiceUnavailable, Times: 1}},
		{"429", auth0test.Fault{Status: http.StatusTooManyRequests, Body: `{"error":"too_many_requests","error_description":"Global limit has been reached"}`, Times: 1}},
		{"dropped", auth0test.Fault{Drop: true, Times: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			v := h.alice()
			cb := v.authorize(v.get(pathPrivate))
			h.tn.InjectFault("/oauth/token", tc.fault)
			if w := v.callback(cb); w.Code != http.StatusServiceUnavailable || v.cookies[h.c.sessionCookie] != nil {
				t.Fatalf("first callback: %d %q, want 503 and no session", w.Code, w.Body.String())
			}
			w := v.callback(cb) // the user reloads the same callback
			if w.Code != http.StatusFound || w.Header().Get("Location") != pathPrivate {
				t.Fatalf("reloaded callback: %d %q, want a redirect to %s", w.Code, w.Body.String(), pathPrivate)
			}
			if s := v.session(); s.Subject != "auth0|alice" {
				t.Errorf("session subject %q", s.Subject)
			}
			if n := h.tn.GrantCalls(auth0test.GrantAuthorizationCode); n != 2 {
				t.Errorf("redemptions sent to the tenant: %d, want 2 (the failed one and the retry)", n)
			}
			// The login cleared the transaction cookie: a third load is
			// refused without reaching the tenant.
			before := h.tn.Calls("/oauth/token")
			if w := v.callback(cb); w.Code != http.StatusBadRequest {
				t.Errorf("third load: %d, want 400", w.Code)
			}
			if got := h.tn.Calls("/oauth/token"); got != before {
				t.Errorf("a replay reached the tenant (%d calls, want %d)", got, before)
			}
		})
	}
}

// When the tenant answered the redemption with invalid_grant (or the code
// was redeemed), the marker stays: the same callback is "already used" and
// never reaches the tenant again.
func TestCallbackNoRetryAfterTenantRefusal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault auth0test.Fault
	}{
		{"invalid_grant", auth0test.Fault{Status: http.StatusForbidden, Body: `{"error":"invalid_grant","error_description":"Invalid authorization code"}`, Times: 1}},
		{"200 unreadable", auth0test.Fault{Status: http.StatusOK, Body: `not json`, Times: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			ar, cb := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
			h.tn.InjectFault("/oauth/token", tc.fault)
			if _, err := h.c.Exchange(context.Background(), cb, ar.Transaction); err == nil {
				t.Fatal("first exchange succeeded despite the fault")
			}
			before := h.tn.Calls("/oauth/token")
			_, err := h.c.Exchange(context.Background(), cb, ar.Transaction)
			if !errors.Is(err, ErrTransactionNotFound) {
				t.Errorf("second exchange: %v, want ErrTransactionNotFound (already used)", err)
			}
			if got := h.tn.Calls("/oauth/token"); got != before {
				t.Errorf("the second exchange reached the tenant (%d calls, want %d)", got, before)
			}
		})
	}
}

func TestRedemptionRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&TenantError{Endpoint: "/oauth/token", Err: context.DeadlineExceeded}, true},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 500, Code: "server_error"}, true},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 503}, true},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 429, Code: "too_many_requests"}, true},
		{errors.New("stepup: signing the client assertion"), true},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 403, Code: "invalid_grant"}, false},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 400, Code: "invalid_request"}, false},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 401, Code: "invalid_client"}, false},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 200, Err: errors.New("bad json")}, false},
	} {
		if got := redemptionRetryable(tc.err); got != tc.want {
			t.Errorf("redemptionRetryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
