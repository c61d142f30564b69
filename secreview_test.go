package stepup

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Security review: whoever knows only a session's handle (a job payload, an
// old cookie from before the last secret rotation) must not be able to end
// the session. The idle deadline is moved before the secret and the
// absolute end are checked, with a TTL computed from the cookie's own
// (unauthenticated) end: an end 1 ms away set the record's TTL to 1 ms.
func TestHandleAloneCannotEndSession(t *testing.T) {
	c, _, clock := offlineClient(t, func(cfg *Config) {
		cfg.SessionIdleTimeout = 30 * time.Minute
		cfg.SessionLifetime = 8 * time.Hour
	})
	ctx := context.Background()
	s, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|victim"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	victim := c.SessionCookie(s).Value
	// The attacker: the victim's handle, any secret, an end 1 ms from now.
	forged := s.Handle + "." + randomToken() + "." + strconv.FormatInt(clock.Now().UnixMilli()+1, 10)
	if _, err := c.LoadSession(ctx, forged); err == nil {
		t.Fatal("a cookie with a wrong secret opened the session")
	}
	clock.Advance(time.Second)
	if _, err := c.LoadSession(ctx, victim); err != nil {
		t.Fatalf("the victim's own cookie, a second after a forged cookie with only the handle: %v (the session was ended by someone without its secret)", err)
	}
}

// Security review: a step-up callback continues the session it loaded from
// the cookie; when a back-channel logout (LogoutSID) or LogoutUser ends that
// session between that load and the callback's writes, the callback writes
// the session record back, but not its sid and user index entries (a
// continued session under the same sid adds none): the session lives on and
// no later LogoutSID or LogoutUser can find it ("sign out everywhere" after
// a password change or an account deletion misses it until its absolute
// end).
func TestSessionContinuedAcrossLogoutStaysIndexed(t *testing.T) {
	c, _, _ := offlineClient(t, nil)
	ctx := context.Background()
	login := &LoginResult{IDToken: &IDToken{Subject: "auth0|u", SessionID: "sid-1"}}
	s, err := c.StartSession(ctx, login, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The callback of a step-up loads the session from the cookie...
	prev, err := c.LoadSession(ctx, c.SessionCookie(s).Value)
	if err != nil {
		t.Fatal(err)
	}
	// ...the tenant's back-channel logout for sid-1 ends it...
	if n, err := c.LogoutSID(ctx, "sid-1"); err != nil || n != 1 {
		t.Fatalf("LogoutSID: %d, %v", n, err)
	}
	// ...and the callback, whose code was issued before, continues it.
	stepUp := &LoginResult{IDToken: &IDToken{Subject: "auth0|u", SessionID: "sid-1", ACR: ACRMultiFactor, AMR: []string{"mfa"}}, Policy: MFA}
	s2, err := c.StartSession(ctx, stepUp, prev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadSession(ctx, c.SessionCookie(s2).Value); err != nil {
		t.Skipf("the continued session did not come back (%v): nothing to find", err)
	}
	// Whatever else happens, a session that exists must stay findable.
	n, err := c.LogoutUser(ctx, "auth0|u")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadSession(ctx, c.SessionCookie(s2).Value); err == nil {
		t.Fatalf("LogoutUser ended %d sessions and the user's live session survived it: it is in no index", n)
	}
}

// Security review: the kids remembered as unknown are bounded in number
// (1024) but not in length: concurrent tokens with ~40 KB random kids (the
// token bound is 64 KB; no signature is checked before the kid lookup) that
// share one refetch were all remembered, pinning ~40 MB. A kid longer than
// any issuer uses is refused without a fetch and not remembered.
func TestKeySetLongRandomKIDsAreNotRemembered(t *testing.T) {
	keys := testKeys(t, 1)
	srv := newJWKSServer(t, keys[0])
	clock := newTestClock()
	ks := newTestKeySet(t, srv, clock)
	ctx := context.Background()
	if _, err := ks.current(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	long := strings.Repeat("k", 40<<10)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ks.candidates(ctx, long+strconv.Itoa(i), "RS256"); !errors.Is(err, ErrTokenUnknownKey) {
				t.Errorf("got %v, want ErrTokenUnknownKey", err)
			}
		}()
	}
	wg.Wait()
	ks.mu.Lock()
	total := 0
	for kid := range ks.unknown {
		total += len(kid)
	}
	ks.mu.Unlock()
	if total > 64*maxKIDLen {
		t.Fatalf("%d bytes of kids remembered as unknown after 64 tokens", total)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (no refetch for an oversized kid)", n)
	}
}

// Security review: Config.Events promises an audit event for each logout,
// Client.Logout included (an app's own sign-out path calls it).
func TestEventsHookReceivesLogout(t *testing.T) {
	var got []EventKind
	c, _, _ := offlineClient(t, func(cfg *Config) {
		cfg.Events = func(_ context.Context, e Event) { got = append(got, e.Kind) }
	})
	ctx := context.Background()
	s, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|u"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx, s.Handle); err != nil {
		t.Fatal(err)
	}
	for _, k := range got {
		if k == EventLogout {
			return
		}
	}
	t.Fatalf("events after a session's logout: %v, want one %q", got, EventLogout)
}
