package stepup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/store"
	"golang.org/x/oauth2"
)

var _ oauth2.TokenSource = (*TokenSource)(nil)

// 50 goroutines across 5 Clients sharing a real Redis ask for a token just
// after it expired: exactly one refresh reaches the tenant, no reuse is
// detected, all 50 get the same new token; 20 expiry cycles.
func TestTokenSourceOneRefreshAcrossReplicas(t *testing.T) {
	t.Run("redis", func(t *testing.T) { testOneRefreshAcrossReplicas(t, wkOpts{redis: true}, 20) })
	t.Run("redis cluster", func(t *testing.T) { testOneRefreshAcrossReplicas(t, wkOpts{cluster: true}, 5) })
}

func testOneRefreshAcrossReplicas(t *testing.T, o wkOpts, cycles int) {
	e := newWkEnv(t, o)
	const replicas, perReplica = 5, 10
	cs := &countingStore{Store: e.store}
	clients := make([]*Client, replicas)
	for i := range clients {
		clients[i] = e.client(cs, nil)
	}
	s := e.login(clients[0], MFA)
	ctx := context.Background()
	first, err := clients[1].TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token()
	if err != nil {
		t.Fatalf("first Token: %v", err)
	}
	prev := first.AccessToken
	for cycle := 1; cycle <= cycles; cycle++ {
		e.clock.Advance(wkAccessLifetime) // just expired (EarlyExpiry included)
		before := e.tn.GrantCalls(auth0test.GrantRefreshToken)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			toks  = make([]string, replicas*perReplica)
			errs  = make([]error, replicas*perReplica)
		)
		for i := range toks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ts := clients[i%replicas].TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI})
				<-start
				tok, err := ts.Token()
				errs[i] = err
				if err == nil {
					toks[i] = tok.AccessToken
				}
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("cycle %d: goroutine %d: %v", cycle, i, err)
			}
		}
		if got := e.tn.GrantCalls(auth0test.GrantRefreshToken) - before; got != 1 {
			t.Fatalf("cycle %d: %d refreshes reached the tenant, want 1", cycle, got)
		}
		for i, tok := range toks {
			if tok != toks[0] {
				t.Fatalf("cycle %d: goroutine %d got another token than goroutine 0", cycle, i)
			}
		}
		if toks[0] == prev {
			t.Fatalf("cycle %d: the token was not renewed", cycle)
		}
		prev = toks[0]
	}
	t.Logf("store calls per expiry cycle of %d goroutines: %.0f reads, %.0f set-if-absent, %.0f writes",
		replicas*perReplica, float64(cs.gets.Load())/float64(cycles), float64(cs.setnxs.Load())/float64(cycles), float64(cs.sets.Load())/float64(cycles))
	ev := e.refreshEvents()
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": cycles}, ev); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
	// The step-up evidence is the login's, untouched by 20 refreshes.
	s2, err := clients[4].Session(ctx, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.StepUp, s2.StepUp); diff != "" || !s2.StepUpAt.Equal(s.StepUpAt) {
		t.Errorf("step-up evidence changed by refreshes (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(s.Authentication, s2.Authentication); diff != "" {
		t.Errorf("authentication changed by refreshes (-before +after):\n%s", diff)
	}
}

// A Token call on a valid token costs one store read and no tenant call.
func TestTokenSourceValidTokenCost(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	fs := &faultyStore{Store: e.store}
	c := e.client(fs, nil)
	s := e.login(c, Login)
	ts := c.TokenSource(context.Background(), s.Handle, TokenSourceOptions{Audience: wkAPI})
	gets, calls := fs.gets.Load(), e.tn.Calls("/oauth/token")
	for range 10 {
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
	}
	if got := fs.gets.Load() - gets; got != 10 {
		t.Errorf("10 Token calls made %d store reads, want 10", got)
	}
	if got := e.tn.Calls("/oauth/token") - calls; got != 0 {
		t.Errorf("10 Token calls made %d tenant calls, want 0", got)
	}
}

// The lease holder is killed while its request waits at the tenant (the
// tenant never processes it: the connection is gone). Another worker waits,
// takes over once the lease TTL has passed on the clock, and refreshes; the
// family is not revoked.
func TestTokenSourceHolderKilledBeforeTenantAnswers(t *testing.T) {
	e := newWkEnv(t, wkOpts{redis: true})
	a := e.client(nil, nil)
	bs := &faultyStore{Store: e.store}
	b := e.client(bs, nil)
	s := e.login(a, Login)
	e.clock.Advance(wkAccessLifetime)
	opts := TokenSourceOptions{Audience: wkAPI, LeaseTTL: 5 * time.Second}

	e.tn.InjectFault("/oauth/token", auth0test.Fault{Delay: time.Minute, Times: 1})
	calls := e.tn.Calls("/oauth/token")
	actx, kill := context.WithCancel(context.Background())
	aErr := make(chan error, 1)
	go func() {
		_, err := a.TokenSource(actx, s.Handle, opts).Token()
		aErr <- err
	}()
	waitFor(t, "the holder's request to reach the tenant", func() bool { return e.tn.Calls("/oauth/token") > calls })
	kill()
	if err := <-aErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("killed holder: got %v, want context.Canceled", err)
	}

	type result struct {
		tok *oauth2.Token
		err error
	}
	bRes := make(chan result, 1)
	go func() {
		tok, err := b.TokenSource(context.Background(), s.Handle, opts).Token()
		bRes <- result{tok, err}
	}()
	// b waits while the dead holder's lease is live...
	waitFor(t, "b to poll the store", func() bool { return bs.gets.Load() > 12 })
	select {
	case r := <-bRes:
		t.Fatalf("b did not wait for the live lease: %v", r.err)
	default:
	}
	if got := e.tn.GrantCalls(auth0test.GrantRefreshToken); got != 1 {
		t.Fatalf("refresh requests before the takeover: %d, want 1 (the killed one)", got)
	}
	// ...and takes over once it is stale.
	e.clock.Advance(opts.LeaseTTL)
	r := <-bRes
	if r.err != nil {
		t.Fatalf("takeover: %v", r.err)
	}
	if r.tok.AccessToken == "" || !r.tok.Valid() && r.tok.Expiry.Before(e.clock.Now()) {
		t.Fatalf("takeover gave an unusable token: %+v", r.tok)
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 1}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
	// Everyone now gets b's token without another refresh.
	tok, err := a.TokenSource(context.Background(), s.Handle, opts).Token()
	if err != nil || tok.AccessToken != r.tok.AccessToken {
		t.Fatalf("after takeover: %v, same token %v", err, err == nil && tok.AccessToken == r.tok.AccessToken)
	}
}

// A lease left by a holder that died right after taking it (a crash before
// any request) is taken over after the lease TTL.
func TestTokenSourceLeaseOfDeadHolder(t *testing.T) {
	e := newWkEnv(t, wkOpts{redis: true})
	c := e.client(nil, nil)
	s := e.login(c, Login)
	tok, err := c.Token(context.Background(), s, wkAPI)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(wkAccessLifetime)
	opts := TokenSourceOptions{Audience: wkAPI, LeaseTTL: 30 * time.Second}
	ctx := context.Background()
	leaseKey := c.leaseKey(s.Handle, wkAPI, refreshHash(tok.RefreshToken), 0)
	dead := c.ring.sealRecord(leaseKey, encodeLease(leaseRecord{V: leaseVersion, Holder: "dead-worker", Until: e.clock.Now().Add(opts.LeaseTTL).UnixMilli()}))
	if err := e.store.Set(ctx, leaseKey, dead, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err = c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI, LeaseTTL: opts.LeaseTTL, MaxWait: 100 * time.Millisecond}).Token()
	if !errors.Is(err, ErrRefreshTimeout) {
		t.Fatalf("while the dead holder's lease is live: got %v, want ErrRefreshTimeout", err)
	}
	// The wait honours ctx.
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.TokenSource(ctx, s.Handle, opts).TokenContext(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting with a context that ends: got %v, want context.DeadlineExceeded", err)
	}
	if got := e.tn.GrantCalls(auth0test.GrantRefreshToken); got != 0 {
		t.Fatalf("%d refreshes while the lease was live, want 0", got)
	}
	e.clock.Advance(opts.LeaseTTL)
	got, err := c.TokenSource(ctx, s.Handle, opts).Token()
	if err != nil {
		t.Fatalf("after the lease TTL: %v", err)
	}
	if got.AccessToken == tok.AccessToken {
		t.Fatal("not refreshed")
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 1}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
}

// killAfterAnswer is a transport for a worker that dies right after the
// tenant answered its refresh: the tenant rotated the token, the worker
// never stores the result.
type killAfterAnswer struct{ base http.RoundTripper }

func (k killAfterAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := k.base.RoundTrip(r)
	if err == nil && r.URL.Path == "/oauth/token" {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("worker killed after the tenant's answer (test)")
	}
	return resp, err
}

// A holder killed after the tenant rotated the token: its successor presents
// the previous token. Within the tenant's overlap period (longer than the
// lease TTL, as TokenSourceOptions.LeaseTTL advises) that is accepted and
// the family survives; without an overlap period Auth0's reuse detection
// revokes the family, which surfaces as ErrRefreshTokenInvalid (the user
// must log in again) — the one loss a lease cannot prevent.
func TestTokenSourceHolderKilledAfterTenantAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		overlap time.Duration
		want    map[string]int
		wantErr error
	}{
		{"overlap", time.Minute, map[string]int{"issued": 1, "rotated": 1, "overlap": 1}, nil},
		{"no overlap", 0, map[string]int{"issued": 1, "rotated": 1, "reused": 1, "revoked": 1}, ErrRefreshTokenInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newWkEnv(t, wkOpts{tenant: func(c *auth0test.Config) { c.RotationOverlap = tc.overlap }})
			dying := e.client(nil, func(c *Config) {
				hc := *c.HTTPClient
				hc.Transport = killAfterAnswer{base: hc.Transport}
				c.HTTPClient = &hc
			})
			other := e.client(nil, nil)
			s := e.login(other, Login)
			e.clock.Advance(wkAccessLifetime)
			opts := TokenSourceOptions{Audience: wkAPI, LeaseTTL: 10 * time.Second}
			if _, err := dying.TokenSource(context.Background(), s.Handle, opts).Token(); !errors.Is(err, ErrTenantUnavailable) {
				t.Fatalf("dying holder: got %v, want a transport failure", err)
			}
			e.clock.Advance(opts.LeaseTTL)
			_, err := other.TokenSource(context.Background(), s.Handle, opts).Token()
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("successor: got %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, e.refreshEvents()); diff != "" {
				t.Errorf("tenant refresh log (-want +got):\n%s", diff)
			}
		})
	}
}

// The store fails right after the tenant's answer: the new refresh token is
// stored on retry, or the failure surfaces as ErrRefreshNotStored and the
// source stores it at its next call; it is never lost silently.
func TestTokenSourceStoreFailsAfterTenantAnswer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failSets int64
		wantErr  bool
	}{
		{"stored on retry", DefaultStoreAttempts - 1, false},
		// The lease's "answered" mark is a write too (it fails first).
		{"surfaces then stored on the next call", DefaultStoreAttempts + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newWkEnv(t, wkOpts{redis: true})
			fs := &faultyStore{Store: e.store}
			c := e.client(fs, nil)
			other := e.client(nil, nil)
			s := e.login(c, Login)
			e.clock.Advance(wkAccessLifetime)
			ctx := context.Background()
			ts := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI})
			fs.failSets.Store(tc.failSets)
			tok, err := ts.Token()
			if tc.wantErr {
				if !errors.Is(err, ErrRefreshNotStored) || !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("got %v, want ErrRefreshNotStored matching store.ErrUnavailable", err)
				}
				if tok != nil {
					t.Fatal("an access token was handed out before its refresh token was stored")
				}
				tok, err = ts.Token() // the store is back
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			// Another replica reads the stored result: same token, no new refresh.
			got, err := other.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token()
			if err != nil || got.AccessToken != tok.AccessToken {
				t.Fatalf("other replica: %v (same token: %v)", err, err == nil && got.AccessToken == tok.AccessToken)
			}
			// The stored refresh token is the rotated one: the next expiry refreshes without reuse.
			e.clock.Advance(wkAccessLifetime)
			if _, err := other.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); err != nil {
				t.Fatalf("next cycle: %v", err)
			}
			if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 2}, e.refreshEvents()); diff != "" {
				t.Errorf("tenant refresh log (-want +got):\n%s", diff)
			}
		})
	}
}

// A refreshed ID token is verified; a bad one fails the call, but the
// rotated refresh token is kept (no reuse later) and the step-up evidence
// never changes.
func TestTokenSourceRefreshedIDTokenVerified(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	s := e.login(c, MFA)
	ctx := context.Background()
	e.clock.Advance(wkAccessLifetime)
	e.tn.ForgeIDTokens(func(h, cl map[string]any) { cl["aud"] = "someone-else" })
	ts := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI})
	if _, err := ts.Token(); !errors.Is(err, ErrTokenAudience) {
		t.Fatalf("forged refresh ID token: got %v, want ErrTokenAudience", err)
	}
	e.tn.ForgeIDTokens(nil)
	if _, err := ts.Token(); err != nil {
		t.Fatalf("after the forged answer: %v", err)
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 2}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
	s2, err := c.Session(ctx, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.StepUp, s2.StepUp); diff != "" || !s.StepUpAt.Equal(s2.StepUpAt) {
		t.Errorf("step-up changed (-before +after):\n%s", diff)
	}
}

// Errors of the token source: no session, no refresh token, refused token.
func TestTokenSourceErrors(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	noOffline := e.client(nil, func(c *Config) { c.Scopes = []string{"profile"} })
	ctx := context.Background()

	if _, err := c.TokenSource(ctx, "not-a-handle", TokenSourceOptions{}).Token(); !errors.Is(err, ErrNoSession) {
		t.Errorf("bad handle: got %v, want ErrNoSession", err)
	}
	s := e.login(noOffline, Login)
	if _, err := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: "https://other.example/"}).Token(); !errors.Is(err, ErrNoSession) {
		t.Errorf("unknown audience: got %v, want ErrNoSession", err)
	}
	e.clock.Advance(wkAccessLifetime)
	if _, err := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); !errors.Is(err, ErrNoRefreshToken) {
		t.Errorf("no refresh token: got %v, want ErrNoRefreshToken", err)
	}

	s = e.login(c, Login)
	tok, err := c.Token(context.Background(), s, wkAPI)
	if err != nil {
		t.Fatal(err)
	}
	e.tn.RevokeRefreshFamily(tok.RefreshToken)
	e.clock.Advance(wkAccessLifetime)
	_, err = c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token()
	var te *TenantError
	if !errors.Is(err, ErrRefreshTokenInvalid) || !errors.As(err, &te) || te.Code != "invalid_grant" {
		t.Errorf("revoked family: got %v, want ErrRefreshTokenInvalid with invalid_grant", err)
	}
	// Other workers learn the answer from the released lease: no wait, no tenant call.
	refreshes := e.tn.GrantCalls(auth0test.GrantRefreshToken)
	start := time.Now()
	_, err = e.client(nil, nil).TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token()
	if !errors.Is(err, ErrRefreshTokenInvalid) {
		t.Errorf("second worker on the revoked family: got %v, want ErrRefreshTokenInvalid", err)
	}
	if got := e.tn.GrantCalls(auth0test.GrantRefreshToken) - refreshes; got != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("second worker: %d tenant calls in %s, want 0 at once", got, time.Since(start))
	}
}

// BenchmarkTokenSourceValid measures a Token call on a valid stored token:
// one store read, no tenant call (reported as reads/op and tenant-calls/op).
func BenchmarkTokenSourceValid(b *testing.B) {
	e := newWkEnv(b, wkOpts{redis: os.Getenv("STEPUP_TEST_REDIS_ADDR") != ""})
	fs := &faultyStore{Store: e.store}
	c := e.client(fs, nil)
	s := e.login(c, Login)
	ts := c.TokenSource(context.Background(), s.Handle, TokenSourceOptions{Audience: wkAPI})
	gets, calls := fs.gets.Load(), e.tn.Calls("/oauth/token")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ts.Token(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(fs.gets.Load()-gets)/float64(b.N), "reads/op")
	b.ReportMetric(float64(e.tn.Calls("/oauth/token")-calls)/float64(b.N), "tenant-calls/op")
}

// Tokens the store refused are not written back once the chain has moved
// on (here: a new login replaced the session's tokens): that would put an
// older state back.
func TestTokenSourcePendingDroppedWhenChainMovedOn(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	fs := &faultyStore{Store: e.store}
	c := e.client(fs, nil)
	s := e.login(c, Login)
	ctx := context.Background()
	e.clock.Advance(wkAccessLifetime)
	ts := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI})
	fs.failSets.Store(DefaultStoreAttempts + 1) // the lease's mark, then every attempt
	if _, err := ts.Token(); !errors.Is(err, ErrRefreshNotStored) {
		t.Fatalf("got %v, want ErrRefreshNotStored", err)
	}
	// The user logs in again in the same session: a new refresh-token family.
	ar, err := c.AuthorizeURL(ctx, AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := e.tn.Login(ctx, ar.URL, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Exchange(ctx, cb.Query(), ar.Transaction)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartSession(ctx, res, s); err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != res.Token.AccessToken {
		t.Fatalf("after the new login: %v (the login's token: %v)", err, err == nil && tok.AccessToken == res.Token.AccessToken)
	}
	if stored, err := c.Token(ctx, s, wkAPI); err != nil || stored.RefreshToken != res.Token.RefreshToken {
		t.Errorf("the stale refresh result was written over the login's tokens (%v)", err)
	}
	if diff := cmp.Diff(map[string]int{"issued": 2, "rotated": 1}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
}

// A session record written back as it was before a refresh (what an
// idle-deadline extension did before page loads stopped rewriting it), and
// page loads between refreshes, do not make a worker present a rotated-out
// refresh token: tokens are not in the session record, and the token record
// is the authority on the chain.
func TestTokenSourceSessionCopyClobbered(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	s := e.login(c, Login)
	ctx := context.Background()
	stale, err := e.store.Get(ctx, c.sessionKey(s.Handle)) // read by the page load
	if err != nil {
		t.Fatal(err)
	}
	for cycle := 1; cycle <= 3; cycle++ {
		e.clock.Advance(wkAccessLifetime)
		if _, err := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		// ...written back after the refresh.
		if err := e.store.Set(ctx, c.sessionKey(s.Handle), stale, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := c.LoadSession(ctx, c.SessionCookie(s).Value); err != nil {
			t.Fatalf("cycle %d: page load: %v", cycle, err)
		}
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 3}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
}
