package stepup

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
)

// countingStore wraps a Store and counts its calls, and can be made to fail.
type countingStore struct {
	store.Store
	gets, getexs, sets, setnxs, takes, deletes atomic.Int64
	indexAdds, indexReads, indexRemoves        atomic.Int64
	failing                                    atomic.Bool
}

var errStoreDown = errors.New("store down (test)")

func (s *countingStore) down() error {
	if s.failing.Load() {
		return errors.Join(store.ErrUnavailable, errStoreDown)
	}
	return nil
}

func (s *countingStore) Get(ctx context.Context, k string) ([]byte, error) {
	s.gets.Add(1)
	if err := s.down(); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, k)
}

func (s *countingStore) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	s.sets.Add(1)
	if err := s.down(); err != nil {
		return err
	}
	return s.Store.Set(ctx, k, v, ttl)
}

func (s *countingStore) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	s.setnxs.Add(1)
	if err := s.down(); err != nil {
		return false, err
	}
	return s.Store.SetNX(ctx, k, v, ttl)
}

func (s *countingStore) Take(ctx context.Context, k string) ([]byte, error) {
	s.takes.Add(1)
	if err := s.down(); err != nil {
		return nil, err
	}
	return s.Store.Take(ctx, k)
}

func (s *countingStore) Delete(ctx context.Context, k string) error {
	s.deletes.Add(1)
	if err := s.down(); err != nil {
		return err
	}
	return s.Store.Delete(ctx, k)
}

func (s *countingStore) GetEx(ctx context.Context, k string, ttl time.Duration) ([]byte, error) {
	s.getexs.Add(1)
	if err := s.down(); err != nil {
		return nil, err
	}
	return s.Store.GetEx(ctx, k, ttl)
}

func (s *countingStore) IndexAdd(ctx context.Context, k, m string, ttl time.Duration) error {
	s.indexAdds.Add(1)
	if err := s.down(); err != nil {
		return err
	}
	return s.Store.IndexAdd(ctx, k, m, ttl)
}

func (s *countingStore) IndexMembers(ctx context.Context, k string) ([]string, error) {
	s.indexReads.Add(1)
	if err := s.down(); err != nil {
		return nil, err
	}
	return s.Store.IndexMembers(ctx, k)
}

func (s *countingStore) IndexRemove(ctx context.Context, k, m string) error {
	s.indexRemoves.Add(1)
	if err := s.down(); err != nil {
		return err
	}
	return s.Store.IndexRemove(ctx, k, m)
}

// writes counts the calls that change records or indexes (GetEx, which
// moves a TTL only, is counted apart: getexs).
func (s *countingStore) writes() int64 {
	return s.sets.Load() + s.setnxs.Load() + s.takes.Load() + s.deletes.Load() + s.indexAdds.Load() + s.indexRemoves.Load()
}

// reads counts the calls that read (GetEx included).
func (s *countingStore) reads() int64 {
	return s.gets.Load() + s.getexs.Load() + s.indexReads.Load()
}

// testClock (Now, Advance) comes from jwks_helpers_test.go.

// noNetwork is an HTTP client whose every request fails the test.
func noNetwork(t testing.TB) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("unexpected request to %s", r.URL)
		return nil, errors.New("no network in this test")
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// offlineClient is a Client on a memory store with a moving clock, for tests
// that need no tenant.
func offlineClient(t testing.TB, mutate func(*Config)) (*Client, *countingStore, *testClock) {
	t.Helper()
	clock := newTestClock()
	mem := store.NewMemory(store.MemoryOptions{Now: clock.Now, SweepInterval: -1})
	t.Cleanup(func() { mem.Close() })
	cs := &countingStore{Store: mem}
	cfg := Config{
		Domain:       "fabrikam.eu.auth0.com",
		ClientID:     "client-1",
		ClientSecret: "secret-1",
		RedirectURL:  "https://app.example.com/callback",
		Store:        cs,
		SealingKeys:  [][]byte{sealTestKey(7)},
		HTTPClient:   noNetwork(t),
		Now:          clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, cs, clock
}
