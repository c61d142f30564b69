package stepup

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stepupauth/stepup/store"
)

// sessionFields compares two Sessions by what a caller sees.
var sessionFields = cmp.Options{cmp.AllowUnexported(Session{}), cmpopts.IgnoreFields(Session{}, "rec"), cmpopts.EquateEmpty()}

// A page load answered by the session cache gives exactly what the full
// path gives (compared with a Client without the cache over the same
// store), and each caller gets its own evidence lists.
func TestSessionCacheHitEqualsMiss(t *testing.T) {
	c, cs, clock := offlineClient(t, nil)
	ctx := context.Background()
	off, err := New(ctx, Config{
		Domain: "fabrikam.eu.auth0.com", ClientID: "client-1", ClientSecret: "secret-1",
		RedirectURL: "https://app.example.com/callback", Store: cs, SealingKeys: [][]byte{sealTestKey(7)},
		HTTPClient: noNetwork(t), Now: clock.Now, SessionCacheSize: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { off.Close() })
	if off.sessions != nil {
		t.Fatal("SessionCacheSize -1 left a cache")
	}
	cookie, s := realisticSession(t, c, clock.Now())
	if n := c.sessions.len(); n != 0 {
		t.Fatalf("StartSession left %d cache entries, want 0 (a write drops the entry)", n)
	}
	first, err := c.LoadSession(ctx, cookie) // the full path, which fills the cache
	if err != nil {
		t.Fatal(err)
	}
	if n := c.sessions.len(); n != 1 {
		t.Fatalf("%d cache entries after a load, want 1", n)
	}
	entry := c.sessions.lookup(s.Handle)
	hit, err := c.LoadSession(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	if hit.rec != entry.rec || c.sessions.lookup(s.Handle) != entry {
		t.Fatal("the second load did not come from the cache entry the first made")
	}
	// A hit opens and decodes nothing: on a Client without the StoreTimeout
	// bound (a context and a timer per call), it allocates the store's copy
	// and the Session, and nothing else.
	bare, _, bareClock := offlineClient(t, func(cfg *Config) { cfg.StoreTimeout = -1 })
	bareCookie, _ := realisticSession(t, bare, bareClock.Now())
	if _, err := bare.LoadSession(ctx, bareCookie); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() {
		if _, err := bare.LoadSession(ctx, bareCookie); err != nil {
			t.Fatal(err)
		}
	}); n != 2 {
		t.Errorf("a cached load makes %v allocations, want 2: the store's copy and the Session", n)
	}
	want, err := off.LoadSession(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]*Session{"first load": first, "cached load": hit} {
		if diff := cmp.Diff(want, got, sessionFields); diff != "" {
			t.Errorf("%s differs from the uncached load (-uncached +cached):\n%s", name, diff)
		}
	}
	if len(hit.Authentication.AMR) != 2 || len(hit.StepUp.AMR) != 2 || hit.StepUp.ACR != ACRMultiFactor || hit.Subject != s.Subject {
		t.Fatalf("the cached load lost evidence: %+v", hit)
	}
	if err := c.CheckSession(hit, MFA); err != nil {
		t.Errorf("the cached load does not satisfy MFA: %v", err)
	}
	// A caller that changes its evidence changes only its own copy.
	hit.Authentication.AMR[0], hit.StepUp.AMR[1] = "changed", "changed"
	hit.Authentication.AMR = append(hit.Authentication.AMR, "appended")
	again, err := c.LoadSession(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, again, sessionFields); diff != "" {
		t.Errorf("a caller's change to its Session reached the next load (-want +got):\n%s", diff)
	}
	if v, ok := again.Claim("anything"); ok || v != "" {
		t.Errorf("Claim on a cached session: %q, %v", v, ok)
	}
}

// The cache never answers for a cookie it did not check: a wrong secret,
// a secret of the wrong alphabet, another absolute end; nor for a record
// that changed in the store (written by another replica, forged, ended).
func TestSessionCacheRefusesWhatTheFullPathRefuses(t *testing.T) {
	c, cs, clock := offlineClient(t, nil)
	ctx := context.Background()
	cookie, s := realisticSession(t, c, clock.Now())
	if _, err := c.LoadSession(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	exp := strconv.FormatInt(s.ExpiresAt.UnixMilli(), 10)
	wrongSecret := randomToken()
	for name, v := range map[string]string{
		"another secret":            s.Handle + "." + wrongSecret + "." + exp,
		"a secret not base64url":    s.Handle + "." + "!" + s.secret[1:] + "." + exp,
		"another absolute end":      s.Handle + "." + s.secret + "." + strconv.FormatInt(s.ExpiresAt.UnixMilli()+1, 10),
		"a handle not base64url":    "!" + s.Handle[1:] + "." + s.secret + "." + exp,
		"the secret as the handle":  s.secret + "." + s.secret + "." + exp,
		"a secret one byte shorter": s.Handle + "." + s.secret[1:] + "." + exp,
	} {
		if got, err := c.LoadSession(ctx, v); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: %+v, %v; want ErrNoSession", name, got, err)
		}
	}
	// A cookie whose handle or secret is not base64url costs no store
	// call, whatever the cache holds for its handle.
	for _, v := range []string{"!" + s.Handle[1:] + "." + s.secret + "." + exp, s.Handle + ".!" + s.secret[1:] + "." + exp} {
		reads := cs.reads()
		if _, err := c.LoadSession(ctx, v); !errors.Is(err, ErrNoSession) || cs.reads() != reads {
			t.Errorf("cookie %q: %v after %d store reads, want ErrNoSession after none", v, err, cs.reads()-reads)
		}
	}
	// The wrong cookies did not evict the entry the right one made.
	if e := c.sessions.lookup(s.Handle); e == nil || e.rec.SecretHash != string(secretHash(s.secret)) {
		t.Fatal("a refused cookie replaced or removed the cache entry")
	}
	if _, err := c.LoadSession(ctx, cookie); err != nil {
		t.Fatalf("the right cookie after refused ones: %v", err)
	}

	// Another replica (another Client over the same store) steps the
	// session up: this replica's next load sees it at once.
	replica, err := New(ctx, Config{
		Domain: "fabrikam.eu.auth0.com", ClientID: "client-1", ClientSecret: "secret-1",
		RedirectURL: "https://app.example.com/callback", Store: cs, SealingKeys: [][]byte{sealTestKey(7)},
		HTTPClient: noNetwork(t), Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replica.Close() })
	prev, err := replica.LoadSession(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	stepped, err := replica.StartSession(ctx, &LoginResult{IDToken: &IDToken{
		Subject: s.Subject, SessionID: s.SessionID, OrgID: s.OrgID, ACR: ACRMultiFactor, AMR: []string{"pwd", "otp"}, AuthTime: clock.Now(),
	}, Policy: MFA}, prev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadSession(ctx, cookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("the cookie rotated by the replica's step-up still loads here: %v", err)
	}
	got, err := c.LoadSession(ctx, c.SessionCookie(stepped).Value)
	if err != nil {
		t.Fatal(err)
	}
	if !got.StepUpAt.Equal(stepped.StepUpAt) || got.StepUp.AMR[1] != "otp" {
		t.Errorf("this replica's load after the replica's step-up: StepUpAt %v, AMR %v; want %v, [pwd otp]", got.StepUpAt, got.StepUp.AMR, stepped.StepUpAt)
	}
	cookie = c.SessionCookie(stepped).Value

	// A record replaced behind the Client's back (a forged one, sealed
	// with other keys) is absent, though the cache held the real one.
	other, _, _ := offlineClient(t, func(cfg *Config) { cfg.SealingKeys = [][]byte{sealTestKey(9)} })
	key := c.sessionKey(s.Handle)
	genuine, err := cs.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := c.ring.openRecordInPlace(key, append([]byte(nil), genuine...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Set(ctx, key, other.ring.sealRecord(key, plain), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadSession(ctx, cookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("a record sealed with other keys loads from the cache: %v", err)
	}
	if err := cs.Set(ctx, key, genuine, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadSession(ctx, cookie); err != nil {
		t.Fatalf("the real record put back: %v", err)
	}

	// The replica ends the session (Logout without the revocation, which
	// needs the tenant): this replica's next load has none, and forgets
	// the entry.
	if err := replica.endSessionRecords(ctx, s.Handle, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadSession(ctx, cookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("a session ended by the replica loads from the cache: %v", err)
	}
	if c.sessions.lookup(s.Handle) != nil {
		t.Error("the entry of an ended session was kept")
	}
}

// Reads by handle (background jobs) neither use nor fill the cache.
func TestSessionCacheNotForReadsByHandle(t *testing.T) {
	c, _, clock := offlineClient(t, nil)
	ctx := context.Background()
	cookie, s := realisticSession(t, c, clock.Now())
	if _, err := c.Session(ctx, s.Handle); err != nil || c.sessions.len() != 0 {
		t.Fatalf("Session(handle): %v, %d cache entries; want none", err, c.sessions.len())
	}
	if _, err := c.LoadSession(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	entry := c.sessions.lookup(s.Handle)
	got, err := c.Session(ctx, s.Handle)
	if err != nil || got.rec == entry.rec || !got.IdleExpiresAt.IsZero() || got.secret != "" {
		t.Errorf("Session(handle) after a cookie load: %+v, %v (want its own record, no secret or idle deadline)", got, err)
	}
}

// The cache holds at most SessionCacheSize entries, and every session
// keeps loading correctly when it churns.
func TestSessionCacheBounded(t *testing.T) {
	c, _, _ := offlineClient(t, func(cfg *Config) { cfg.SessionCacheSize = 3 })
	ctx := context.Background()
	var cookies []string
	var subs []string
	for i := range 10 {
		sub := "auth0|user-" + strconv.Itoa(i)
		s, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: sub}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cookies, subs = append(cookies, c.SessionCookie(s).Value), append(subs, sub)
	}
	for round := range 3 {
		for i, v := range cookies {
			s, err := c.LoadSession(ctx, v)
			if err != nil || s.Subject != subs[i] {
				t.Fatalf("round %d, session %d: %+v, %v", round, i, s, err)
			}
			if n := c.sessions.len(); n > 3 {
				t.Fatalf("%d cache entries, bound 3", n)
			}
		}
	}
}

// A full cache drops an entry past its absolute end before a live one.
func TestSessionCacheEvictsEndedFirst(t *testing.T) {
	for range 20 { // the map's order varies: the ended entry is anywhere
		sc := newSessionCache(3)
		ended := &sessionCacheEntry{rec: &sessionRecord{Expires: 1000}}
		sc.put("live-1", &sessionCacheEntry{rec: &sessionRecord{Expires: 5000}}, 100)
		sc.put("ended", ended, 100)
		sc.put("live-2", &sessionCacheEntry{rec: &sessionRecord{Expires: 5000}}, 100)
		sc.put("new", &sessionCacheEntry{rec: &sessionRecord{Expires: 5000}}, 2000)
		if sc.len() != 3 || sc.lookup("ended") != nil || sc.lookup("new") == nil || sc.lookup("live-1") == nil || sc.lookup("live-2") == nil {
			t.Fatalf("after an insert into a full cache: %d entries, ended kept %v", sc.len(), sc.lookup("ended") != nil)
		}
		// Without an ended entry, an arbitrary one goes; the bound holds.
		sc.put("newer", &sessionCacheEntry{rec: &sessionRecord{Expires: 5000}}, 2000)
		if sc.len() != 3 || sc.lookup("newer") == nil {
			t.Fatalf("a full cache of live entries: %d entries, the new one kept %v", sc.len(), sc.lookup("newer") != nil)
		}
	}
}

// Concurrent page loads, logins and step-ups of the same session never mix
// records up (run with -race).
func TestSessionCacheConcurrent(t *testing.T) {
	c, _, clock := offlineClient(t, nil)
	ctx := context.Background()
	cookie, s := realisticSession(t, c, clock.Now())
	var mu sync.Mutex
	current := cookie
	var wg sync.WaitGroup
	stop := make(chan struct{})
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt() // a Fatal below must not leave the loaders running
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				v := current
				mu.Unlock()
				got, err := c.LoadSession(ctx, v)
				if errors.Is(err, ErrNoSession) {
					continue // rotated under us
				}
				if err != nil || got.Subject != s.Subject || got.Handle != s.Handle || len(got.StepUp.AMR) == 0 {
					t.Errorf("concurrent load: %+v, %v", got, err)
					return
				}
				got.StepUp.AMR[0] = "scribbled"
			}
		}()
	}
	prev := s
	for range 50 {
		next, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{
			Subject: s.Subject, SessionID: s.SessionID, OrgID: s.OrgID, ACR: ACRMultiFactor, AMR: []string{"pwd", "mfa"}, AuthTime: clock.Now(),
		}, Policy: MFA}, prev)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		current = c.SessionCookie(next).Value
		mu.Unlock()
		prev = next
	}
	halt()
	got, err := c.LoadSession(ctx, c.SessionCookie(prev).Value)
	if err != nil || got.StepUp.AMR[0] != "pwd" {
		t.Fatalf("after the concurrent loads: %+v, %v", got, err)
	}
}

// A page load answered by the cache still costs its one store read (which
// moves the idle deadline), and no write.
func TestSessionCacheStillReadsTheStore(t *testing.T) {
	c, cs, clock := offlineClient(t, nil)
	ctx := context.Background()
	cookie, _ := realisticSession(t, c, clock.Now())
	if _, err := c.LoadSession(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	reads, writes := cs.reads(), cs.writes()
	clock.Advance(DefaultSessionIdleTimeout - time.Minute)
	got, err := c.LoadSession(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	if cs.reads()-reads != 1 || cs.writes() != writes {
		t.Errorf("a cached page load: %d reads, %d writes; want 1 and 0", cs.reads()-reads, cs.writes()-writes)
	}
	if want := clock.Now().Add(DefaultSessionIdleTimeout).Truncate(time.Millisecond); !got.IdleExpiresAt.Equal(want) {
		t.Errorf("IdleExpiresAt %v, want %v", got.IdleExpiresAt, want)
	}
	// The read moved the TTL: the session outlives its first idle deadline.
	clock.Advance(2 * time.Minute)
	if _, err := c.LoadSession(ctx, cookie); err != nil {
		t.Errorf("the session after its first idle deadline (the cached load moved it): %v", err)
	}
	// A store that fails fails the cached load too.
	cs.failing.Store(true)
	defer cs.failing.Store(false)
	if _, err := c.LoadSession(ctx, cookie); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a cached load with the store down: %v, want store.ErrUnavailable", err)
	}
}

// A malformed secret is refused before the store is read, whether or not
// the cache holds the handle: with the store down too.
func TestSessionCacheMalformedSecretOnCachedHandle(t *testing.T) {
	ctx := context.Background()
	{
		c, cs, clock := offlineClient(t, nil)
		cookie, s := realisticSession(t, c, clock.Now())
		if _, err := c.LoadSession(ctx, cookie); err != nil {
			t.Fatal(err)
		}
		bad := s.Handle + ".!" + s.secret[1:] + "." + strconv.FormatInt(s.ExpiresAt.UnixMilli(), 10)
		cs.failing.Store(true)
		defer cs.failing.Store(false)
		reads := cs.reads()
		if _, err := c.LoadSession(ctx, bad); !errors.Is(err, ErrNoSession) || cs.reads() != reads {
			t.Errorf("malformed secret on a cached handle: %v after %d store reads; want ErrNoSession after none", err, cs.reads()-reads)
		}
	}
}

// StartSession continuing a session loaded from the cache does not share
// the cached record's evidence lists with the new Session.
func TestStartSessionCopiesCachedEvidence(t *testing.T) {
	ctx := context.Background()
	{
		c, _, clock := offlineClient(t, nil)
		cookie, s := realisticSession(t, c, clock.Now())
		prev, err := c.LoadSession(ctx, cookie)
		if err != nil {
			t.Fatal(err)
		}
		e := c.sessions.lookup(s.Handle)
		if e == nil {
			t.Fatal("no cache entry after a load")
		}
		// A silent login keeps the evidence of the interactive ones.
		next, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: s.Subject, SessionID: s.SessionID, OrgID: s.OrgID}, Silent: true}, prev)
		if err != nil {
			t.Fatal(err)
		}
		if len(next.StepUp.AMR) == 0 {
			t.Fatal("the silent login lost the step-up evidence")
		}
		next.StepUp.AMR[0], next.Authentication.AMR[0] = "scribbled", "scribbled"
		if e.rec.StepUp.AMR[0] == "scribbled" || e.rec.Auth.AMR[0] == "scribbled" {
			t.Errorf("a change to StartSession's Session reached the cached record: %v, %v", e.rec.Auth.AMR, e.rec.StepUp.AMR)
		}
	}
}

// A session whose sealed record exceeds maxCachedSessionBytes is not cached
// (and loads all the same); Close empties the cache.
func TestSessionCacheLargeRecordsAndClose(t *testing.T) {
	ctx := context.Background()
	{
		claims := map[string]string{}
		for i := range 16 {
			claims["https://fabrikam.example/claim-"+strconv.Itoa(i)] = strconv.Itoa(i) + string(make([]byte, 150))
		}
		c, _, clock := offlineClient(t, func(cfg *Config) {
			cfg.BeforeSession = func(ctx context.Context, login *LoginResult) (map[string]string, error) {
				if login.IDToken.Subject == "auth0|large" {
					return claims, nil
				}
				return nil, nil
			}
		})
		large, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|large"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := c.store.Get(ctx, c.sessionKey(large.Handle))
		if err != nil || len(raw) <= maxCachedSessionBytes {
			t.Fatalf("the large session's record is %d bytes (%v), want over %d", len(raw), err, maxCachedSessionBytes)
		}
		for range 2 {
			got, err := c.LoadSession(ctx, c.SessionCookie(large).Value)
			if err != nil || len(got.Claims()) != 16 {
				t.Fatalf("the large session: %v, %d claims", err, len(got.Claims()))
			}
		}
		if n := c.sessions.len(); n != 0 {
			t.Errorf("a record of %d bytes was cached", len(raw))
		}
		cookie, _ := realisticSession(t, c, clock.Now())
		if _, err := c.LoadSession(ctx, cookie); err != nil || c.sessions.len() != 1 {
			t.Fatalf("the realistic session: %v, %d entries", err, c.sessions.len())
		}
		c.Close()
		if n := c.sessions.len(); n != 0 {
			t.Errorf("Close left %d cache entries", n)
		}
	}
}
