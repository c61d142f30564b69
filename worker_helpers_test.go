package stepup

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
	"github.com/stepupauth/stepup/store"
)

// wkAPI is the API the workers call in these tests.
const wkAPI = "https://api.fabrikam.example/"

// wkAccessLifetime is the API's access-token lifetime in these tests.
const wkAccessLifetime = 10 * time.Minute

// wkEnv is a dev tenant (refresh-token rotation with reuse detection, no
// overlap unless asked) and Clients (replicas) sharing one Store and one
// moving clock.
type wkEnv struct {
	t     testing.TB
	tn    *auth0test.Tenant
	clock *testClock
	store store.Store
}

type wkOpts struct {
	cluster bool                                               // share a real Redis Cluster
	redis   bool                                               // share a real Redis (redistest) instead of a memory store
	tenant  func(*auth0test.Config)                            // adjust the tenant
	action  func(*auth0test.ActionEvent, *auth0test.ActionAPI) // the tenant's Action
}

func newWkEnv(t testing.TB, o wkOpts) *wkEnv {
	t.Helper()
	e := &wkEnv{t: t, clock: newTestClock()}
	tcfg := auth0test.Config{
		RefreshTokenRotation: true,
		APIs: []auth0test.API{{
			Identifier: wkAPI, Scopes: []string{"read:salaries", "export:salaries"},
			AccessTokenLifetime: wkAccessLifetime,
		}},
		Now:    e.clock.Now,
		Action: o.action,
	}
	if o.tenant != nil {
		o.tenant(&tcfg)
	}
	e.tn = auth0test.NewTenant(t, tcfg)
	if o.redis || o.cluster {
		var rc redis.UniversalClient
		if o.cluster {
			rc = redistest.Cluster(t)
		} else {
			rc = redistest.Client(t)
		}
		rs, err := redisstore.New(rc, redisstore.Options{Prefix: redistest.Prefix(t)})
		if err != nil {
			t.Fatalf("redisstore.New: %v", err)
		}
		e.store = rs
	} else {
		mem := store.NewMemory(store.MemoryOptions{Now: e.clock.Now, SweepInterval: -1})
		t.Cleanup(func() { mem.Close() })
		e.store = mem
	}
	return e
}

// client returns a new Client (a replica) on s, or on the shared store when s is nil.
func (e *wkEnv) client(s store.Store, mutate func(*Config)) *Client {
	e.t.Helper()
	if s == nil {
		s = e.store
	}
	app := auth0test.DefaultApplication()
	cfg := Config{
		Domain:       e.tn.Domain(),
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret,
		RedirectURL:  app.CallbackURLs[0],
		Scopes:       []string{"profile", "email", "offline_access", "read:salaries"},
		Audience:     wkAPI,
		Store:        s,
		SealingKeys:  [][]byte{sealTestKey(11)},
		HTTPClient:   e.tn.Client(),
		Now:          e.clock.Now,
		// Jobs run long after the user's last page load: the session must
		// outlive many access-token lifetimes without activity.
		SessionIdleTimeout: 12 * time.Hour,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// login signs alice in through c with policy p and starts a session.
func (e *wkEnv) login(c *Client, p Policy) *Session {
	e.t.Helper()
	ctx := context.Background()
	ar, err := c.AuthorizeURL(ctx, AuthorizeOptions{Policy: p})
	if err != nil {
		e.t.Fatalf("AuthorizeURL: %v", err)
	}
	cb, err := e.tn.Login(ctx, ar.URL, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if err != nil {
		e.t.Fatalf("tenant login: %v", err)
	}
	res, err := c.Exchange(ctx, cb.Query(), ar.Transaction)
	if err != nil {
		e.t.Fatalf("Exchange: %v", err)
	}
	s, err := c.StartSession(ctx, res, nil)
	if err != nil {
		e.t.Fatalf("StartSession: %v", err)
	}
	return s
}

// refreshEvents counts the tenant's refresh-log entries by kind.
func (e *wkEnv) refreshEvents() map[string]int {
	m := map[string]int{}
	for _, ev := range e.tn.RefreshLog() {
		m[ev.Kind]++
	}
	return m
}

// waitFor polls cond (real time, for another goroutine's progress, not for
// expiry) and fails the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// faultyStore wraps a Store: its next failSets Set calls fail (as a store
// that breaks right after the tenant answered), and it counts reads.
type faultyStore struct {
	store.Store
	failSets atomic.Int64
	gets     atomic.Int64
	sets     atomic.Int64
}

var errWkStoreDown = errors.New("store down (worker test)")

func (s *faultyStore) Get(ctx context.Context, k string) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, k)
}

func (s *faultyStore) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	s.sets.Add(1)
	for {
		n := s.failSets.Load()
		if n <= 0 {
			return s.Store.Set(ctx, k, v, ttl)
		}
		if s.failSets.CompareAndSwap(n, n-1) {
			return errors.Join(store.ErrUnavailable, errWkStoreDown)
		}
	}
}
