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

// cacheClient is offlineClient over a counting wrapper of the memory store
// (bare false), or over the *store.Memory itself (bare true: the Client
// then uses its GetExUnchanged, which copies nothing for an unchanged
// record). cs is nil when bare.
func cacheClient(t *testing.T, bare bool, mutate func(*Config)) (*Client, store.Store, *countingStore, *testClock) {
	t.Helper()
	if !bare {
		c, cs, clock := offlineClient(t, mutate)
		return c, cs, cs, clock
	}
	var mem *store.Memory
	c, _, clock := offlineClient(t, func(cfg *Config) {
		mem = store.NewMemory(store.MemoryOptions{Now: cfg.Now, SweepInterval: -1})
		cfg.Store = mem
		if mutate != nil {
			mutate(cfg)
		}
	})
	t.Cleanup(func() { mem.Close() })
	if c.mem != mem {
		t.Fatal("the Client does not use the memory store as one")
	}
	return c, mem, nil, clock
}

// bothStores runs f over cacheClient's two stores.
func bothStores(t *testing.T, f func(t *testing.T, bare bool)) {
	for _, bare := range []bool{false, true} {
		t.Run(map[bool]string{false: "wrapped", true: "memory"}[bare], func(t *testing.T) { f(t, bare) })
	}
}

// A page load answered by the session cache gives exactly what the full
// path gives (compared with a Client without the cache over the same
// store), and each caller gets its own evidence lists.
func TestSessionCacheHitEqualsMiss(t *testing.T) { bothStores(t, testSessionCacheHitEqualsMiss) }

func testSessionCacheHitEqualsMiss(t *testing.T, bare bool) {
	c, cs, _, clock := cacheClient(t, bare, nil)
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
	hit, err := c.LoadSession(ctx, cookie)
	if err != nil {
		t.Fatal(err)
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
	bothStores(t, testSessionCacheRefusesWhatTheFullPathRefuses)
}

func testSessionCacheRefusesWhatTheFullPathRefuses(t *testing.T, bare bool) {
	c, cs, counting, clock := cacheClient(t, bare, nil)
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
	// A cookie whose handle or secret is not base64url costs no store call
	// when the cache holds no entry for its handle.
	for _, v := range []string{"!" + s.Handle[1:] + "." + s.secret + "." + exp, randomToken() + ".!" + s.secret[1:] + "." + exp} {
		if counting == nil {
			break
		}
		reads := counting.reads()
		if _, err := c.LoadSession(ctx, v); !errors.Is(err, ErrNoSession) || counting.reads() != reads {
			t.Errorf("cookie %q: %v after %d store reads, want ErrNoSession after none", v, err, counting.reads()-reads)
		}
	}
	// The wrong cookies did not evict the entry the right one made.
	if e := c.sessions.lookup(s.Handle); e == nil || e.secret != s.secret {
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
	real, err := cs.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := c.ring.openRecordInPlace(key, append([]byte(nil), real...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Set(ctx, key, other.ring.sealRecord(key, plain), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadSession(ctx, cookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("a record sealed with other keys loads from the cache: %v", err)
	}
	if err := cs.Set(ctx, key, real, time.Hour); err != nil {
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
	if _, err := c.Session(ctx, s.Handle); !errors.Is(err, ErrNoSession) {
		t.Errorf("Session(handle) of an ended session: %v", err)
	}
}

// Session(handle) and LoadSession share the cache without weakening the
// cookie check: an entry made by a read by handle holds no secret, so a
// cookie load still checks the cookie's secret against the record.
func TestSessionCacheByHandleThenCookie(t *testing.T) {
	bothStores(t, testSessionCacheByHandleThenCookie)
}

func testSessionCacheByHandleThenCookie(t *testing.T, bare bool) {
	c, _, _, clock := cacheClient(t, bare, nil)
	ctx := context.Background()
	cookie, s := realisticSession(t, c, clock.Now())
	for range 2 {
		if _, err := c.Session(ctx, s.Handle); err != nil {
			t.Fatal(err)
		}
	}
	exp := strconv.FormatInt(s.ExpiresAt.UnixMilli(), 10)
	if _, err := c.LoadSession(ctx, s.Handle+"."+randomToken()+"."+exp); !errors.Is(err, ErrNoSession) {
		t.Errorf("a wrong secret after a read by handle: %v, want ErrNoSession", err)
	}
	if _, err := c.LoadSession(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Session(ctx, s.Handle); err != nil || !got.IdleExpiresAt.IsZero() || got.secret != "" {
		t.Errorf("Session(handle) from the cache entry of a cookie load: %+v, %v (it must carry no secret or idle deadline)", got, err)
	}
}

// The cache holds at most SessionCacheSize entries, and every session
// keeps loading correctly when it churns.
func TestSessionCacheBounded(t *testing.T) { bothStores(t, testSessionCacheBounded) }

func testSessionCacheBounded(t *testing.T, bare bool) {
	c, _, _, clock := cacheClient(t, bare, func(cfg *Config) { cfg.SessionCacheSize = 3 })
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
	// Past their end, entries are dropped first when room is needed.
	clock.Advance(DefaultSessionLifetime + time.Minute)
	if _, err := c.LoadSession(ctx, cookies[0]); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a session past its end: %v", err)
	}
}

// Concurrent page loads, logins and step-ups of the same session never mix
// records up (run with -race).
func TestSessionCacheConcurrent(t *testing.T) { bothStores(t, testSessionCacheConcurrent) }

func testSessionCacheConcurrent(t *testing.T, bare bool) {
	c, _, _, clock := cacheClient(t, bare, nil)
	ctx := context.Background()
	cookie, s := realisticSession(t, c, clock.Now())
	var mu sync.Mutex
	current := cookie
	var wg sync.WaitGroup
	stop := make(chan struct{})
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
	close(stop)
	wg.Wait()
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
	cookie, s := realisticSession(t, c, clock.Now())
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
	_ = s
}

// The review's findings, each with the case that failed before its fix.
func TestSessionCacheReviewFindings(t *testing.T) {
	ctx := context.Background()

	// A malformed secret is refused before the store is read, whether or
	// not the cache holds the handle: with the store down too.
	t.Run("malformed secret, cached handle", func(t *testing.T) {
		c, _, cs, clock := cacheClient(t, false, nil)
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
	})

	// StartSession continuing a session loaded from the cache does not
	// share the cached record's evidence lists with the new Session.
	t.Run("StartSession copies the cached evidence", func(t *testing.T) {
		c, _, _, clock := cacheClient(t, true, nil)
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
	})

	// A session whose sealed record exceeds maxCachedSessionBytes is not
	// cached (and loads all the same); Close empties the cache.
	t.Run("large records, Close", func(t *testing.T) {
		claims := map[string]string{}
		for i := range 16 {
			claims["https://fabrikam.example/claim-"+strconv.Itoa(i)] = strconv.Itoa(i) + string(make([]byte, 150))
		}
		c, _, _, clock := cacheClient(t, true, func(cfg *Config) {
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
	})
}
