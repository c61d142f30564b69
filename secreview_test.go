package stepup

import (
	"context"
	"strconv"
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
