package stepup

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/store"
)

// rotStore wraps a Store: writes of token records (the authority on the
// rotation chain) block while blocked
// is set (the first one signals entered), or fail while failRot > 0.
type rotStore struct {
	store.Store
	blockOnce sync.Once
	entered   chan struct{}
	release   chan struct{}
	failRot   atomic.Int64
}

func (s *rotStore) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if strings.Contains(k, "tok:") && !strings.HasSuffix(k, ":idt") {
		if s.release != nil {
			s.blockOnce.Do(func() {
				close(s.entered)
				<-s.release
			})
		}
		if s.failRot.Add(-1) >= 0 {
			return errors.Join(store.ErrUnavailable, errWkStoreDown)
		}
	}
	return s.Store.Set(ctx, k, v, ttl)
}

// A live holder whose store write is slower than the rest of its lease is
// not overtaken: once the tenant has answered, its lease says so, and the
// other workers wait (or, past the lease's deadline, get
// ErrRefreshNotStored) instead of presenting the rotated-out refresh token,
// which would make the tenant revoke the family.
func TestTokenSourceSlowStoreWriteNotOvertaken(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	slow := &rotStore{Store: e.store, entered: make(chan struct{}), release: make(chan struct{})}
	holder := e.client(slow, nil)
	other := e.client(nil, nil)
	s := e.login(other, Login)
	e.clock.Advance(wkAccessLifetime)
	ctx := context.Background()
	opts := TokenSourceOptions{Audience: wkAPI, LeaseTTL: 10 * time.Second}
	type result struct {
		tok string
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := holder.TokenSource(ctx, s.Handle, opts).Token()
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{tok: tok.AccessToken}
	}()
	<-slow.entered // the tenant answered; the holder is writing
	// While the holder's lease is live, the others wait.
	short := opts
	short.MaxWait = 50 * time.Millisecond
	if _, err := other.TokenSource(ctx, s.Handle, short).Token(); !errors.Is(err, ErrRefreshTimeout) {
		t.Errorf("waiter during the holder's write: got %v, want ErrRefreshTimeout", err)
	}
	// The write takes longer than the rest of the lease: no takeover.
	e.clock.Advance(opts.LeaseTTL)
	if _, err := other.TokenSource(ctx, s.Handle, opts).Token(); !errors.Is(err, ErrRefreshNotStored) {
		t.Errorf("waiter after the lease's deadline: got %v, want ErrRefreshNotStored", err)
	}
	if got := e.tn.GrantCalls(auth0test.GrantRefreshToken); got != 1 {
		t.Errorf("refresh requests: %d, want 1 (the holder's)", got)
	}
	close(slow.release)
	r := <-done
	if r.err != nil {
		t.Fatalf("holder: %v", r.err)
	}
	// The others now get the holder's token, and the next expiry refreshes
	// the stored token without reuse.
	tok, err := other.TokenSource(ctx, s.Handle, opts).Token()
	if err != nil || tok.AccessToken != r.tok {
		t.Fatalf("after the holder's write: %v (holder's token: %v)", err, err == nil && tok.AccessToken == r.tok)
	}
	e.clock.Advance(wkAccessLifetime)
	if _, err := other.TokenSource(ctx, s.Handle, opts).Token(); err != nil {
		t.Fatalf("next cycle: %v", err)
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 2}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
}

// After ErrRefreshNotStored the rotated token lives only in the holder's
// memory. Its lease stays marked "answered" (beyond the lease store TTL of
// an ordinary lease), so no other worker re-presents the rotated-out token,
// however long the holder takes to come back; when it does, it stores its
// result and everyone uses it.
func TestTokenSourcePendingProtectedByLease(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	rs := &rotStore{Store: e.store}
	c := e.client(rs, nil)
	other := e.client(nil, nil)
	s := e.login(c, Login)
	e.clock.Advance(wkAccessLifetime)
	ctx := context.Background()
	ts := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI})
	rs.failRot.Store(DefaultStoreAttempts)
	if _, err := ts.Token(); !errors.Is(err, ErrRefreshNotStored) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("holder: got %v, want ErrRefreshNotStored matching store.ErrUnavailable", err)
	}
	// Long after the lease (and the store TTL of an ordinary lease).
	e.clock.Advance(2*leaseStoreTTL(DefaultLeaseTTL) + time.Minute)
	for i := range 2 {
		if _, err := other.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); !errors.Is(err, ErrRefreshNotStored) {
			t.Errorf("other worker, call %d: got %v, want ErrRefreshNotStored", i, err)
		}
	}
	if got := e.tn.GrantCalls(auth0test.GrantRefreshToken); got != 1 {
		t.Errorf("refresh requests: %d, want 1 (the holder's)", got)
	}
	// The holder comes back: it stores its result and hands out its token.
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("holder's next call: %v", err)
	}
	got, err := other.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token()
	if err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("other worker after the holder stored: %v (same token: %v)", err, err == nil && got.AccessToken == tok.AccessToken)
	}
	// The next expiry refreshes the stored token without reuse.
	e.clock.Advance(wkAccessLifetime)
	if _, err := other.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); err != nil {
		t.Fatalf("next cycle: %v", err)
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 2}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
}

// The holder's store writes end within the lease: a store that hangs on
// every write does not keep the holder beyond LeaseTTL.
func TestTokenSourceStoreRetriesWithinLease(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	hs := &hangingRotStore{Store: e.store}
	c := e.client(hs, nil)
	s := e.login(c, Login)
	hs.armed.Store(true) // the login's own token writes went through
	e.clock.Advance(wkAccessLifetime)
	opts := TokenSourceOptions{Audience: wkAPI, LeaseTTL: 2 * time.Second, StoreAttempts: 10}
	start := time.Now()
	_, err := c.TokenSource(context.Background(), s.Handle, opts).Token()
	if !errors.Is(err, ErrRefreshNotStored) {
		t.Fatalf("got %v, want ErrRefreshNotStored", err)
	}
	if took := time.Since(start); took > opts.LeaseTTL {
		t.Errorf("the holder spent %s storing, more than the lease (%s)", took, opts.LeaseTTL)
	}
}

// hangingRotStore: once armed, writes of token records hang until ctx ends.
type hangingRotStore struct {
	store.Store
	armed atomic.Bool
}

func (s *hangingRotStore) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if s.armed.Load() && strings.Contains(k, "tok:") && !strings.HasSuffix(k, ":idt") {
		<-ctx.Done()
		return errors.Join(store.ErrUnavailable, ctx.Err())
	}
	return s.Store.Set(ctx, k, v, ttl)
}

// While one call of a source stores its unstored result on a slow store,
// another call of the same source waits only as long as its ctx allows.
func TestTokenSourceFlushHonoursContext(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	rs := &rotStore{Store: e.store}
	c := e.client(rs, nil)
	s := e.login(c, Login)
	e.clock.Advance(wkAccessLifetime)
	ts := c.TokenSource(context.Background(), s.Handle, TokenSourceOptions{Audience: wkAPI})
	rs.failRot.Store(DefaultStoreAttempts)
	if _, err := ts.Token(); !errors.Is(err, ErrRefreshNotStored) {
		t.Fatalf("got %v, want ErrRefreshNotStored", err)
	}
	// The store is back, but slow: the next write of the result blocks.
	rs.entered, rs.release = make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := ts.Token()
		done <- err
	}()
	<-rs.entered
	// Without the fix the call below would wait for the write to finish:
	// let it finish after a while, so that the test fails instead of hanging.
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(rs.release) }) }
	safety := time.AfterFunc(3*time.Second, release)
	defer safety.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ts.TokenContext(ctx)
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 2*time.Second {
		t.Errorf("concurrent call during the slow store write: got %v after %s, want context.DeadlineExceeded at once", err, took)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the call that stored the result: %v", err)
	}
	if _, err := ts.Token(); err != nil {
		t.Fatalf("after the store: %v", err)
	}
}

// A result the store refused is kept by the Client, not by the TokenSource:
// a job that makes a new TokenSource per run stores it on its next run
// (before the fix the result was lost with the source, and the session's
// tokens stayed unusable).
func TestTokenSourcePendingKeptByClient(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	rs := &rotStore{Store: e.store}
	c := e.client(rs, nil)
	other := e.client(nil, nil)
	s := e.login(c, Login)
	e.clock.Advance(wkAccessLifetime)
	ctx := context.Background()
	opts := TokenSourceOptions{Audience: wkAPI}
	rs.failRot.Store(DefaultStoreAttempts)
	if _, err := c.TokenSource(ctx, s.Handle, opts).Token(); !errors.Is(err, ErrRefreshNotStored) {
		t.Fatalf("first run: got %v, want ErrRefreshNotStored", err)
	}
	tok, err := c.TokenSource(ctx, s.Handle, opts).Token() // the job's next run
	if err != nil {
		t.Fatalf("next run, new TokenSource: %v", err)
	}
	got, err := other.TokenSource(ctx, s.Handle, opts).Token()
	if err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("other replica: %v (same token: %v)", err, err == nil && got.AccessToken == tok.AccessToken)
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "rotated": 1}, e.refreshEvents()); diff != "" {
		t.Errorf("tenant refresh log (-want +got):\n%s", diff)
	}
	if _, slot := c.TokenSource(ctx, s.Handle, opts).slot(false); slot != nil {
		t.Error("the Client still holds a stored result")
	}
}
