package auth0test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// TestMemoryBounded: every kind of record a long-running tenant accumulates
// (abandoned logins, unredeemed codes, SSO sessions, refresh families, CIBA
// and PAR requests, mfa_tokens, opaque access tokens, logout confirmations) is
// dropped once past its lifetime, by the sweep that every few hundred requests
// run, with the clock moved instead of waiting.
func TestMemoryBounded(t *testing.T) {
	clk := newClock()
	tn := NewTenant(t, Config{Now: clk.Now, RefreshTokenRotation: true})
	const n = 20
	for i := 0; i < n; i++ {
		b := tn.NewBrowser()
		// A finished login: a session, a family, an opaque token.
		exchange(t, tn, login(t, b, authorizeURL(tn, nil), alice))
		// An unredeemed code.
		login(t, b, authorizeURL(tn, nil), alice)
		// An abandoned login (the login page is never submitted).
		resp, err := tn.NewBrowser().Client().Get(authorizeURL(tn, map[string]string{"prompt": "login"}))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// A pending logout confirmation.
		b.Client().Get(tn.URL() + "/oidc/logout")
		post(t, tn, "/bc-authorize", cibaForm(tn))
		post(t, tn, "/oauth/par", with(codeForm(""), "response_type", "code", "grant_type", "", "code", "", "code_verifier", ""))
		if _, err := tn.NewMFAToken(DefaultApplication().ClientID, AliceEmail, "openid", ""); err != nil {
			t.Fatal(err)
		}
	}
	before := tn.Retained()
	for name, got := range map[string]int{"transactions": before.Transactions, "codes": before.Codes,
		"sessions": before.Sessions, "families": before.RefreshFamilies, "CIBA": before.CIBA, "PAR": before.PAR,
		"mfa tokens": before.MFATokens, "opaque": before.OpaqueTokens, "logout confirmations": before.LogoutConfirmations} {
		if got < n {
			t.Errorf("before: %d %s, want at least %d (the test makes them)", got, name, n)
		}
	}
	// Short-lived records go first: 21 minutes later only sessions, families
	// and opaque tokens (24 h) are left.
	clk.Advance(21 * time.Minute) // codes are kept 10 min past their 10 min, to detect replays
	tn.Sweep()
	mid := tn.Retained()
	if mid.Transactions != 0 || mid.Codes != 0 || mid.PAR != 0 || mid.MFATokens != 0 || mid.LogoutConfirmations != 0 {
		t.Errorf("after 21 min: %+v", mid)
	}
	if mid.Sessions != before.Sessions || mid.RefreshFamilies != before.RefreshFamilies {
		t.Errorf("after 21 min live sessions/families were dropped: %+v", mid)
	}
	// Past every lifetime (refresh 30 days, session 7 days, CIBA kept 1 h),
	// through the request-driven sweep alone.
	clk.Advance(31 * 24 * time.Hour)
	for i := 0; i < sweepEvery; i++ {
		resp, err := tn.Client().Get(tn.URL() + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	after := tn.Retained()
	if after != (Retained{RefreshLog: after.RefreshLog}) {
		t.Errorf("after every lifetime: %+v, want nothing retained", after)
	}
}

// The logs are bounded: the refresh log keeps its newest maxRefreshLog
// entries, the delivery log its newest maxDeliveries.
func TestLogsBounded(t *testing.T) {
	tn := NewTenant(t, Config{})
	tn.mu.Lock()
	for i := 0; i < maxRefreshLog+100; i++ {
		tn.logRefreshLocked("f", "used", time.Unix(int64(i), 0))
	}
	tn.sweepLocked(time.Now())
	n, first := len(tn.refreshLog), tn.refreshLog[0].At
	tn.mu.Unlock()
	if n != maxRefreshLog || first != time.Unix(100, 0) {
		t.Errorf("refresh log: %d entries from %v, want %d from the 101st", n, first, maxRefreshLog)
	}

	rp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer rp.Close()
	app := DefaultApplication()
	app.BackChannelLogoutURLs = []string{rp.URL}
	app.BackChannelLogoutInitiators = LogoutInitiators{Mode: "all"}
	tn = NewTenant(t, Config{Applications: []Application{app}, BackChannelLogoutClient: rp.Client()})
	s := session{sid: "s", userID: "auth0|alice", clients: []string{app.ClientID}}
	for i := 0; i < maxDeliveries+10; i++ {
		tn.deliverLogouts(nil, []session{s}, InitiatorSessionRevoked)
	}
	if got := len(tn.LogoutDeliveries()); got != maxDeliveries {
		t.Errorf("delivery log: %d entries, want %d", got, maxDeliveries)
	}
}

// Random paths do not grow the call counters without bound.
func TestCallCountersBounded(t *testing.T) {
	tn := NewTenant(t, Config{})
	for i := 0; i < 2*maxCountedPaths; i++ {
		rec := httptest.NewRecorder()
		tn.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope/"+strconv.Itoa(i), nil))
	}
	if n := len(tn.Endpoints()); n > maxCountedPaths+1 {
		t.Errorf("%d counted paths, want at most %d", n, maxCountedPaths+1)
	}
	if tn.Calls(otherPaths) == 0 {
		t.Error("the overflow paths were not counted")
	}
}
