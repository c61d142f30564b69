package stepup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
)

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("stepup: saving: %w", errors.Join(store.ErrUnavailable, errStoreDown)), http.StatusServiceUnavailable},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 503}, http.StatusServiceUnavailable},
		{&TenantError{Endpoint: "/oauth/token", Err: errors.New("connection refused")}, http.StatusServiceUnavailable},
		{context.DeadlineExceeded, http.StatusServiceUnavailable},
		{&TenantError{Endpoint: "/oauth/token", StatusCode: 403, Code: "invalid_grant"}, http.StatusBadRequest},
		{&StepUpError{Reason: ReasonNotPerformed}, http.StatusForbidden},
		{&AuthorizeError{Code: "access_denied"}, http.StatusForbidden},
		{ErrTransactionNotFound, http.StatusBadRequest},
		{fmt.Errorf("%w: expired", ErrTransactionNotFound), http.StatusBadRequest},
		{ErrStateMismatch, http.StatusBadRequest},
		{ErrIssuerMismatch, http.StatusBadRequest},
		{ErrInvalidCallback, http.StatusBadRequest},
		{&TokenError{Kind: ErrTokenNonce}, http.StatusBadRequest},
		{ErrMissingIDToken, http.StatusBadGateway},
		{ErrNoSession, http.StatusUnauthorized},
		{fmt.Errorf("%w (API x)", ErrStepUpLoop), http.StatusForbidden},
		{&StepUpNeededError{Audience: "x", Err: ErrNoSession}, http.StatusForbidden},
		{errors.New("something else"), http.StatusInternalServerError},
	}
	for _, tc := range tests {
		if got := ErrorStatus(tc.err); got != tc.want {
			t.Errorf("ErrorStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// The default error page escapes what the callback's URL carried, and says
// nothing internal on a 5xx.
func TestDefaultErrorHandler(t *testing.T) {
	w := httptest.NewRecorder()
	DefaultErrorHandler(w, httptest.NewRequest("GET", "/callback", nil),
		&AuthorizeError{Code: "access_denied", Description: `<script>alert("x")</script>` + strings.Repeat("a", 1000)})
	body := w.Body.String()
	if w.Code != http.StatusForbidden || strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("got %d %q, want 403 with the description escaped", w.Code, body)
	}
	if len(body) > 1000 {
		t.Errorf("page of %d bytes: the description was not shortened", len(body))
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", w.Header())
	}

	w = httptest.NewRecorder()
	DefaultErrorHandler(w, httptest.NewRequest("GET", "/", nil), fmt.Errorf("stepup: reading the session: %w: redis 10.0.0.7:6379 refused", store.ErrUnavailable))
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "10.0.0.7") {
		t.Errorf("got %d %q, want 503 without internal details", w.Code, w.Body.String())
	}
}

// The error hook receives the failure; the default page is replaced.
func TestErrorHandlerHook(t *testing.T) {
	var got error
	c, cs, _ := offlineClient(t, func(cfg *Config) {
		cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			got = err
			w.WriteHeader(599)
		}
	})
	cs.failing.Store(true)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/private", nil)
	r.Header.Set("Accept", "text/html")
	// A well-formed cookie whose absolute end is ahead: the store is asked.
	exp := strconv.FormatInt(c.now().Add(time.Hour).UnixMilli(), 10)
	r.AddCookie(&http.Cookie{Name: c.sessionCookie, Value: randomToken() + "." + randomToken() + "." + exp})
	c.RequireLogin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("served with the store down") })).ServeHTTP(w, r)
	if w.Code != 599 || !errors.Is(got, store.ErrUnavailable) {
		t.Errorf("hook: status %d, err %v", w.Code, got)
	}
}

func TestSessionFromRequest(t *testing.T) {
	c, cs, _ := offlineClient(t, nil)
	s := apiSession(t, c, "auth0|alice", nil)
	ck := c.SessionCookie(s)

	r := httptest.NewRequest("GET", "/", nil)
	if _, err := c.SessionFromRequest(r); !errors.Is(err, ErrNoSession) {
		t.Errorf("no cookie: %v, want ErrNoSession", err)
	}
	r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	got, err := c.SessionFromRequest(r)
	if err != nil || got.Handle != s.Handle {
		t.Fatalf("with the cookie: %v, %v", got, err)
	}
	// The session the middleware put in the context wins: no store read.
	gets := cs.gets.Load()
	rc := r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, got))
	if again, err := c.SessionFromRequest(rc); err != nil || again != got || cs.gets.Load() != gets {
		t.Errorf("from the context: %v, %v (store reads %d)", again, err, cs.gets.Load()-gets)
	}
	cs.failing.Store(true)
	defer cs.failing.Store(false)
	if _, err := c.SessionFromRequest(r); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("store down: %v, want store.ErrUnavailable", err)
	}
}
