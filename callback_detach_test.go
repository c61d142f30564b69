package stepup

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Once the tenant has redeemed the code, the login survives the end of the
// callback request's context: a client that disconnects, or a deadline that
// runs out, right after the token endpoint answered. Before, the session
// write failed with "saving the session: context canceled / deadline
// exceeded" and the login was lost with its code spent.
func TestCallbackSurvivesRequestEnd(t *testing.T) {
	tests := []struct {
		name string
		// ctx returns the callback request's context and what ends it,
		// called right after the token endpoint's answer.
		ctx func(t *testing.T) (context.Context, func())
	}{
		{"client disconnects", func(t *testing.T) (context.Context, func()) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			return ctx, cancel
		}},
		{"request deadline runs out", func(t *testing.T) (context.Context, func()) {
			// A deadline that passes right after the token endpoint's
			// answer, however long that took on a loaded machine.
			ctx := &deadlineAtEnd{Context: context.Background(), done: make(chan struct{})}
			return ctx, ctx.end
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var afterToken atomic.Pointer[func()]
			h := newHarness(t, harnessOpts{client: func(cfg *Config) {
				base := cfg.HTTPClient
				cfg.HTTPClient = &http.Client{Timeout: base.Timeout, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					resp, err := base.Transport.RoundTrip(r)
					if r.URL.Path == "/oauth/token" {
						if f := afterToken.Swap(nil); f != nil {
							(*f)()
						}
					}
					return resp, err
				})}
			}})
			alice := h.alice()
			if w := alice.visit(pathPrivate); w.Code != http.StatusOK { // the keys are cached: the store calls are what is left
				t.Fatalf("login: %d", w.Code)
			}
			cb := alice.authorize(alice.get(pathSalaries)) // a step-up continues the session

			ctx, end := tc.ctx(t)
			afterToken.Store(&end)
			r := httptest.NewRequestWithContext(ctx, http.MethodGet, cb.RequestURI(), nil)
			r.Header.Set("Accept", "text/html")
			for _, ck := range alice.cookies {
				r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			}
			var failure error
			h.c.cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
				failure = err
				DefaultErrorHandler(w, r, err)
			}
			w := httptest.NewRecorder()
			h.mux.ServeHTTP(w, r)
			if afterToken.Load() != nil {
				t.Fatal("the token endpoint was not called")
			}
			if ctx.Err() == nil {
				t.Fatal("the request's context did not end")
			}
			if w.Code != http.StatusFound || w.Header().Get("Location") != pathSalaries {
				t.Fatalf("callback: got %d to %q, want 302 to %s: the login was lost (%v)", w.Code, w.Header().Get("Location"), pathSalaries, failure)
			}
			for _, ck := range w.Result().Cookies() {
				alice.cookies[ck.Name] = ck
			}
			if w := alice.get(pathSalaries); w.Code != http.StatusOK {
				t.Errorf("page after the step-up: got %d, want 200", w.Code)
			}
		})
	}
}

// StartSession is only ever called with a spent code: it writes the session
// even when the caller's context has already ended.
func TestStartSessionAfterContextEnd(t *testing.T) {
	c, cs, _ := offlineClient(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	login := &LoginResult{IDToken: &IDToken{Subject: "auth0|alice"}, At: c.now()}
	s, err := c.StartSession(ctx, login, nil)
	if err != nil {
		t.Fatalf("StartSession with an ended context: %v, want the session written", err)
	}
	if got, err := c.LoadSession(context.Background(), c.SessionCookie(s).Value); err != nil || got.Subject != "auth0|alice" {
		t.Errorf("LoadSession: %v, %v", got, err)
	}
	if n := cs.sets.Load(); n != 1 {
		t.Errorf("store writes: %d, want 1", n)
	}
}

// deadlineAtEnd is a context whose deadline passes when end is called:
// Done closes and Err is context.DeadlineExceeded, as with a real deadline.
type deadlineAtEnd struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func (c *deadlineAtEnd) end()                  { c.once.Do(func() { close(c.done) }) }
func (c *deadlineAtEnd) Done() <-chan struct{} { return c.done }
func (c *deadlineAtEnd) Deadline() (time.Time, bool) {
	return time.Now().Add(time.Hour), true
}
func (c *deadlineAtEnd) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
