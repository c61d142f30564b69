package stepup

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
)

// frozenStore wraps a Store; once frozen, every call blocks until its
// context ends and returns the context's error, like a store whose server
// stopped answering (a Redis frozen by a long command or a lost network).
type frozenStore struct {
	store.Store
	frozen atomic.Bool
}

func (s *frozenStore) wait(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *frozenStore) Get(ctx context.Context, k string) ([]byte, error) {
	if s.frozen.Load() {
		return nil, s.wait(ctx)
	}
	return s.Store.Get(ctx, k)
}

func (s *frozenStore) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if s.frozen.Load() {
		return s.wait(ctx)
	}
	return s.Store.Set(ctx, k, v, ttl)
}

func (s *frozenStore) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if s.frozen.Load() {
		return false, s.wait(ctx)
	}
	return s.Store.SetNX(ctx, k, v, ttl)
}

func (s *frozenStore) Take(ctx context.Context, k string) ([]byte, error) {
	if s.frozen.Load() {
		return nil, s.wait(ctx)
	}
	return s.Store.Take(ctx, k)
}

func (s *frozenStore) Delete(ctx context.Context, k string) error {
	if s.frozen.Load() {
		return s.wait(ctx)
	}
	return s.Store.Delete(ctx, k)
}

func (s *frozenStore) GetEx(ctx context.Context, k string, ttl time.Duration) ([]byte, error) {
	if s.frozen.Load() {
		return nil, s.wait(ctx)
	}
	return s.Store.GetEx(ctx, k, ttl)
}

func (s *frozenStore) IndexAdd(ctx context.Context, k, m string, ttl time.Duration) error {
	if s.frozen.Load() {
		return s.wait(ctx)
	}
	return s.Store.IndexAdd(ctx, k, m, ttl)
}

func (s *frozenStore) IndexMembers(ctx context.Context, k string) ([]string, error) {
	if s.frozen.Load() {
		return nil, s.wait(ctx)
	}
	return s.Store.IndexMembers(ctx, k)
}

func (s *frozenStore) IndexRemove(ctx context.Context, k, m string) error {
	if s.frozen.Load() {
		return s.wait(ctx)
	}
	return s.Store.IndexRemove(ctx, k, m)
}

// With a store that stops answering and requests that carry no deadline of
// their own, every handler of the Client fails closed with 503 after
// Config.StoreTimeout (the default, 2 s, here) instead of hanging.
func TestStoreTimeoutFailsClosed(t *testing.T) {
	served := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("served with the store frozen") })
	// LoginHandler is not here: starting a login needs no store (the
	// transaction is a cookie). The callback carries a live transaction's
	// state and cookie, so that it reaches its single-use marker.
	callback := "/callback?state=STATE&code=c"
	tests := []struct {
		name    string
		handler func(c *Client) http.Handler
		target  string
	}{
		{"RequireLogin", func(c *Client) http.Handler { return c.RequireLogin(served) }, "/private"},
		{"RequireStepUp", func(c *Client) http.Handler { return c.RequireStepUp(MFA)(served) }, "/salaries"},
		{"CallbackHandler", (*Client).CallbackHandler, callback},
		{"LogoutHandler", func(c *Client) http.Handler {
			// A sign-out is a POST from the app's own page.
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Method = http.MethodPost
				r.Header.Set("Origin", c.origin)
				c.LogoutHandler().ServeHTTP(w, r)
			})
		}, "/logout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits StoreTimeout in real time
			fs := &frozenStore{}
			var hookErr error
			c, _, _ := offlineClient(t, func(cfg *Config) {
				fs.Store = cfg.Store
				cfg.Store = fs
				cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
					hookErr = err
					DefaultErrorHandler(w, r, err)
				}
			})
			ck := c.SessionCookie(apiSession(t, c, "auth0|alice", nil))
			ar, err := c.AuthorizeURL(context.Background(), AuthorizeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fs.frozen.Store(true)

			r := httptest.NewRequest(http.MethodGet, strings.Replace(tc.target, "STATE", ar.State, 1), nil) // context.Background(): no deadline
			r.Header.Set("Accept", "text/html")
			r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			r.AddCookie(ar.Cookie())
			w := httptest.NewRecorder()
			start := time.Now()
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				tc.handler(c).ServeHTTP(w, r)
			}()
			select {
			case <-finished:
			case <-time.After(4 * DefaultStoreTimeout):
				t.Fatalf("no answer after %s with the store frozen: the request hangs (want 503 after StoreTimeout, %s)", 4*DefaultStoreTimeout, DefaultStoreTimeout)
			}
			elapsed := time.Since(start)
			if w.Code != http.StatusServiceUnavailable {
				t.Errorf("got %d, want 503", w.Code)
			}
			if !errors.Is(hookErr, store.ErrUnavailable) || !errors.Is(hookErr, context.DeadlineExceeded) {
				t.Errorf("error given to the hook: %v, want one matching store.ErrUnavailable and context.DeadlineExceeded", hookErr)
			}
			if elapsed < DefaultStoreTimeout {
				t.Errorf("answered after %s, before StoreTimeout (%s): the store was not waited for", elapsed, DefaultStoreTimeout)
			}
		})
	}
}

// A request's own shorter deadline still wins over StoreTimeout, and a
// negative StoreTimeout leaves only the request's context.
func TestStoreTimeoutConfig(t *testing.T) {
	c, _, _ := offlineClient(t, nil)
	if c.cfg.StoreTimeout != DefaultStoreTimeout {
		t.Errorf("default StoreTimeout: got %s, want %s", c.cfg.StoreTimeout, DefaultStoreTimeout)
	}
	fs := &frozenStore{}
	c, _, _ = offlineClient(t, func(cfg *Config) {
		fs.Store = cfg.Store
		cfg.Store = fs
		cfg.StoreTimeout = -1
	})
	fs.frozen.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Session(ctx, randomToken())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the request's context.DeadlineExceeded", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("got %v: the request's own deadline is not the store's failure", err)
	}
}
